"""Two BearerTokenMiddlewares, one around a host and one around an app the host mounts.

A browser's WebSocket token comes as a subprotocol (`new WebSocket(url, ["bearer", token])`),
which the outer middleware takes out of the handshake so that no app finds it: the inner
one then has no token of its own. It takes the caller the outer one put into
`scope["auth"]` when its own verifier (`verifier.verifier_identity`) verified it, and
applies its own rules to it: the scopes it requires, the paths it excludes. A caller of
another verifier, an anonymous one, or one a host's own code built is no caller of it. On
HTTP the token stays in the `Authorization` header, and each layer reads it there.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import make_service
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocket
from support import Clock, login, make_clocked_service, serving
from test_app import assert_problem
from test_middleware_websocket_tokens import first_message

from s3auth_asgi import BearerCredentials, S3AuthService
from s3auth_asgi.middleware.bearer import BearerTokenMiddleware
from s3auth_asgi.middleware.cache import VerifiedToken
from s3auth_asgi.types import ASGIApp, Receive, Scope, Send
from s3auth_asgi.verifier import AccessTokenVerifier, verifier_identity


def who(scope: Scope) -> dict[str, Any]:
    user = scope["user"]
    return {
        "user": user.display_name,
        "scopes": list(user.scopes),
        "subprotocols": scope.get("subprotocols"),
    }


async def seen(websocket: WebSocket) -> None:
    """Accepts choosing the first subprotocol left, if any; tells who it was handed."""
    offered = websocket.scope["subprotocols"]
    await websocket.accept(subprotocol=offered[0] if offered else None)
    await websocket.send_json(who(websocket.scope))
    await websocket.close()


async def page(request: Request) -> JSONResponse:
    return JSONResponse(who(request.scope))


def nested(outer: AccessTokenVerifier, inner: AccessTokenVerifier, **outer_options: Any) -> Any:
    """A host whose own API needs a token and elsewhere takes one optionally, mounting an
    admin app that protects itself: the `admin` scope everywhere but its public page."""
    admin = BearerTokenMiddleware(
        Starlette(
            routes=[
                WebSocketRoute("/ws", seen),
                WebSocketRoute("/public/ws", seen),
                Route("/page", page),
            ]
        ),
        inner,
        protected={"/*": ["admin"]},
        exclude=("/public/*",),
    )
    host = Starlette(routes=[Mount("/admin", app=admin), WebSocketRoute("/ws", seen)])
    return BearerTokenMiddleware(host, outer, protected=("/api/*",), **outer_options)


def tokens(service: S3AuthService, client: TestClient) -> tuple[str, str]:
    """An administrator's access token and another user's."""
    _, admin = client.portal.call(lambda: login(service, "root", scopes=["admin"]))
    _, alice = client.portal.call(login, service)
    return admin.access_token, alice.access_token


@pytest.mark.parametrize("outer_given", ["service", "its TokenCodec"])
def test_a_browsers_token_reaches_a_mounted_apps_own_middleware(outer_given: str) -> None:
    service = make_service()
    outer = service if outer_given == "service" else service.tokens
    app = nested(outer, service, websocket_query_param="access_token")
    with TestClient(app) as client:
        admin, alice = tokens(service, client)
        with client.websocket_connect("/admin/ws", subprotocols=["bearer", admin]) as ws:
            alone = ws.accepted_subprotocol, ws.receive_json()
        # Taken out of the query by the outer layer too, where the inner one reads none.
        with client.websocket_connect(f"/admin/ws?access_token={admin}") as ws:
            by_query = ws.accepted_subprotocol, ws.receive_json()
        offered = ["chat.v1", "bearer", admin]
        with client.websocket_connect("/admin/ws", subprotocols=offered) as ws:
            beside = ws.accepted_subprotocol, ws.receive_json()
        header = {"Authorization": f"Bearer {admin}"}
        with client.websocket_connect("/admin/ws", headers=header) as ws:
            by_header = ws.accepted_subprotocol, ws.receive_json()
        # The inner middleware's own rules: its scope is required, its exclusion skips.
        with (
            pytest.raises(WebSocketDenialResponse) as not_admin,
            client.websocket_connect("/admin/ws", subprotocols=["bearer", alice]),
        ):
            pass
        with client.websocket_connect("/admin/public/ws", subprotocols=["bearer", admin]) as ws:
            excluded = ws.accepted_subprotocol, ws.receive_json()
    caller = {"user": "root", "scopes": ["admin"], "subprotocols": []}
    # `bearer` named once at accept, by the layer it was offered to; never the token.
    assert alone == ("bearer", caller)
    assert beside == ("chat.v1", {**caller, "subprotocols": ["chat.v1"]})
    assert by_header == by_query == (None, caller)
    assert_problem(not_admin.value, 403, "insufficient_scope")
    assert excluded == ("bearer", {"user": "", "scopes": [], "subprotocols": []})


def test_only_a_caller_of_the_inner_middlewares_own_verifier_is_taken() -> None:
    service = make_service()
    # Another service object over the same store and keys: it verifies the same tokens,
    # and vouches for nothing to this one.
    other = make_service(store=service.store)
    with TestClient(nested(other, service)) as client:
        admin, _ = tokens(service, client)
        with (
            pytest.raises(WebSocketDenialResponse) as foreign,
            client.websocket_connect("/admin/ws", subprotocols=["bearer", admin]),
        ):
            pass
        # The outer layer's paths that take a token optionally: none is anonymous.
        with (
            pytest.raises(WebSocketDenialResponse) as anonymous,
            client.websocket_connect("/admin/ws"),
        ):
            pass
    assert_problem(foreign.value, 401, "authentication_required")
    assert_problem(anonymous.value, 401, "authentication_required")
    # With the subprotocol off outside, the token reaches the inner layer as it was sent.
    with TestClient(nested(other, service, websocket_subprotocol=None)) as client:
        admin, _ = tokens(service, client)
        with client.websocket_connect("/admin/ws", subprotocols=["bearer", admin]) as ws:
            assert ws.accepted_subprotocol == "bearer"
            assert ws.receive_json() == {"user": "root", "scopes": ["admin"], "subprotocols": []}


def claiming(credentials: BearerCredentials, app: ASGIApp) -> ASGIApp:
    """A host's own layer that says who is calling, as its own code decided."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        scope["user"] = getattr(credentials, "user", None)
        scope["auth"] = credentials
        await app(scope, receive, send)

    return wrapped


