"""Helpers shared by the tests (no tests here; the name keeps pytest from collecting it).

- a controllable clock and a service with real tokens and sessions (`clock` and `service`
  fixtures for the modules that import them);
- raw ASGI: scope builders, clients that keep every message for HTTP, WebSocket and
  lifespan, and fake apps (`ok_app`, `RecordingApp`);
- an httpx client over any ASGI app, and the `framework` fixture with `by_framework`;
- `StoreWrapper`, a `Store` that forwards to a real one, for fakes that delay or fail, and
  two that run another process's work in the middle of a change (`RacedUserWrite`,
  `AfterRequest`);
- hosts whose clocks differ (`SharedTime`, `SkewedClock`, `skewed_host`) and a store whose
  Last-Modified follows the shared time (`StoreClock`; `StoreOnSharedTime` for its reads
  too);
- `held_index_keys`: the index entries that name a user (not the released ones).

Test modules import from here as they do from conftest: `from support import ...`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest
from conftest import make_settings

from s3auth_asgi import S3AuthService, TokenPair
from s3auth_asgi.identifiers import new_id
from s3auth_asgi.models import IndexEntry, User
from s3auth_asgi.storage import ObjectInfo, Store, Versioned, keys
from s3auth_asgi.types import Message, Receive, Scope, Send

T = TypeVar("T")
R = TypeVar("R")
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
    clock: Callable[[], float] | None = None,
    store: Store | None = None,
    **overrides: Any,
) -> S3AuthService:
    return S3AuthService(make_settings(store_url, **overrides), store=store, clock=clock or Clock())


class SharedTime:
    """The true time; every host reads it through its own offset."""

    def __init__(self) -> None:
        # From the real time, which memory:// stamps Last-Modified with: a listing tells
        # expired sessions by it, as it does on a host whose clock is right. A whole
        # second, as `StoreClock` stamps.
        self.now = float(int(time.time()))

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SkewedClock:
    def __init__(self, time: SharedTime, offset: float) -> None:
        self.time, self.offset = time, offset

    def __call__(self) -> float:
        return self.time.now + self.offset

    def advance(self, seconds: float) -> None:  # the helpers here move clocks this way
        self.time.advance(seconds)


def skewed_host(store: Store, time: SharedTime, offset: float, **overrides: Any) -> S3AuthService:
    """A host on `store` whose clock is `offset` seconds off the shared time."""
    return make_clocked_service(store=store, clock=SkewedClock(time, offset), **overrides)


@pytest.fixture(name="clock")
def clock_fixture() -> Clock:
    return Clock()


@pytest.fixture(name="service")
def clocked_service_fixture(clock: Clock) -> S3AuthService:
    """A memory:// service on `clock`; where imported it stands in for conftest's `service`
    (which runs on every backend)."""
    return make_clocked_service(clock=clock)


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


async def stored_user(
    service: S3AuthService, username: str = "alice", *, scopes: Sequence[str] = ()
) -> User:
    """`user_record`, written where a login reads it (1 PUT): opening a session reads the
    record back (`session_opening`)."""
    user = user_record(username, scopes=scopes)
    await service.store.create(keys.user(user.id), user)
    return user


async def late_session(service: S3AuthService, user: User) -> TokenPair:
    """A pair opened as a host of an earlier version opened it, without reading the record
    back (`session_opening`): a login that read `user` and raced a change that ended the
    account's sessions leaves such a session, which the generation marker must refuse."""
    signing = await service.tokens.signing_key()
    session, now = await service._write_session(user, None, None, signing)
    return await service._pair(session, now, signing)


async def login(
    service: S3AuthService, username: str = "alice", *, scopes: Sequence[str] = ()
) -> tuple[User, TokenPair]:
    """A real session (a user record written, then a session: 2 PUTs and a GET) and its
    token pair."""
    user = await stored_user(service, username, scopes=scopes)
    return user, await service.create_token_pair(user)


def at_most_syncs(requests: collections.Counter[str]) -> bool:
    """Whether `requests` (a store's counts on one memory:// listing) are revocation syncs
    alone, or nothing: each sync is a LIST of the revocations and a GET of the cut-off of
    every session (`sessions/not-before`), so a GET more than the LISTs is another read."""
    return set(requests) <= {"list", "get"} and requests["get"] == requests["list"]


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


