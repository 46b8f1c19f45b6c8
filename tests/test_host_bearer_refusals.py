"""Real hosts whose routes BearerTokenMiddleware guards by its own patterns, not by a
dependency or a guard: a Starlette app documented by its SchemaGenerator, and a FastAPI
and a Litestar app with the auth app included (Litestar's document declaring a 400 of its
own on a route with parameters), each declaring the middleware's refusals in the document
it serves (`declare_bearer_refusals`). Driven through each refusal of the middleware and of
BlacklistMiddleware inside it, on a route that requires a token, one that requires a
scope, a templated one and one where a token is optional: every answer's code is one its
route declares for its status, and every code a route declares is answered."""

from __future__ import annotations

from collections.abc import Callable
from itertools import count
from typing import Any

import httpx
import pytest
from declared_answers import listed_codes
from fastapi import FastAPI
from litestar import Litestar, get
from litestar import Request as LitestarRequest
from litestar.params import FromPath
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.schemas import SchemaGenerator
from support import Clock, login, make_clocked_service
from test_app import client_for
from test_host_problem_codes import Answers, FailingLists, bearer, drive_stored_keys

from s3auth_asgi import (
    BearerTokenMiddleware,
    BlacklistMiddleware,
    S3AuthService,
    declare_bearer_refusals,
)
from s3auth_asgi.app.fastapi import include_auth
from s3auth_asgi.app.litestar import S3AuthPlugin
from s3auth_asgi.problems import PROBLEM_CONTENT_TYPE
from s3auth_asgi.storage import ObjectStore

pytestmark = pytest.mark.anyio

PATTERNS = {
    "protected": {"/items*": (), "/admin": ("admin",)},
    "exclude": ("/auth", "/auth/*", "/openapi.json"),
}
ROUTES = ("/items", "/items/7", "/admin", "/open")
"""Requests: a token required, on a plain and a templated path; a scope; optional."""
DECLARED = {
    "/items": {400, 401, 503},
    "/items/{item_id}": {400, 401, 503},
    "/admin": {400, 401, 403, 503},
    "/open": {400, 401, 503},
}
"""The statuses each route declares, each with its codes: every one of them answered (a
401 `authentication_required` is neither where a token is optional)."""

STARLETTE_SCHEMAS = SchemaGenerator({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}})


async def whoever(request: Request) -> JSONResponse:
    """responses:
    200:
      description: The caller
    """
    return JSONResponse({"user": request.user.display_name})


async def one(request: Request) -> JSONResponse:
    """
    parameters:
    - name: item_id
      in: path
      required: true
      schema:
        type: integer
    responses:
      200:
        description: The caller
    """
    return JSONResponse({"user": request.user.display_name})


def starlette_host(service: S3AuthService) -> Any:
    settings = {"tokens": service, **PATTERNS}

    def schema(request: Request) -> JSONResponse:
        document = STARLETTE_SCHEMAS.get_schema(routes)
        declare_bearer_refusals(document, settings, revocations=True)
        return JSONResponse(document)

    routes = [
        Route("/items", whoever),
        Route("/items/{item_id:int}", one),
        Route("/admin", whoever),
        Route("/open", whoever),
        Route("/openapi.json", schema, include_in_schema=False),
    ]
    return BearerTokenMiddleware(BlacklistMiddleware(Starlette(routes=routes), service), **settings)


def fastapi_host(service: S3AuthService) -> Any:
    settings = {"tokens": service, **PATTERNS}
    app = FastAPI()
    include_auth(
        app,
        service,
        rate_limit=False,
        extend_document=lambda document: declare_bearer_refusals(
            document, settings, revocations=True
        ),
    )

    @app.get("/items")
    @app.get("/admin")
    @app.get("/open")
    async def plain(request: Request) -> dict[str, str]:
        return {"user": request.user.display_name}

    @app.get("/items/{item_id}")
    async def item(item_id: int, request: Request) -> dict[str, str]:
        return {"user": request.user.display_name}

    return BearerTokenMiddleware(BlacklistMiddleware(app, service), **settings)


@get("/items")
async def litestar_items(request: LitestarRequest[Any, Any, Any]) -> dict[str, str]:
    return {"user": request.user.display_name}


@get("/items/{item_id:int}")
async def litestar_item(
    item_id: FromPath[int], request: LitestarRequest[Any, Any, Any]
) -> dict[str, str]:
    return {"user": request.user.display_name}


@get(["/admin", "/open"])
async def litestar_plain(request: LitestarRequest[Any, Any, Any]) -> dict[str, str]:
    return {"user": request.user.display_name}