@pytest.mark.anyio
async def test_credentials_a_host_built_are_no_caller_of_the_inner_middleware() -> None:
    service = make_service()
    _, pair = await login(service, "root", scopes=["admin"])
    claims = service.verify_access_token(pair.access_token)
    built = [
        BearerCredentials(("authenticated", "admin"), claims),
        VerifiedToken(dict(claims), 0),  # verified by nobody named
        VerifiedToken(dict(claims), 0, verified_by=verifier_identity(make_service())),
    ]
    for credentials in built:
        app = claiming(credentials, nested(service, service).app)
        with TestClient(app) as client:
            with (
                pytest.raises(WebSocketDenialResponse) as refused,
                client.websocket_connect("/admin/ws"),
            ):
                pass
            answer = client.get("/admin/page")
        assert_problem(refused.value, 401, "authentication_required")
        assert_problem(answer, 401, "authentication_required")


def test_on_http_each_layer_reads_the_header() -> None:
    service = make_service()
    app = nested(service, service)
    inner = app.app.routes[0].app
    with TestClient(app) as client:
        admin, alice = tokens(service, client)
        allowed = client.get("/admin/page", headers={"Authorization": f"Bearer {admin}"})
        refused = client.get("/admin/page", headers={"Authorization": f"Bearer {alice}"})
        anonymous = client.get("/admin/page")
    assert allowed.json() == {"user": "root", "scopes": ["admin"], "subprotocols": None}
    assert_problem(refused, 403, "insufficient_scope")
    assert_problem(anonymous, 401, "authentication_required")
    # The inner layer verified the header's token itself, and keeps it in its own cache.
    assert admin.encode() in inner.cache and alice.encode() in inner.cache


def test_a_caller_that_expired_between_the_layers_is_refused() -> None:
    clock = Clock()
    service = make_clocked_service(clock=clock)
    app = nested(service, service)
    host = app.app
    late = service.settings.access_token_seconds + service.settings.leeway_seconds

    async def slow_host(scope: Scope, receive: Receive, send: Send) -> None:
        # Time passes after the outer layer verified the token: the inner one judges `exp`.
        if scope.get("path", "").endswith("/late"):
            clock.advance(late)
            scope["path"] = scope["path"].removesuffix("/late")
        await host(scope, receive, send)

    app.app = slow_host
    with TestClient(app) as client:
        admin, _ = tokens(service, client)
        with client.websocket_connect("/admin/ws", subprotocols=["bearer", admin]) as ws:
            assert ws.receive_json()["user"] == "root"
        with (
            pytest.raises(WebSocketDenialResponse) as expired,
            client.websocket_connect("/admin/ws/late", subprotocols=["bearer", admin]),
        ):
            pass
    assert_problem(expired.value, 401, "token_expired")


@pytest.mark.anyio
async def test_a_real_server_accepts_the_browsers_token_through_both_layers() -> None:
    service = make_service()
    _, pair = await login(service, "root", scopes=["admin"])
    with serving(nested(service, service), log_config=None, ws="wsproto") as url:
        subprotocol, message = first_message(url, "/admin/ws", ["bearer", pair.access_token])
    assert subprotocol == "bearer"
    assert message == {"user": "root", "scopes": ["admin"], "subprotocols": []}
