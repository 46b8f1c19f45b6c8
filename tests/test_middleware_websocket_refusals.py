"""How a refused WebSocket handshake reaches the client. Every middleware answers at once,
without waiting for `websocket.connect`: with its problem response (status, challenge,
body) where the server offers the `websocket.http.response` extension, as uvicorn and
Hypercorn do, else with a close 1008 before accept whose reason is the problem code."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import make_service
from quart import Quart
from quart import websocket as quart_websocket
from quart.testing import WebsocketResponseError
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from support import bearer, login, serving, serving_hypercorn, websocket_scope
from websocket_handshakes import Answer, handshake_sent

from s3auth_asgi import S3AuthService
from s3auth_asgi.middleware.bearer import BearerTokenMiddleware
from s3auth_asgi.middleware.blacklist import BlacklistMiddleware
from s3auth_asgi.middleware.ratelimit import RateLimitMiddleware
from s3auth_asgi.ratelimit import RateLimit, RateLimiter, RateLimitRule

pytestmark = pytest.mark.anyio

DENIAL = {"websocket.http.response": {}}


async def greet(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(websocket.user.display_name)
    await websocket.close()


def guarded(service: S3AuthService, *, strict: bool = False) -> RateLimitMiddleware:
    """A Starlette app behind the three middlewares, as the guides stack them."""
    app = Starlette(routes=[WebSocketRoute("/ws/{name}", greet)])
    protected = {"/ws/admin": ["admin"], "/*": []}
    bearer_app = BearerTokenMiddleware(
        BlacklistMiddleware(app, service, strict=strict), service, protected=protected
    )
    limiter = RateLimiter(limits={"chat": RateLimit(1, 60)})
    return RateLimitMiddleware(bearer_app, limiter, [RateLimitRule("/ws/limited", "chat")])


# On a real server ---------------------------------------------------------------------


def handshake(url: str, path: str, token: str | None = None) -> Answer:
    """Open a WebSocket handshake on the server at `url`, as a browser would, and read the
    answer: up to the switch of protocols, or the whole HTTP response."""
    authorization = [] if token is None else [f"Authorization: Bearer {token}"]
    with handshake_sent(url, path, *authorization) as sock:
        raw = b""
        while True:
            if b"\r\n\r\n" in raw:
                answer = Answer(raw)
                if answer.status == 101:
                    return answer
                if len(answer.body) >= int(answer.headers.get("content-length", "0")):
                    return answer
            chunk = sock.recv(65536)
            if not chunk:
                return Answer(raw)
            raw += chunk


SERVERS = {
    # Without uvicorn's own logging setup its errors propagate, where caplog sees them.
    "uvicorn": lambda app: serving(app, log_config=None),
    "hypercorn": serving_hypercorn,
}


def server_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith(("uvicorn", "hypercorn")) and record.levelno >= logging.WARNING
    ]


@pytest.mark.parametrize("server", sorted(SERVERS))
async def test_a_real_server_shows_the_client_why_its_handshake_was_refused(
    server: str, caplog: pytest.LogCaptureFixture
) -> None:
    service = make_service()
    _, pair = await login(service)
    _, revoked = await login(service)
    await service.revoke_refresh_token(revoked.refresh_token)
    with SERVERS[server](guarded(service)) as url:
        missing = handshake(url, "/ws/chat")
        garbage = handshake(url, "/ws/chat", "x.y.z")
        logged_out = handshake(url, "/ws/chat", revoked.access_token)
        not_admin = handshake(url, "/ws/admin", pair.access_token)
        admitted = handshake(url, "/ws/limited", pair.access_token)
        limited = handshake(url, "/ws/limited", pair.access_token)

    assert missing.problem == (401, "authentication_required")
    assert missing.headers["www-authenticate"] == 'Bearer realm="api"'
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.headers["cache-control"] == "no-store"
    assert garbage.problem == (401, "invalid_token")
    assert garbage.headers["www-authenticate"].startswith(
        'Bearer realm="api", error="invalid_token", error_description="'
    )
    assert logged_out.problem == (401, "token_revoked")
    assert 'error="invalid_token"' in logged_out.headers["www-authenticate"]
    assert not_admin.problem == (403, "insufficient_scope")
    assert not_admin.headers["www-authenticate"].endswith('scope="admin"')
    assert admitted.status == 101
    assert limited.problem == (429, "rate_limited")
    assert limited.headers["retry-after"] == "60"
    assert server_errors(caplog) == []


@pytest.mark.parametrize("server", sorted(SERVERS))
async def test_a_real_server_shows_the_client_a_store_outage(
    server: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "store"
    service = make_service(f"file://{root}")
    _, pair = await login(service)
    # Where the store's directory was, a plain file: every request to it fails.
    shutil.rmtree(root)
    root.write_text("not a directory\n")
    with SERVERS[server](guarded(service, strict=True)) as url:
        down = handshake(url, "/ws/chat", pair.access_token)
    assert down.problem == (503, "store_unavailable")
    assert down.headers["retry-after"] == "5"
    assert "www-authenticate" not in down.headers  # not the client's credentials' fault
    assert server_errors(caplog) == []


# At the ASGI level --------------------------------------------------------------------


async def drive(app: Any, scope: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Run a handshake: what the app received and sent, in order; the client leaves once
    its handshake has been read."""
    events: list[tuple[str, dict[str, Any]]] = []
    messages = [{"type": "websocket.connect"}]

    async def receive() -> dict[str, Any]:
        message = messages.pop(0) if messages else {"type": "websocket.disconnect", "code": 1000}
        events.append(("received", message))
        return message

    async def send(message: dict[str, Any]) -> None:
        events.append(("sent", message))

    await app(scope, receive, send)
    return events