async def run_lifespan(
    app: Any, scope: dict[str, Any] | None = None, *, sent: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Start and stop `app` through the lifespan protocol; what it sent, in order. Given
    `sent`, the messages go there as they come: what was sent before `app` raised too."""
    if scope is None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    messages: list[dict[str, Any]] = [] if sent is None else sent

    async def receive() -> dict[str, Any]:
        return inbox.pop(0) if len(inbox) > 1 else inbox[0]

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app(scope, receive, send)
    return messages


# Fake apps ---------------------------------------------------------------------------


async def ok_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """200 `ok` over HTTP; a WebSocket is accepted and answered `ok` to its first message."""
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await receive()
        await send({"type": "websocket.send", "text": "ok"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


class RecordingApp:
    """A raw ASGI app that answers 200 and remembers what reached it."""

    def __init__(self) -> None:
        self.scopes: list[Scope] = []
        self.receives: list[Receive] = []
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(scope)
        self.receives.append(receive)
        if scope["type"] not in ("http", "websocket"):
            return
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            return
        body = b""
        while True:
            message: Message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"yes")]})
        await send({"type": "http.response.body", "body": b"ok"})


# Frameworks and httpx ----------------------------------------------------------------

FRAMEWORKS = ("starlette", "fastapi", "litestar", "quart")


@pytest.fixture(name="framework", params=FRAMEWORKS)
def framework_fixture(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def by_framework(*builders: Callable[..., Any]) -> dict[str, Callable[..., Any]]:
    """`{"starlette": starlette_app, ...}` from builders named `<framework>_app`, one for
    each of FRAMEWORKS."""
    table = {builder.__name__.removesuffix("_app"): builder for builder in builders}
    assert sorted(table) == sorted(FRAMEWORKS), sorted(table)
    return table


def asgi_client(app: Any, ip: str = "203.0.113.5") -> httpx.AsyncClient:
    """An httpx client that calls `app` in process, from the peer address `ip`."""
    transport = httpx.ASGITransport(app=app, client=(ip, 1234))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


# Stores ------------------------------------------------------------------------------


class StoreWrapper:
    """A `Store` that forwards to `inner` and shares its request counts. Subclasses change
    what they need: `call` runs every request but the listings, `list` the listings."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.requests: collections.Counter[str] = inner.requests

    def reset_counts(self) -> None:
        self.inner.reset_counts()

    async def call(self, name: str, run: Callable[[], Awaitable[R]]) -> R:
        """Runs `inner`'s request `name` (get, create, replace, delete, delete_many,
        list_page): `run()`."""
        return await run()

    async def get(self, key: str, type_: type[T]) -> Versioned[T] | None:
        return await self.call("get", lambda: self.inner.get(key, type_))

    async def create(self, key: str, value: Any) -> str:
        return await self.call("create", lambda: self.inner.create(key, value))

    async def replace(self, key: str, value: Any, etag: str) -> str:
        return await self.call("replace", lambda: self.inner.replace(key, value, etag))

    async def delete(self, key: str) -> None:
        await self.call("delete", lambda: self.inner.delete(key))

    async def delete_many(self, keys: Iterable[str]) -> int:
        return await self.call("delete_many", lambda: self.inner.delete_many(keys))

    async def list_page(
        self, prefix: str, after: str | None, limit: int
    ) -> tuple[list[ObjectInfo], bool]:
        return await self.call("list_page", lambda: self.inner.list_page(prefix, after, limit))

    def list(self, prefix: str, offset: str | None = None) -> AsyncIterator[ObjectInfo]:
        return self.inner.list(prefix, offset)


async def level_with_the_store(store: Store, clock: Callable[[], float]) -> float:
    """`store_time.clock_lead` for a command whose clock a test moves into the future: the
    store's clock is taken to have moved with it (a lead of 0), as it would have."""
    return 0.0


class StoreClock(StoreWrapper):
    """`inner`, whose listings give each object the Last-Modified that `clock` said when it
    was last written, in whole seconds as S3 gives it: a store on the shared time."""

    def __init__(self, inner: Store, clock: Callable[[], float]) -> None:
        super().__init__(inner)
        self.clock = clock
        self.written: dict[str, dt.datetime] = {}

    def _stamp(self, key: str) -> None:
        self.written[key] = dt.datetime.fromtimestamp(int(self.clock()), dt.UTC)

    async def create(self, key: str, value: Any) -> str:
        etag = await super().create(key, value)
        self._stamp(key)
        return etag

    async def replace(self, key: str, value: Any, etag: str) -> str:
        new_etag = await super().replace(key, value, etag)
        self._stamp(key)
        return new_etag

    async def list(self, prefix: str, offset: str | None = None) -> AsyncIterator[ObjectInfo]:
        async for info in self.inner.list(prefix, offset):
            written = self.written.get(info.key, info.last_modified)
            yield ObjectInfo(info.key, written, info.size)


class StoreOnSharedTime(StoreClock):
    """`StoreClock`, whose GETs give the Last-Modified it stamped too, as a store on the
    shared time does: what a host judges by a read's Last-Modified (a mailed link's
    expiry) follows the shared time, not the real one."""

    async def get(self, key: str, type_: type[T]) -> Versioned[T] | None:
        found = await super().get(key, type_)
        if found is None or key not in self.written:
            return found
        return Versioned(found.value, found.etag, self.written[key])


async def held_index_keys(store: Store, prefix: str = "index/") -> list[str]:
    """The keys of the index entries under `prefix` that name a user, in key order: a name
    let go leaves a released entry behind (`name_claims`), which holds nothing."""
    held = []
    async for info in store.list(prefix):
        entry = await store.get(info.key, IndexEntry)
        if entry is not None and not entry.value.released:
            held.append(info.key)
    return sorted(held)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(app: Any, **options: Any) -> Iterator[str]:
    """`app` served by uvicorn on a free loopback port in a thread, for as long as the
    block runs, with uvicorn's `options` (`root_path`, `http`); yields its base URL."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    _wait_until_serving(lambda: server.started, thread)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _wait_until_serving(ready: Callable[[], bool], thread: threading.Thread) -> None:
    """Returns once `ready()`; fails the test if the server's thread ends or 10 s pass."""
    deadline = time.monotonic() + 10
    while not ready():
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the server did not start")
        time.sleep(0.02)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def serving_hypercorn(app: Any, **options: Any) -> Iterator[str]:
    """`serving`, by Hypercorn, with its `Config` `options` (`root_path`); its errors go to
    the `hypercorn.error` logger, which propagates (caplog sees them)."""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    port = free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.errorlog = logging.getLogger("hypercorn.error")
    config.accesslog = None
    for name, value in options.items():
        setattr(config, name, value)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def run() -> None:
        loop.run_until_complete(serve(app, config, shutdown_trigger=stop.wait))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    _wait_until_serving(lambda: _accepts(port), thread)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)
        loop.close()


