"""Behind `BlacklistMiddleware(strict=True)`, the hosts' dependencies and guards check
revocation as strictly on the paths BearerTokenMiddleware excludes, where they verify the
token themselves: a logout by another instance holds at once there too."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from litestar import Litestar, get
from support import Clock, asgi_client, login, make_clocked_service

from s3auth_asgi import BearerTokenMiddleware, BlacklistMiddleware, S3AuthService
from s3auth_asgi.app.fastapi import CurrentUser, include_auth
from s3auth_asgi.app.litestar import S3AuthPlugin, requires_scopes

pytestmark = pytest.mark.anyio


def fastapi_host(service: S3AuthService) -> Any:
    app = FastAPI()
    include_auth(app, service, rate_limit=False)

    @app.get("/open")
    async def open_route(user: CurrentUser) -> dict[str, str]:
        return {"user": user.username}

    return app


def litestar_host(service: S3AuthService) -> Any:
    @get("/open", guards=[requires_scopes()])
    async def open_route() -> dict[str, str]:
        return {"user": "alice"}

    return Litestar([open_route], plugins=[S3AuthPlugin(service, rate_limit=False)])


@pytest.mark.parametrize("host", [fastapi_host, litestar_host], ids=["fastapi", "litestar"])
async def test_strict_revocation_holds_on_a_path_the_middleware_excludes(host: Any) -> None:
    clock = Clock()
    writer = make_clocked_service(clock=clock)
    reader = make_clocked_service(clock=clock, store=writer.store)
    _, pair = await login(writer)
    app = BlacklistMiddleware(host(reader), reader, strict=True)
    app = BearerTokenMiddleware(app, reader, exclude=("/auth/*", "/open"))
    alice = {"Authorization": f"Bearer {pair.access_token}"}
    async with asgi_client(app) as client:
        assert (await client.get("/open", headers=alice)).status_code == 200
        await writer.revoke_refresh_token(pair.refresh_token)
        refused = await client.get("/open", headers=alice)  # no clock change needed
        assert refused.status_code == 401
        assert refused.json()["code"] == "token_revoked"
