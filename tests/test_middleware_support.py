"""Helpers shared by the middleware tests (no tests here): a controllable clock, a
service with real tokens and sessions, and raw ASGI clients for HTTP and WebSocket."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from conftest import make_settings

from s3auth_asgi import S3AuthService, TokenPair
from s3auth_asgi.models import User
from s3auth_asgi.storage import ObjectStore
from s3auth_asgi.tokens import new_id

Headers = list[tuple[bytes, bytes]]


class Clock:
    """Wall-clock time that a test moves forward by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_clocked_service(
    store_url: str = "memory://",
    *,
    clock: Clock | None = None,
    store: ObjectStore | None = None,
    **overrides: Any,
) -> S3AuthService:
    return S3AuthService(make_settings(store_url, **overrides), store=store, clock=clock or Clock())


def user_record(
    username: str = "alice", *, scopes: Sequence[str] = (), admin: bool = False
) -> User:
    """A user as `create_token_pair` needs it, without paying for a password hash."""
    return User(
        id=new_id(),
        username=username,
        email=f"{username}@example.com",
        hashed_password="-",
        is_admin=admin,
        scopes=sorted(scopes),
    )


async def login(
    service: S3AuthService, username: str = "alice", *, scopes: Sequence[str] = ()
) -> tuple[User, TokenPair]:
    """A real session (one object-store PUT) and its token pair."""
    user = user_record(username, scopes=scopes)
    return user, await service.create_token_pair(user)


def bearer(token: str) -> Headers:
    return [(b"authorization", f"Bearer {token}".encode())]


def http_scope(
    path: str = "/api/items",
    headers: Iterable[tuple[bytes, bytes]] = (),
    *,
    method: str = "GET",
    raw_path: bytes | None = None,
    root_path: str = "",
) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape") if raw_path is None else raw_path,
        "root_path": root_path,
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


@dataclass
class Response:
    status: int
    headers: dict[bytes, bytes]
    body: bytes
    messages: list[dict[str, Any]] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def challenge(self) -> str:
        return self.headers.get(b"www-authenticate", b"").decode()


async def call_http(app: Any, scope: dict[str, Any], body: bytes = b"") -> Response:
    """One request through a raw ASGI app; every sent message is kept."""
    messages: list[dict[str, Any]] = []
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        await asyncio.sleep(3600)  # a client that keeps the connection open
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app(scope, receive, send)
    start = next(m for m in messages if m["type"] == "http.response.start")
    body_out = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return Response(start["status"], dict(start.get("headers", [])), body_out, messages)


def websocket_scope(
    path: str = "/ws",
    headers: Iterable[tuple[bytes, bytes]] = (),
    *,
    subprotocols: Sequence[str] = (),
    query_string: bytes = b"",
) -> dict[str, Any]:
    return {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query_string,
        "headers": [(b"host", b"testserver"), *headers],
        "subprotocols": list(subprotocols),
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


@dataclass
class WebSocketResult:
    sent: list[dict[str, Any]]

    @property
    def accepted(self) -> bool:
        return any(m["type"] == "websocket.accept" for m in self.sent)

    @property
    def first(self) -> dict[str, Any]:
        return self.sent[0]

    @property
    def texts(self) -> list[str]:
        return [m["text"] for m in self.sent if m["type"] == "websocket.send" and "text" in m]


async def websocket_session(
    app: Any, scope: dict[str, Any], text: str = "hello"
) -> WebSocketResult:
    """Connect, send one text message once accepted, disconnect after the first reply or
    the close: enough to see a refusal before accept, or an accepted echo."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    inbox.put_nowait({"type": "websocket.connect"})
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return await inbox.get()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "websocket.accept":
            inbox.put_nowait({"type": "websocket.receive", "text": text})
        elif message["type"] in ("websocket.send", "websocket.close"):
            inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})

    await asyncio.wait_for(app(scope, receive, send), timeout=10)
    return WebSocketResult(sent)