class RacedUserWrite(StoreWrapper):
    """Runs `meanwhile` just before the first replace of a user record goes to the store, as
    another process's write that lands between this one's read and its write."""

    def __init__(self, inner: Store, meanwhile: Callable[[], Awaitable[object]]) -> None:
        super().__init__(inner)
        self.meanwhile: Callable[[], Awaitable[object]] | None = meanwhile

    async def replace(self, key: str, value: Any, etag: str) -> str:
        if self.meanwhile is not None and key.startswith(keys.USERS):
            meanwhile, self.meanwhile = self.meanwhile, None
            await meanwhile()
        return await super().replace(key, value, etag)


class AfterRequest(StoreWrapper):
    """Runs `meanwhile` once, when the first `get`, `create` or `replace` (`request`) of a
    key under `prefix` has been answered: another process's work between this request and
    the next."""

    def __init__(
        self,
        inner: Store,
        request: str,
        prefix: str,
        meanwhile: Callable[[], Awaitable[object]],
    ) -> None:
        super().__init__(inner)
        self.request = request
        self.prefix = prefix
        self.meanwhile: Callable[[], Awaitable[object]] | None = meanwhile

    async def _after(self, request: str, key: str) -> None:
        if self.meanwhile is not None and request == self.request and key.startswith(self.prefix):
            meanwhile, self.meanwhile = self.meanwhile, None
            await meanwhile()

    async def get(self, key: str, type_: type[T]) -> Versioned[T] | None:
        found = await self.inner.get(key, type_)
        await self._after("get", key)
        return found

    async def create(self, key: str, value: Any) -> str:
        written = await self.inner.create(key, value)
        await self._after("create", key)
        return written

    async def replace(self, key: str, value: Any, etag: str) -> str:
        written = await self.inner.replace(key, value, etag)
        await self._after("replace", key)
        return written
