"""The middlewares on real Starlette, FastAPI, Litestar and Quart apps.

Each app has the same four routes — an optional `/public`, `/api/me` (any valid token),
`/api/admin` (the `admin` scope, checked with `requires` the framework's way) and a
WebSocket echo at `/ws/echo` — and each is shown anonymous, valid, expired, revoked and
wrong-scope requests, and a WebSocket refused and accepted. HTTP goes through httpx's ASGI
transport; WebSockets through the raw ASGI driver of support.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from fastapi import Request as FastAPIRequest
from fastapi import WebSocket as FastAPIWebSocket
from litestar import Litestar, get, websocket
from litestar import Request as LitestarRequest
from litestar import Response as LitestarResponse
from litestar import WebSocket as LitestarWebSocket
from litestar.middleware import DefineMiddleware
from quart import Quart
from quart import Response as QuartResponse
from quart import request as quart_request
from quart import websocket as quart_websocket
from starlette.applications import Starlette
from starlette.authentication import requires as starlette_requires
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from support import (  # noqa: F401 (the *_fixture names register fixtures here)
    Clock,
    asgi_client,
    bearer,
    by_framework,
    clock_fixture,
    clocked_service_fixture,
    framework_fixture,
    login,
    run_lifespan,
    websocket_scope,
    websocket_session,
)

from s3auth_asgi import S3AuthError, S3AuthService
from s3auth_asgi.middleware.bearer import BearerTokenMiddleware
from s3auth_asgi.middleware.blacklist import BlacklistMiddleware
from s3auth_asgi.middleware.requires import requires
from s3auth_asgi.middleware.user import AuthenticatedUser
from s3auth_asgi.problems import auth_error_response

pytestmark = pytest.mark.anyio

PROTECTED = ("/api/*", "/ws/*")


def who(user: Any, auth: Any) -> dict[str, Any]:
    return {
        "authenticated": user.is_authenticated,
        "name": user.display_name,
        "identity": user.identity,
        "scopes": list(auth.scopes),
    }


# Starlette ---------------------------------------------------------------------------


def starlette_app(service: S3AuthService) -> Any:
    async def public(request: Request) -> JSONResponse:
        return JSONResponse(who(request.user, request.auth))

    async def me(request: Request) -> JSONResponse:
        return JSONResponse(who(request.user, request.auth))

    @requires("admin")
    async def admin(request: Request) -> JSONResponse:
        return JSONResponse({"admin": request.user.display_name})

    @starlette_requires("authenticated")  # Starlette's own decorator works unchanged
    async def starlette_guarded(request: Request) -> JSONResponse:
        return JSONResponse({"name": request.user.display_name})

    async def echo(socket: WebSocket) -> None:
        await socket.accept()
        text = await socket.receive_text()
        await socket.send_text(f"{socket.user.display_name}:{text}")
        await socket.close()

    async def auth_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, S3AuthError)
        status, headers, body = auth_error_response(exc)
        return Response(body, status_code=status, headers=headers)

    return Starlette(
        routes=[
            Route("/public", public),
            Route("/api/me", me),
            Route("/api/admin", admin),
            Route("/api/starlette-requires", starlette_guarded),
            WebSocketRoute("/ws/echo", echo),
        ],
        middleware=[
            Middleware(BearerTokenMiddleware, tokens=service, protected=PROTECTED),
            Middleware(BlacklistMiddleware, blacklist=service),
        ],
        exception_handlers={S3AuthError: auth_error},
    )


# FastAPI -----------------------------------------------------------------------------


def fastapi_app(service: S3AuthService) -> Any:
    app = FastAPI()

    @app.get("/public")
    async def public(request: FastAPIRequest) -> dict[str, Any]:
        return who(request.user, request.auth)

    @app.get("/api/me")
    async def me(request: FastAPIRequest) -> dict[str, Any]:
        return who(request.user, request.auth)

    @app.get("/api/admin")
    async def admin(
        user: AuthenticatedUser = Depends(requires("admin").dependency),  # noqa: B008
    ) -> dict[str, Any]:
        return {"admin": user.display_name}

    @app.websocket("/ws/echo")
    async def echo(socket: FastAPIWebSocket) -> None:
        await socket.accept()
        text = await socket.receive_text()
        await socket.send_text(f"{socket.user.display_name}:{text}")
        await socket.close()

    @app.exception_handler(S3AuthError)
    async def auth_error(request: FastAPIRequest, exc: S3AuthError) -> Response:
        status, headers, body = auth_error_response(exc)
        return Response(body, status_code=status, headers=headers)

    # add_middleware puts each one outside the previous: the blacklist check goes first.
    app.add_middleware(BlacklistMiddleware, blacklist=service)
    app.add_middleware(BearerTokenMiddleware, tokens=service, protected=PROTECTED)
    return app


# Litestar ----------------------------------------------------------------------------


@get("/public")
async def litestar_public(request: LitestarRequest[Any, Any, Any]) -> dict[str, Any]:
    return who(request.user, request.auth)


@get("/api/me")
async def litestar_me(request: LitestarRequest[Any, Any, Any]) -> dict[str, Any]:
    return who(request.user, request.auth)


@get("/api/admin", guards=[requires("admin").guard])
async def litestar_admin(request: LitestarRequest[Any, Any, Any]) -> dict[str, Any]:
    return {"admin": request.user.display_name}


@websocket("/ws/echo")
async def litestar_echo(socket: LitestarWebSocket[Any, Any, Any]) -> None:
    await socket.accept()
    text = await socket.receive_text()
    await socket.send_text(f"{socket.user.display_name}:{text}")
    await socket.close()


def litestar_auth_error(
    request: LitestarRequest[Any, Any, Any], exc: Exception
) -> LitestarResponse[bytes]:
    assert isinstance(exc, S3AuthError)
    status, headers, body = auth_error_response(exc)
    media_type = headers.pop("content-type")
    return LitestarResponse(body, status_code=status, headers=headers, media_type=media_type)


def litestar_app(service: S3AuthService) -> Any:
    return Litestar(
        route_handlers=[litestar_public, litestar_me, litestar_admin, litestar_echo],
        middleware=[
            DefineMiddleware(BearerTokenMiddleware, tokens=service, protected=PROTECTED),
            DefineMiddleware(BlacklistMiddleware, blacklist=service),
        ],
        exception_handlers={S3AuthError: litestar_auth_error},
    )


# Quart -------------------------------------------------------------------------------


def quart_app(service: S3AuthService) -> Any:
    app = Quart("s3auth_test")

    @app.get("/public")
    async def public() -> dict[str, Any]:
        return who(quart_request.scope["user"], quart_request.scope["auth"])

    @app.get("/api/me")
    async def me() -> dict[str, Any]:
        return who(quart_request.scope["user"], quart_request.scope["auth"])

    @app.get("/api/admin")
    @requires("admin")  # finds the caller without a request argument
    async def admin() -> dict[str, Any]:
        return {"admin": quart_request.scope["user"].display_name}

    @app.websocket("/ws/echo")
    async def echo() -> None:
        await quart_websocket.accept()
        text = await quart_websocket.receive()
        await quart_websocket.send(f"{quart_websocket.scope['user'].display_name}:{text}")

    @app.errorhandler(S3AuthError)
    async def auth_error(error: S3AuthError) -> QuartResponse:
        status, headers, body = auth_error_response(error)
        return QuartResponse(body, status=status, headers=headers)

    app.asgi_app = BearerTokenMiddleware(  # type: ignore[method-assign]
        BlacklistMiddleware(app.asgi_app, service), service, protected=PROTECTED
    )
    return app


FRAMEWORKS = by_framework(starlette_app, fastapi_app, litestar_app, quart_app)


@pytest.fixture
def app(framework: str, service: S3AuthService) -> Any:
    return FRAMEWORKS[framework](service)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_anonymous(app: Any) -> None:
    async with asgi_client(app) as http:
        public = await http.get("/public")
        assert public.status_code == 200
        assert public.json() == {"authenticated": False, "name": "", "identity": "", "scopes": []}
        protected = await http.get("/api/me")
    assert protected.status_code == 401
    assert protected.headers["www-authenticate"] == 'Bearer realm="api"'
    assert protected.headers["content-type"] == "application/problem+json"
    assert protected.json()["code"] == "authentication_required"


async def test_valid(app: Any, service: S3AuthService) -> None:
    user, pair = await login(service, "alice", scopes=["items:read"])
    async with asgi_client(app) as http:
        me = await http.get("/api/me", headers=auth(pair.access_token))
        public = await http.get("/public", headers=auth(pair.access_token))
    assert me.status_code == 200
    expected = {
        "authenticated": True,
        "name": "alice",
        "identity": user.id,
        "scopes": ["authenticated", "items:read"],
    }
    assert me.json() == expected
    assert public.json() == expected  # optional paths still verify a token that is sent


async def test_expired(app: Any, service: S3AuthService, clock: Clock) -> None:
    _, pair = await login(service)
    async with asgi_client(app) as http:
        assert (await http.get("/api/me", headers=auth(pair.access_token))).status_code == 200
        clock.advance(service.settings.access_token_seconds + service.settings.leeway_seconds)
        expired = await http.get("/api/me", headers=auth(pair.access_token))
    assert expired.status_code == 401
    assert expired.json()["code"] == "token_expired"
    assert expired.headers["www-authenticate"].startswith(
        'Bearer realm="api", error="invalid_token", error_description='
    )


async def test_revoked(app: Any, service: S3AuthService) -> None:
    _, pair = await login(service)
    async with asgi_client(app) as http:
        assert (await http.get("/api/me", headers=auth(pair.access_token))).status_code == 200
        await service.revoke_refresh_token(pair.refresh_token)
        revoked = await http.get("/api/me", headers=auth(pair.access_token))
    assert revoked.status_code == 401
    assert revoked.json()["code"] == "token_revoked"
    assert 'error="invalid_token"' in revoked.headers["www-authenticate"]


async def test_wrong_scope(app: Any, service: S3AuthService) -> None:
    _, reader = await login(service, "reader", scopes=["items:read"])
    _, admin = await login(service, "root", scopes=["admin"])
    async with asgi_client(app) as http:
        refused = await http.get("/api/admin", headers=auth(reader.access_token))
        allowed = await http.get("/api/admin", headers=auth(admin.access_token))
    assert refused.status_code == 403
    assert refused.json()["code"] == "insufficient_scope"
    assert refused.headers["www-authenticate"] == (
        'Bearer realm="api", error="insufficient_scope", '
        'error_description="This needs the scopes: admin", scope="admin"'
    )
    assert allowed.status_code == 200
    assert allowed.json() == {"admin": "root"}


async def test_websocket_refused(app: Any, service: S3AuthService) -> None:
    anonymous = await websocket_session(app, websocket_scope("/ws/echo"))
    assert anonymous.first == {
        "type": "websocket.close",
        "code": 1008,
        "reason": "authentication_required",
    }
    _, pair = await login(service)
    await service.revoke_refresh_token(pair.refresh_token)
    revoked = await websocket_session(app, websocket_scope("/ws/echo", bearer(pair.access_token)))
    assert revoked.first == {"type": "websocket.close", "code": 1008, "reason": "token_revoked"}
    assert not anonymous.accepted and not revoked.accepted


async def test_websocket_accepted(app: Any, service: S3AuthService) -> None:
    _, pair = await login(service, "alice")
    by_header = await websocket_session(app, websocket_scope("/ws/echo", bearer(pair.access_token)))
    assert by_header.accepted
    assert by_header.texts == ["alice:hello"]
    browser = websocket_scope("/ws/echo", subprotocols=["bearer", pair.access_token])
    by_subprotocol = await websocket_session(app, browser, text="hi")
    assert by_subprotocol.texts == ["alice:hi"]
    accept = next(m for m in by_subprotocol.sent if m["type"] == "websocket.accept")
    assert accept["subprotocol"] == "bearer"


async def test_starlette_requires_works_unchanged(service: S3AuthService) -> None:
    _, pair = await login(service)
    async with asgi_client(starlette_app(service)) as http:
        allowed = await http.get("/api/starlette-requires", headers=auth(pair.access_token))
    assert allowed.json() == {"name": "alice"}


async def test_lifespan_reaches_the_framework(framework: str, service: S3AuthService) -> None:
    started: list[str] = []
    app = FRAMEWORKS[framework](service)
    if framework in ("starlette", "fastapi"):

        @contextlib.asynccontextmanager
        async def lifespan(app: Any) -> AsyncIterator[None]:
            started.append("up")
            yield

        app.router.lifespan_context = lifespan
    elif framework == "litestar":
        app.on_startup.append(lambda: started.append("up"))
    else:
        app.before_serving(_async(lambda: started.append("up")))
    messages = await run_lifespan(app)
    assert started == ["up"]
    assert [m["type"] for m in messages] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


def _async(function: Callable[[], Any]) -> Callable[[], Any]:
    async def run() -> None:
        function()

    return run