def litestar_host(service: S3AuthService) -> Any:
    settings = {"tokens": service, **PATTERNS}
    app = Litestar(
        [litestar_items, litestar_item, litestar_plain],
        plugins=[
            S3AuthPlugin(
                service,
                rate_limit=False,
                extend_document=lambda document: declare_bearer_refusals(
                    document, settings, revocations=True
                ),
            )
        ],
        # Litestar's own logging set-up would leave the root logger at INFO for every
        # test after this one.
        logging_config=None,
    )
    return BearerTokenMiddleware(BlacklistMiddleware(app, service), **settings)


HOSTS: dict[str, tuple[Callable[[S3AuthService], Any], str]] = {
    "starlette": (starlette_host, "/openapi.json"),
    "fastapi": (fastapi_host, "/openapi.json"),
    "litestar": (litestar_host, "/schema/openapi.json"),
}
"""Each host, and where it serves its document."""


class Host:
    """One kind of host over each service a refusal needs: what its document declares on
    ROUTES, and what the middlewares answered there."""

    def __init__(self, build: Callable[[S3AuthService], Any], schema: str) -> None:
        self.build, self.schema = build, schema
        self.declared: set[tuple[str, str, int, str]] = set()
        self.seen: set[tuple[str, str, int, str]] = set()
        self.peers = count(1)

    async def refusals(self, service: S3AuthService, *calls: list[tuple[str, str]]) -> None:
        app = self.build(service)
        async with client_for(app) as client:
            document = (await client.get(self.schema)).json()
        if not self.declared:
            validate(document, cls=OpenAPIV31SpecValidator)
        for path in DECLARED:
            operation = document["paths"][path]["get"]
            for status, answer in operation["responses"].items():
                problem = answer.get("content", {}).get(PROBLEM_CONTENT_TYPE)
                if problem is not None:  # not FastAPI's 422 of a path parameter
                    listed = listed_codes(problem["schema"]) or ()
                    self.declared |= {("get", path, int(status), code) for code in listed}
        answers = Answers(document, self.seen)
        for url in ROUTES:
            for headers in calls:
                async with client_for(app, peer=(f"192.0.2.{next(self.peers)}", 1)) as each:
                    each.event_hooks["response"].append(answers)
                    await each.get(url, headers=headers)


async def drive(host: Host) -> None:
    """Each refusal: the header sent twice, none, a malformed token, a revoked one, one
    lacking the scope, an expired one; revocations that cannot be listed; signing keys kept
    in the store that cannot be read, do not open, or are to be made on a store lacking a
    conditional write."""
    clock = Clock()
    store = ObjectStore.from_url("memory://")
    service = make_clocked_service(store=store, clock=clock)
    # Tokens that hold the scope, so that it is not what refuses them on /admin.
    _, pair = await login(service, "alice", scopes=["admin"])
    _, ended = await login(service, "bob", scopes=["admin"])
    _, lacking = await login(service, "dave")
    await service.revoke_refresh_token(ended.refresh_token)
    valid, revoked = bearer(pair.access_token), bearer(ended.access_token)
    await host.refusals(
        service, valid * 2, [], bearer("x.y.z"), revoked, bearer(lacking.access_token)
    )
    clock.advance(service.settings.access_token_seconds + service.settings.leeway_seconds)
    await host.refusals(service, valid)
    _, fresh = await login(service, "carol", scopes=["admin"])
    failing = make_clocked_service(store=FailingLists(store), clock=clock)
    await host.refusals(failing, bearer(fresh.access_token))
    await drive_stored_keys(host)


@pytest.mark.parametrize("name", list(HOSTS))
async def test_each_refusal_of_the_middlewares_is_declared_and_each_declared_code_answered(
    name: str,
) -> None:
    host = Host(*HOSTS[name])
    await drive(host)
    statuses: dict[str, set[int]] = {}
    for _, path, status, _ in host.declared:
        statuses.setdefault(path, set()).add(status)
    assert statuses == DECLARED
    assert host.seen == host.declared
    assert ("get", "/open", 401, "authentication_required") not in host.declared


async def test_a_token_is_optional_where_the_document_says_so() -> None:
    service = make_clocked_service()
    _, pair = await login(service, "alice")
    app = starlette_host(service)
    async with client_for(app) as client:
        document = (await client.get("/openapi.json")).json()
        anonymous = await client.get("/open")
        named = await client.get("/open", headers=bearer(pair.access_token))
    assert document["paths"]["/open"]["get"]["security"] == [{"bearer": []}, {}]
    assert "security" not in document["paths"].get("/openapi.json", {}).get("get", {})
    assert (anonymous.status_code, anonymous.json()) == (200, {"user": ""})
    assert named.json() == {"user": "alice"}
    assert httpx.codes.is_success(named.status_code)
