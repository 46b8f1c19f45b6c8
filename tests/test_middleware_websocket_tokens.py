"""A browser's WebSocket token, accepted: what the app and the client see of it.

A browser carries its token as a subprotocol (`new WebSocket(url, ["bearer", token])`),
which it sends in the `Sec-WebSocket-Protocol` header. Checked on real servers (uvicorn and
Hypercorn, through a raw handshake) and at the ASGI level: the handshake is accepted naming
`bearer`, never the token, and the app finds the token neither in `scope["subprotocols"]`
nor in the header, which error reporters and request loggers copy as it is. A token in the
query parameter, where one is named, is taken out of the query string the same way, and so
out of the server's own log line of the handshake, which uvicorn writes from the scope.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from conftest import make_service
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from support import login, serving, serving_hypercorn, websocket_scope, websocket_session
from test_middleware_websocket_refusals import handshake
from websocket_handshakes import Answer, handshake_sent

from s3auth_asgi.middleware.bearer import BearerTokenMiddleware

pytestmark = pytest.mark.anyio


async def seen(websocket: WebSocket) -> None:
    """Tells the client what the app was handed of the handshake."""
    await websocket.accept()
    await websocket.send_text(
        json.dumps(
            {
                "user": websocket.user.display_name,
                "subprotocols": websocket.scope["subprotocols"],
                "header": websocket.headers.getlist("sec-websocket-protocol"),
            }
        )
    )
    await websocket.close()


def protected_and_public(service: Any) -> BearerTokenMiddleware:
    app = Starlette(routes=[WebSocketRoute("/ws/chat", seen), WebSocketRoute("/public/ws", seen)])
    return BearerTokenMiddleware(app, service, exclude=("/public/*",))


def first_message(url: str, path: str, protocols: list[str]) -> tuple[str | None, Any]:
    """Open a handshake offering `protocols` as a browser does, in one header (none when
    there are none); the accepted subprotocol and the app's first text message."""
    offer = [f"Sec-WebSocket-Protocol: {', '.join(protocols)}"] if protocols else []
    with handshake_sent(url, path, *offer) as sock:
        raw = b""
        while b"\r\n\r\n" not in raw:
            chunk = sock.recv(65536)
            assert chunk, raw
            raw += chunk
        answer = Answer(raw)
        assert answer.status == 101, raw
        rest = answer.body
        # One unmasked text frame from the server, its length in 7 or 16 bits.
        while len(rest) < 2 + _length_bytes(rest) + _payload_length(rest):
            chunk = sock.recv(65536)
            assert chunk, rest
            rest += chunk
    assert rest[0] == 0x81, rest[:2]
    start = 2 + _length_bytes(rest)
    text = rest[start : start + _payload_length(rest)].decode()
    return answer.headers.get("sec-websocket-protocol"), json.loads(text)


def _length_bytes(frame: bytes) -> int:
    return 2 if len(frame) > 1 and frame[1] == 126 else 0


def _payload_length(frame: bytes) -> int:
    if len(frame) < 2 or (frame[1] == 126 and len(frame) < 4):
        return 65536  # not known yet: read on
    return int.from_bytes(frame[2:4], "big") if frame[1] == 126 else frame[1]


SERVERS = {
    "uvicorn": lambda app: serving(app, log_config=None, ws="wsproto"),
    "hypercorn": serving_hypercorn,
}
HEADER = {
    # uvicorn over wsproto hands the app none of the headers of the handshake itself.
    "uvicorn": lambda left: [],
    "hypercorn": lambda left: [left] if left else [],
}


@pytest.mark.parametrize("server", sorted(SERVERS))
async def test_a_real_server_accepts_naming_the_marker_and_hands_the_app_no_token(
    server: str,
) -> None:
    service = make_service()
    _, pair = await login(service)
    offered = ["chat.v1", "bearer", pair.access_token]
    with SERVERS[server](protected_and_public(service)) as url:
        private = first_message(url, "/ws/chat", offered)
        public = first_message(url, "/public/ws", offered)
        alone = first_message(url, "/ws/chat", ["bearer", pair.access_token])
    # The app chose no subprotocol: the marker is named, as browsers require.
    assert private[0] == public[0] == alone[0] == "bearer"
    header = HEADER[server]
    assert private[1] == {"user": "alice", "subprotocols": ["chat.v1"], "header": header("chat.v1")}
    # On an excluded path the token is not read, and not handed on either.
    assert public[1] == {"user": "", "subprotocols": ["chat.v1"], "header": header("chat.v1")}
    assert alone[1] == {"user": "alice", "subprotocols": [], "header": []}


async def test_the_header_keeps_every_other_subprotocol_in_its_lines() -> None:
    service = make_service()
    _, pair = await login(service)
    app = protected_and_public(service)
    # Two header lines, as a non-browser client may send them; the token in the second.
    lines = [
        (b"sec-websocket-protocol", b"chat.v1, bearer"),
        (b"sec-websocket-protocol", pair.access_token.encode() + b",chat.v2"),
    ]
    for path, user in (("/ws/chat", "alice"), ("/public/ws", "")):
        scope = websocket_scope(
            path, lines, subprotocols=["chat.v1", "bearer", pair.access_token, "chat.v2"]
        )
        result = await websocket_session(app, scope)
        assert result.first == {"type": "websocket.accept", "subprotocol": "bearer", "headers": []}
        assert json.loads(result.texts[0]) == {
            "user": user,
            "subprotocols": ["chat.v1", "chat.v2"],
            "header": ["chat.v1, chat.v2"],
        }
        assert (b"sec-websocket-protocol", b"chat.v1, bearer") in lines  # the server's own


async def query_seen(websocket: WebSocket) -> None:
    """Tells the client who it is and the query string the app was handed."""
    await websocket.accept()
    await websocket.send_text(
        json.dumps({"user": websocket.user.display_name, "query": websocket.url.query})
    )
    await websocket.close()


async def test_a_token_in_the_query_reaches_neither_the_app_nor_the_servers_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = make_service()
    _, pair = await login(service)
    app = Starlette(
        routes=[WebSocketRoute("/ws/{room}", query_seen), WebSocketRoute("/public/ws", query_seen)]
    )
    middleware = BearerTokenMiddleware(
        app,
        service,
        protected={"/ws/admin": ["admin"], "/ws/*": []},
        exclude=("/public/*",),
        websocket_query_param="access_token",
    )
    query = f"room=1&access_token={pair.access_token}&x=%20"
    with serving(middleware, log_config=None, ws="wsproto") as url:
        # uvicorn writes each handshake's path and query at INFO, its default level.
        caplog.set_level(logging.INFO, logger="uvicorn.error")
        private = first_message(url, f"/ws/chat?{query}", [])
        public = first_message(url, f"/public/ws?{query}", [])
        refused = handshake(url, f"/ws/admin?{query}")
    assert private == (None, {"user": "alice", "query": "room=1&x=%20"})
    assert public == (None, {"user": "", "query": "room=1&x=%20"})
    assert refused.problem == (403, "insufficient_scope")
    handshakes = [
        r.getMessage().partition(" - ")[2]  # after the client's address
        for r in caplog.records
        if r.name == "uvicorn.error" and '"WebSocket ' in r.getMessage()
    ]
    assert handshakes == [
        '"WebSocket /ws/chat?room=1&x=%20" [accepted]',
        '"WebSocket /public/ws?room=1&x=%20" [accepted]',
        '"WebSocket /ws/admin?room=1&x=%20" 403',
    ]
