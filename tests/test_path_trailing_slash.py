"""An exact exclusion (`/health`) also skips its path with one trailing slash (`/health/`):
Starlette and FastAPI answer that request with a redirect to `/health`, and Litestar serves
the `/health` route at it, but only after the middleware in front has let it through; it
used to answer 401 for a route the host meant public. A protected pattern that names the
slashed path alone (`/files/*` of `/files/`) keeps it protected, and an exact protected
pattern loses nothing (`/admin` still protects `/admin/`), in requests and in the host's
OpenAPI document alike."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from conftest import make_service
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from support import http_scope

from s3auth_asgi.middleware.bearer import BearerTokenMiddleware
from s3auth_asgi.middleware.openapi import declare_bearer_refusals
from s3auth_asgi.paths import PathAccess, PathRules

pytestmark = pytest.mark.anyio


def decided(rules: PathRules, path: str) -> PathAccess:
    return rules.decide(http_scope(path))[0]


async def health(request: Any) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def test_a_starlette_redirect_of_an_excluded_route_passes_the_middleware() -> None:
    guarded = Middleware(BearerTokenMiddleware, tokens=make_service(), exclude=("/health",))
    app = Starlette(routes=[Route("/health", health)], middleware=[guarded])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        answer = await client.get("/health/")
        assert (answer.status_code, answer.headers.get("location")) == (
            307,
            "http://testserver/health",
        )
        assert (await client.get("/health/", follow_redirects=True)).text == "ok"


@pytest.mark.parametrize(
    ("protected", "exclude", "expected"),
    [
        (("/*",), ("/health",), {"/health": "skip", "/health/": "skip", "/health//": "req"}),
        # A protected pattern naming the slashed path and not the other keeps it.
        (("/files/*",), ("/files",), {"/files": "skip", "/files/": "req", "/files/a": "req"}),
        (("/files/",), ("/files",), {"/files": "skip", "/files/": "req"}),
        (("/health*",), ("/health",), {"/health": "skip", "/health/": "skip", "/healthz": "req"}),
        # An exact protected pattern protects its path with a slash, as before.
        (("/admin",), ("/public",), {"/admin": "req", "/admin/": "req", "/public/": "skip"}),
        (("/admin/",), (), {"/admin": "req", "/admin/": "req"}),
        # An exclusion with its slash written, or a prefix, says it all already.
        (("/*",), ("/docs", "/docs/*"), {"/docs/": "skip", "/docs/x": "skip"}),
    ],
)
def test_an_exact_exclusion_takes_one_trailing_slash(
    protected: tuple[str, ...], exclude: tuple[str, ...], expected: dict[str, str]
) -> None:
    rules = PathRules(protected, exclude)
    names = {PathAccess.SKIP: "skip", PathAccess.OPTIONAL: "opt", PathAccess.REQUIRED: "req"}
    assert {path: names[decided(rules, path)] for path in expected} == expected


def test_the_host_document_marks_the_slashed_operation_as_the_middleware_treats_it() -> None:
    paths = ("/health", "/health/", "/admin", "/admin/")
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "host", "version": "1"},
        "paths": {p: {"get": {"responses": {"200": {"description": "OK"}}}} for p in paths},
    }
    settings = {"protected": ("/admin",), "exclude": ("/health",)}
    declare_bearer_refusals(document, {"tokens": make_service(), **settings})
    operations = {path: document["paths"][path]["get"] for path in paths}
    assert "security" not in operations["/health"] and "401" not in operations["/health"]
    assert "security" not in operations["/health/"] and "401" not in operations["/health/"]
    for path in ("/admin", "/admin/"):
        assert operations[path]["security"] == [{"bearer": []}], path
        assert "401" in operations[path]["responses"], path
