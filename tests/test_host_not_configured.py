"""A host's route whose app was not given the service (a FastAPI app mounted in another,
with its own `FastAPI()`, that uses `CurrentUser`; a Litestar app mounted in another, whose
route has a `requires_scopes` guard) admits nobody and says why: a 500
`application/problem+json` with the code `auth_not_configured` to every caller, and one
error in the log, naming the fix, however many requests come."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import httpx
import pytest
from conftest import make_service
from fastapi import FastAPI, WebSocket
from litestar import Litestar, asgi, get
from litestar.types import Receive, Scope, Send
from starlette.testclient import TestClient, WebSocketDenialResponse
from support import login

from s3auth_asgi import AuthenticatedUser
from s3auth_asgi.app.fastapi import CurrentUser, include_auth, require_scopes
from s3auth_asgi.app.litestar import S3AuthPlugin, requires_scopes
from s3auth_asgi.problems import PROBLEM_CONTENT_TYPE

pytestmark = pytest.mark.anyio


def fastapi_host(service: Any) -> Any:
    host = FastAPI()
    include_auth(host, service, rate_limit=False)
    sub = FastAPI()

    @sub.get("/me")
    async def me(user: CurrentUser) -> dict[str, str]:
        return {"user": user.username}

    @sub.get("/admin")
    async def admin(user: Annotated[AuthenticatedUser, require_scopes("admin")]) -> None:
        return None

    @sub.websocket("/ws")
    async def ws(websocket: WebSocket, user: CurrentUser) -> None:
        await websocket.accept()
        await websocket.close()

    host.mount("/v2", sub)
    return host


def litestar_host(service: Any) -> Any:
    @get("/me", guards=[requires_scopes()])
    async def me() -> dict[str, str]:
        return {"user": "alice"}

    @get("/admin", guards=[requires_scopes("admin")])
    async def admin() -> None:
        return None

    # No logging config: the root logger's handlers, caplog's among them, are left be.
    sub = Litestar([me, admin], logging_config=None)

    async def mounted(scope: Scope, receive: Receive, send: Send) -> None:
        await sub(scope, receive, send)

    mount = asgi("/v2", is_mount=True, copy_scope=True)(mounted)
    plugin = S3AuthPlugin(service, rate_limit=False)
    return Litestar([mount], plugins=[plugin], logging_config=None)


@pytest.mark.parametrize("host", [fastapi_host, litestar_host], ids=["fastapi", "litestar"])
async def test_a_mounted_app_not_given_the_service_answers_a_problem_and_logs_the_fix_once(
    host: Any, caplog: pytest.LogCaptureFixture
) -> None:
    service = make_service()
    _, pair = await login(service)
    transport = httpx.ASGITransport(app=host(service), raise_app_exceptions=False)
    caplog.set_level(logging.ERROR)
    answers = []
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for path in ("/v2/me", "/v2/admin"):
            for headers in ({}, {"Authorization": f"Bearer {pair.access_token}"}):
                answers.append(await client.get(path, headers=headers))
    for answer in answers:
        assert answer.status_code == 500
        assert answer.headers["content-type"] == PROBLEM_CONTENT_TYPE
        assert answer.json()["code"] == "auth_not_configured"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    said = errors[0].getMessage()
    assert errors[0].name.startswith("s3auth_asgi")
    fix = "include_auth" if host is fastapi_host else "S3AuthPlugin"
    assert fix in said and "mounted" in said
    assert pair.access_token not in caplog.text


def test_a_websocket_of_a_mounted_fastapi_app_not_given_the_service_is_refused() -> None:
    client = TestClient(fastapi_host(make_service()))
    with pytest.raises(WebSocketDenialResponse) as denied, client.websocket_connect("/v2/ws"):
        pass
    assert denied.value.status_code == 500
    assert denied.value.json()["code"] == "auth_not_configured"


async def test_the_fixes_the_log_names_admit_the_caller() -> None:
    service = make_service()
    _, pair = await login(service)
    alice = {"Authorization": f"Bearer {pair.access_token}"}

    fastapi_sub = FastAPI()
    include_auth(fastapi_sub, service, rate_limit=False)

    @fastapi_sub.get("/me")
    async def me(user: CurrentUser) -> dict[str, str]:
        return {"user": user.username}

    fastapi_outer = FastAPI()
    include_auth(fastapi_outer, service, rate_limit=False)
    fastapi_outer.mount("/v2", fastapi_sub)

    @get("/me", guards=[requires_scopes()])
    async def litestar_me() -> dict[str, str]:
        return {"user": "alice"}

    litestar_sub = Litestar(
        [litestar_me], plugins=[S3AuthPlugin(service, rate_limit=False)], logging_config=None
    )

    async def mounted(scope: Scope, receive: Receive, send: Send) -> None:
        await litestar_sub(scope, receive, send)

    litestar_outer = Litestar(
        [asgi("/v2", is_mount=True, copy_scope=True)(mounted)],
        plugins=[S3AuthPlugin(service, rate_limit=False)],
        logging_config=None,
    )
    for app in (fastapi_outer, litestar_outer):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            admitted = await client.get("/v2/me", headers=alice)
            refused = await client.get("/v2/me")
        assert (admitted.status_code, admitted.json()) == (200, {"user": "alice"})
        assert (refused.status_code, refused.json()["code"]) == (401, "authentication_required")