async def refusals(service: S3AuthService, extensions: dict[str, Any] | None) -> dict[str, Any]:
    """A handshake refused by each middleware, with `extensions` in its scope."""
    _, pair = await login(service)
    _, revoked = await login(service)
    await service.revoke_refresh_token(revoked.refresh_token)
    app = guarded(service)
    await drive(app, websocket_scope("/ws/limited", bearer(pair.access_token)))

    def scope(path: str, token: str | None = None) -> dict[str, Any]:
        built = websocket_scope(path, bearer(token) if token else ())
        if extensions is not None:
            built["extensions"] = extensions
        return built

    return {
        "bearer": await drive(app, scope("/ws/chat")),
        "blacklist": await drive(app, scope("/ws/chat", revoked.access_token)),
        "ratelimit": await drive(app, scope("/ws/limited", pair.access_token)),
    }


async def test_with_the_extension_every_middleware_answers_with_its_problem() -> None:
    answered = await refusals(make_service(), DENIAL)
    expected = {
        "bearer": (401, "authentication_required"),
        "blacklist": (401, "token_revoked"),
        "ratelimit": (429, "rate_limited"),
    }
    for name, events in answered.items():
        # Nothing is read: the refusal does not wait for `websocket.connect`.
        (sent_start, start), (sent_body, body) = events
        assert sent_start == sent_body == "sent", name
        assert start["type"] == "websocket.http.response.start", name
        assert body["type"] == "websocket.http.response.body", name
        document = json.loads(body["body"])
        assert (start["status"], document["code"]) == expected[name]
        assert document["status"] == start["status"]
        headers = dict(start["headers"])
        assert headers[b"content-length"] == str(len(body["body"])).encode()
        assert (b"www-authenticate" in headers) == (start["status"] == 401), name


async def test_without_the_extension_every_middleware_closes_with_1008_and_the_code() -> None:
    for extensions in (None, {}):
        answered = await refusals(make_service(), extensions)
        assert answered == {
            name: [("sent", {"type": "websocket.close", "code": 1008, "reason": code})]
            for name, code in (
                ("bearer", "authentication_required"),
                ("blacklist", "token_revoked"),
                ("ratelimit", "rate_limited"),
            )
        }


async def test_quarts_test_client_is_answered_though_it_sends_no_connect() -> None:
    # Quart's test client goes through `asgi_app`, hence through the middlewares, but never
    # sends `websocket.connect`: a refusal waiting for it would leave the test hanging.
    service = make_service()
    _, pair = await login(service)
    _, revoked = await login(service)
    await service.revoke_refresh_token(revoked.refresh_token)
    quart_app = Quart("refusals")

    @quart_app.websocket("/ws/<name>")
    async def greet_in_quart(name: str) -> None:
        await quart_websocket.accept()
        await quart_websocket.send(quart_websocket.scope["user"].display_name)

    limiter = RateLimiter(limits={"chat": RateLimit(1, 60)})
    quart_app.asgi_app = RateLimitMiddleware(  # type: ignore[method-assign]
        BearerTokenMiddleware(
            BlacklistMiddleware(quart_app.asgi_app, service),
            service,
            protected={"/ws/admin": ["admin"], "/*": []},
        ),
        limiter,
        [RateLimitRule("/ws/limited", "chat")],
    )
    client = quart_app.test_client()

    async def refused(path: str, token: str | None = None) -> tuple[int | None, str]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with anyio.fail_after(5), pytest.raises(WebsocketResponseError) as refusal:
            async with client.websocket(path, headers=headers) as socket:
                await socket.receive()
        answer = refusal.value.response
        return answer.status_code, json.loads(await answer.get_data())["code"]

    assert await refused("/ws/chat") == (401, "authentication_required")
    assert await refused("/ws/chat", revoked.access_token) == (401, "token_revoked")
    assert await refused("/ws/admin", pair.access_token) == (403, "insufficient_scope")
    headers = {"Authorization": f"Bearer {pair.access_token}"}
    async with client.websocket("/ws/limited", headers=headers) as socket:
        assert await socket.receive() == "alice"
    assert await refused("/ws/limited", pair.access_token) == (429, "rate_limited")
