"""Every answer of the auth app carries `X-Content-Type-Options: nosniff`, once, however it
is mounted: each operation asked as the rate-limit test asks it (`SCENARIOS`: successes,
refusals and 429s), and the answers no operation declares (the document, a HEAD, a 304, a
405, a 404, a 413, a 415)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from litestar import Litestar
from quart import Quart
from starlette.applications import Starlette
from starlette.routing import Mount
from test_app_openapi_ratelimit import ONE_EACH, SCENARIOS, Run

from s3auth_asgi import S3AuthService
from s3auth_asgi.app import AuthApp, PrefixDispatcher, create_auth_app
from s3auth_asgi.app.fastapi import include_auth
from s3auth_asgi.app.litestar import S3AuthPlugin
from s3auth_asgi.ratelimit import RateLimiter

pytestmark = pytest.mark.anyio

JWKS = "/auth/.well-known/jwks.json"


def starlette_mount(service: S3AuthService, limiter: RateLimiter) -> tuple[AuthApp, Any]:
    app = create_auth_app(service, limiter=limiter)
    return app, Starlette(routes=[Mount("/auth", app=app)])


def fastapi_include(service: S3AuthService, limiter: RateLimiter) -> tuple[AuthApp, Any]:
    host = FastAPI()
    return include_auth(host, service, limiter=limiter), host


def litestar_plugin(service: S3AuthService, limiter: RateLimiter) -> tuple[AuthApp, Any]:
    plugin = S3AuthPlugin(service, limiter=limiter)
    return plugin.auth_app, Litestar(plugins=[plugin])


def quart_dispatcher(service: S3AuthService, limiter: RateLimiter) -> tuple[AuthApp, Any]:
    app = create_auth_app(service, limiter=limiter)
    return app, PrefixDispatcher(Quart(__name__), {"/auth": app})


MOUNTS: dict[str, Callable[[S3AuthService, RateLimiter], tuple[AuthApp, Any]]] = {
    "starlette": starlette_mount,
    "fastapi": fastapi_include,
    "litestar": litestar_plugin,
    "quart": quart_dispatcher,
}


async def _undeclared(run: Run) -> dict[str, httpx.Response]:
    """The answers outside the operations' own."""
    client = await run.client()
    keys = await client.get(JWKS)
    too_large = b"x" * (run.service.settings.max_body_bytes + 1)
    json = {"Content-Type": "application/json"}
    return {
        "document": await client.get("/auth/openapi.json"),
        "head": await client.head(JWKS),
        "not_modified": await client.get(JWKS, headers={"If-None-Match": keys.headers["etag"]}),
        "method_not_allowed": await client.put("/auth/login"),
        "not_found": await client.get("/auth/no-such-endpoint"),
        "too_large": await client.post("/auth/register", content=too_large, headers=json),
        "unsupported_type": await client.post(
            "/auth/register", content=b"{}", headers={"Content-Type": "text/plain"}
        ),
    }


@pytest.mark.parametrize("mount", MOUNTS.values(), ids=MOUNTS)
async def test_every_answer_says_nosniff_in_every_mount(
    tmp_path: Path, mount: Callable[[S3AuthService, RateLimiter], tuple[AuthApp, Any]]
) -> None:
    run = Run(tmp_path, limited=True, legacy=False, browser=False)
    run.app, run.host = mount(run.service, RateLimiter(ONE_EACH))
    run.operations = {op.operation_id: op for op in run.app.operations}
    assert set(SCENARIOS) == set(run.operations)
    async with run.stack:
        for play in SCENARIOS.values():
            await play(run)
        undeclared = await _undeclared(run)
    answers = [(name, answer) for name, sent in run.answers.items() for answer in sent]
    answers += undeclared.items()
    assert set(run.answers) == set(run.operations)
    statuses = {answer.status_code for _, answer in answers}
    assert {200, 201, 202, 204, 304, 401, 403, 404, 405, 413, 415, 429} <= statuses
    without = [
        (name, answer.status_code, answer.headers.get_list("x-content-type-options"))
        for name, answer in answers
        if answer.headers.get_list("x-content-type-options") != ["nosniff"]
    ]
    assert without == []
