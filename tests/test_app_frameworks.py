"""The auth sub-app mounted in Starlette, FastAPI, Litestar and Quart hosts, at /auth, with
and without a server root_path (uvicorn --root-path): routes, the OpenAPI server and token
URLs, and the refresh cookie's path must all come out under the mount point."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import make_service, make_settings
from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import OAuth2PasswordBearer
from litestar import Litestar, asgi
from litestar import get as litestar_get
from quart import Quart
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from test_app import PASSWORD, bearer, client_for, login, register

from s3auth_asgi import S3AuthError, S3AuthService
from s3auth_asgi.app import AuthApp, PrefixDispatcher, create_auth_app
from s3auth_asgi.mail import FileMailer
from s3auth_asgi.types import Receive, Scope, Send

pytestmark = pytest.mark.anyio

HOST_GREETING = "the host app"


def starlette_host(auth: AuthApp) -> Any:
    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse(HOST_GREETING)

    return Starlette(routes=[Route("/", home), Mount("/auth", app=auth)])


def fastapi_host(auth: AuthApp) -> Any:
    app = FastAPI()

    @app.get("/", response_class=PlainTextResponse)
    async def home() -> str:
        return HOST_GREETING

    app.mount("/auth", auth)
    return app


def litestar_host(auth: AuthApp) -> Any:
    @litestar_get("/", media_type="text/plain")
    async def home() -> str:
        return HOST_GREETING

    @asgi("/auth", is_mount=True, copy_scope=True)
    async def auth_mount(scope: Scope, receive: Receive, send: Send) -> None:
        await auth(scope, receive, send)

    return Litestar(route_handlers=[home, auth_mount])


def quart_host(auth: AuthApp) -> Any:
    app = Quart(__name__)

    @app.get("/")
    async def home() -> str:
        return HOST_GREETING

    return PrefixDispatcher(app, {"/auth": auth})


HOSTS: dict[str, Callable[[AuthApp], Any]] = {
    "starlette": starlette_host,
    "fastapi": fastapi_host,
    "litestar": litestar_host,
    "quart": quart_host,
}


def auth_app_for(host: str, service: S3AuthService) -> AuthApp:
    # Litestar hands a mount the rest of the path and leaves root_path alone.
    mount_path = "/auth" if host == "litestar" else None
    return create_auth_app(service, rate_limit=False, mount_path=mount_path)


# A server root path that ends as the mount point does: the mount is still below it.
@pytest.mark.parametrize("root_path", ["", "/api", "/v1/auth"])
@pytest.mark.parametrize("host", sorted(HOSTS))
async def test_mounted_under_a_prefix(host: str, root_path: str) -> None:
    service = make_service(refresh_cookie=True)
    app = HOSTS[host](auth_app_for(host, service))
    prefix = f"{root_path}/auth"
    async with client_for(app, base_url="https://testserver", root_path=root_path) as client:
        home = await client.get(f"{root_path}/")
        assert home.status_code == 200 and HOST_GREETING in home.text

        await register(client, "alice", prefix=prefix)
        login = await client.post(
            f"{prefix}/login", data={"username": "alice", "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        assert f"Path={prefix}/refresh;" in login.headers["set-cookie"]
        tokens = login.json()

        me = await client.get(f"{prefix}/me", headers=bearer(tokens))
        assert me.json()["username"] == "alice"
        sessions = await client.get(f"{prefix}/sessions/", headers=bearer(tokens))
        assert sessions.json()["sessions"][0]["current"] is True
        # The cookie reaches the refresh endpoint only if its path is the mounted one.
        refreshed = await client.post(f"{prefix}/refresh", headers={"Origin": "https://testserver"})
        assert refreshed.status_code == 200, refreshed.text

        document = (await client.get(f"{prefix}/openapi.json")).json()
        assert document["servers"] == [{"url": prefix}]
        flow = document["components"]["securitySchemes"]["oauth2"]["flows"]["password"]
        assert flow["tokenUrl"] == f"{prefix}/login"

        missing = await client.get(f"{prefix}/no-such-thing")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("root_path", ["", "/v1/auth"])
@pytest.mark.parametrize("host", sorted(HOSTS))
async def test_a_mount_path_the_host_records_too_is_taken_once(host: str, root_path: str) -> None:
    # `mount_path` where the host puts the mount in root_path as well (all but Litestar):
    # the mount point is still `/auth` below the server's root path, not `/auth/auth`.
    service = make_service(refresh_cookie=True)
    app = HOSTS[host](create_auth_app(service, rate_limit=False, mount_path="/auth"))
    prefix = f"{root_path}/auth"
    async with client_for(app, base_url="https://testserver", root_path=root_path) as client:
        await register(client, "alice", prefix=prefix)
        form = {"username": "alice", "password": PASSWORD}
        login = await client.post(f"{prefix}/login", data=form)
        assert f"Path={prefix}/refresh;" in login.headers["set-cookie"]
        document = (await client.get(f"{prefix}/openapi.json")).json()
    assert document["servers"] == [{"url": prefix}]


async def test_fastapi_oauth2_password_bearer_uses_the_login_endpoint() -> None:
    """The guide's FastAPI dependency, fed by the mounted app's token endpoint."""
    service = make_service()
    app = FastAPI()
    app.mount("/auth", create_auth_app(service, rate_limit=False))
    oauth2_scheme = OAuth2PasswordBearer(tokenUrl="auth/login")

    async def current_user(token: str = Depends(oauth2_scheme)) -> dict[str, Any]:
        try:
            claims = service.decode_token(token)
        except S3AuthError:
            raise HTTPException(401, "Invalid credentials") from None
        user = await service.get_user_by_id(claims["sub"])
        if user is None or not user.is_active:
            raise HTTPException(401, "Invalid credentials")
        return {"username": user.username}

    # The guide's style; FastAPI resolves annotations at run time, so no Annotated[...]
    # over these local names.
    @app.get("/profile")
    async def profile(user: dict[str, Any] = Depends(current_user)) -> dict[str, Any]:  # noqa: B008
        return user

    async with client_for(app) as client:
        await register(client, "alice")
        # What Swagger UI's Authorize button sends to tokenUrl.
        response = await client.post(
            "/auth/login",
            data={"grant_type": "password", "username": "alice", "password": PASSWORD,
                  "scope": "", "client_id": "", "client_secret": ""},
        )  # fmt: skip
        assert response.status_code == 200
        assert (await client.get("/profile")).status_code == 401
        profile = await client.get("/profile", headers=bearer(response.json()))
        assert profile.json() == {"username": "alice"}
        document = app.openapi()
        flows = document["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]
        assert flows["password"]["tokenUrl"] == "auth/login"


async def test_prefix_dispatcher_passes_everything_else_through() -> None:
    seen: list[tuple[str, str]] = []

    async def fallback(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope["type"], scope.get("path", "")))
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    mounted: list[tuple[str, str]] = []

    async def sub(scope: Scope, receive: Receive, send: Send) -> None:
        mounted.append((scope["root_path"], scope["path"]))
        await fallback(scope, receive, send)

    dispatcher = PrefixDispatcher(fallback, {"/auth": sub, "/auth/admin": sub})
    async with client_for(dispatcher) as client:
        for path in ("/", "/authx", "/auth", "/auth/login", "/auth/admin/users"):
            await client.get(path)
    assert [p for _, p in seen] == ["/", "/authx", "/auth", "/auth/login", "/auth/admin/users"]
    assert mounted == [
        ("/auth", "/auth"),
        ("/auth", "/auth/login"),
        ("/auth/admin", "/auth/admin/users"),
    ]
    with pytest.raises(ValueError, match="must start"):
        PrefixDispatcher(fallback, {"auth/": sub})


@pytest.mark.parametrize("host", sorted(HOSTS))
async def test_the_account_lifecycle_in_every_mount(host: str, tmp_path: Path) -> None:
    outbox = FileMailer(tmp_path)
    service = S3AuthService(make_settings(), mailer=outbox)
    await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    app = HOSTS[host](auth_app_for(host, service))

    async def mailed(kind: str) -> str:
        await service.mail.drain()
        found = re.search(
            r"#token=(\S+)", next(m for m in outbox.messages() if m.kind == kind).text
        )
        assert found is not None
        return found[1]

    async with client_for(app) as client:
        alice = await register(client, "alice")
        verified = await client.post(
            "/auth/email/verify", json={"token": await mailed("email_verification")}
        )
        assert verified.status_code == 204, verified.text
        assert (
            await client.post("/auth/password/forgot", json={"username": "alice"})
        ).status_code == 202
        reset = await client.post(
            "/auth/password/reset",
            json={"token": await mailed("password_reset"), "new_password": "Brand-new-pass-7"},
        )
        assert reset.status_code == 204, reset.text
        resend = await client.post("/auth/email/verify/resend", json={"username": "alice"})
        assert resend.status_code == 202
        tokens = await login(client, "alice", "Brand-new-pass-7")
        events = await client.get("/auth/me/events", headers=bearer(tokens))
        assert [e["event"]["name"] for e in events.json()["events"]][:2] == [
            "login",
            "password_reset",
        ]

        root = await login(client, "root")
        created = await client.post(
            "/auth/admin/users",
            json={"username": "bob", "email": "bob@example.com", "password": PASSWORD},
            headers=bearer(root),
        )
        assert created.status_code == 201, created.text
        for path in ("", "/sessions", "/events"):
            answer = await client.get(
                f"/auth/admin/users/{alice['id']}{path}", headers=bearer(root)
            )
            assert answer.status_code == 200, (path, answer.text)
        password = await client.post(
            f"/auth/admin/users/{alice['id']}/password",
            json={"new_password": PASSWORD},
            headers=bearer(root),
        )
        assert password.status_code == 204
