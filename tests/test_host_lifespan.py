"""The service's part in a host's lifespan, however the auth app is mounted: what a request
starts in the background (a sync of the revocation snapshot or of the signing keys that
nobody awaits) ends with the host's shutdown, and a service shared by two hosts keeps
serving the one still running after the other has stopped.

The store's reads wait behind a gate the test holds shut, so the syncs a request starts
are still running when the host shuts down. So with a JwksVerifier, of a process that
verifies another issuer's tokens: its JWKS server holds the reads after the first.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from conftest import make_settings
from fastapi import FastAPI
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig
from hypercorn.utils import LifespanFailureError
from litestar import Litestar, get
from litestar.middleware import DefineMiddleware
from quart import Quart
from quart import request as quart_request
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from support import Clock, R, StoreWrapper, login
from test_app import client_for
from test_keys_remote import JWKS, RawHttpServer, ok, token
from test_keys_remote import jwks_server as jwks_server  # a fixture

from s3auth_asgi import BearerTokenMiddleware, BlacklistMiddleware, S3AuthService
from s3auth_asgi.app import PrefixDispatcher, auth_lifespan, create_auth_app
from s3auth_asgi.app.fastapi import CurrentUser, include_auth
from s3auth_asgi.app.litestar import S3AuthPlugin, requires_scopes
from s3auth_asgi.keys.remote import JwksVerifier
from s3auth_asgi.storage import ObjectInfo, ObjectStore

pytestmark = pytest.mark.anyio


class Gated(StoreWrapper):
    """Reads and listings wait while `gate` is shut."""

    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self.gate = asyncio.Event()
        self.gate.set()

    async def call(self, name: str, run: Callable[[], Awaitable[R]]) -> R:
        if name in ("get", "list_page"):
            await self.gate.wait()
        return await run()

    def list(self, prefix: str, offset: str | None = None) -> AsyncIterator[ObjectInfo]:
        async def listed() -> AsyncIterator[ObjectInfo]:
            await self.gate.wait()
            async for info in self.inner.list(prefix, offset):
                yield info

        return listed()


def keyed_service(clock: Clock, store: Gated) -> S3AuthService:
    """Signing keys kept in the store, so that both snapshots sync."""
    settings = make_settings(algorithm="ES256", key_sync_seconds=10, revocation_sync_seconds=10)
    return S3AuthService(settings, store=store, clock=clock)


def fastapi_host(service: S3AuthService) -> Any:
    app = FastAPI()
    include_auth(app, service, rate_limit=False)

    @app.get("/items")
    async def items(user: CurrentUser) -> dict[str, str]:
        return {"user": user.username}

    return app


def litestar_host(service: S3AuthService) -> Any:
    @get("/items", guards=[requires_scopes()])
    async def items() -> dict[str, bool]:
        return {"ok": True}

    return Litestar([items], plugins=[S3AuthPlugin(service, rate_limit=False)])


def starlette_host(service: S3AuthService) -> Any:
    async def items(request: Request) -> JSONResponse:
        return JSONResponse({"user": request.user.username})

    app = Starlette(routes=[Route("/items", items)], lifespan=auth_lifespan(service))
    return BearerTokenMiddleware(BlacklistMiddleware(app, service), service)


def quart_host(service: S3AuthService) -> Any:
    """The middlewares around Quart's `asgi_app` hear Quart's own lifespan: no hook of the
    app's closes the service."""
    app = Quart("host")

    @app.get("/items")
    async def items() -> dict[str, str]:
        return {"user": quart_request.scope["user"].username}

    app.asgi_app = BearerTokenMiddleware(  # type: ignore[method-assign]
        BlacklistMiddleware(app.asgi_app, service), service
    )
    return app


def quart_dispatcher_host(service: S3AuthService) -> Any:
    """As on the Quart page: the auth app mounted by a dispatcher that passes it no
    lifespan, and no hook of the app's that closes the service they share."""
    return PrefixDispatcher(quart_host(service), {"/auth": create_auth_app(service)})


HOSTS = {
    "fastapi": fastapi_host,
    "litestar": litestar_host,
    "quart": quart_host,
    "quart-dispatcher": quart_dispatcher_host,
    "starlette": starlette_host,
}


class Lifespan:
    """A server's side of the lifespan protocol, held open between `start` and `stop`."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self.task = asyncio.create_task(self.app(scope, self.inbox.get, self.sent.put))
        await self.inbox.put({"type": "lifespan.startup"})
        assert (await self.sent.get())["type"] == "lifespan.startup.complete"

    async def stop(self) -> None:
        await self.inbox.put({"type": "lifespan.shutdown"})
        assert (await self.sent.get())["type"] == "lifespan.shutdown.complete"
        assert self.task is not None
        await self.task


def background_syncs(service: S3AuthService) -> list[asyncio.Task[Any]]:
    """The syncs of the service's snapshots running in the background, awaited by none."""
    ring = service.tokens.ring
    assert ring is not None and ring.freshness is not None
    tasks = [service.blacklist.freshness._background, ring.freshness._background]
    return [task for task in tasks if task is not None and not task.done()]


async def stale_request(client: httpx.AsyncClient, clock: Clock, store: Gated, token: str) -> None:
    """A request answered from snapshots too old to be fresh, whose syncs it starts in the
    background wait behind the shut gate."""
    clock.advance(15)  # past the intervals, within twice them: answered, synced behind
    store.gate.clear()
    response = await client.get("/items", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("host", sorted(HOSTS))
async def test_no_sync_started_by_a_request_outlives_the_shutdown(host: str) -> None:
    clock, store = Clock(), Gated(ObjectStore.from_url("memory://"))
    service = keyed_service(clock, store)
    app = HOSTS[host](service)
    lifespan = Lifespan(app)
    await lifespan.start()
    _, pair = await login(service)
    async with client_for(app) as client:
        await stale_request(client, clock, store, pair.access_token)
    running = background_syncs(service)
    assert len(running) == 2  # the revocations' and the keys'
    await lifespan.stop()
    try:
        assert [task for task in running if not task.done()] == []
    finally:
        store.gate.set()


async def test_a_service_shared_by_two_hosts_serves_the_one_left_running() -> None:
    clock, store = Clock(), Gated(ObjectStore.from_url("memory://"))
    service = keyed_service(clock, store)
    first, second = fastapi_host(service), fastapi_host(service)
    first_lifespan, second_lifespan = Lifespan(first), Lifespan(second)
    await first_lifespan.start()
    await second_lifespan.start()
    _, pair = await login(service)
    async with client_for(first) as one, client_for(second) as other:
        token = pair.access_token
        await stale_request(one, clock, store, token)
        await first_lifespan.stop()
        assert background_syncs(service) == []
        # The second host still serves, and its stale snapshots sync again.
        store.gate.set()
        response = await other.get("/items", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        for task in background_syncs(service):
            await task
        assert service.blacklist.freshness.age() < 10
    await second_lifespan.stop()
    assert background_syncs(service) == []


# A verifier of another issuer's tokens ----------------------------------------------------


@pytest.fixture
def held_jwks(
    jwks_server: Callable[..., RawHttpServer],
) -> Iterator[tuple[RawHttpServer, threading.Event]]:
    """A JWKS server that answers its first request at once and the others once `released`
    is set (by the end of the test, whatever happened)."""
    released = threading.Event()

    def answer(server: RawHttpServer, connection: socket.socket, request: bytes) -> None:
        if len(server.requests) > 1:
            released.wait(30)
        connection.sendall(ok(JWKS))

    server = jwks_server(answer)
    try:
        yield server, released
    finally:
        released.set()


def jwks_verifier(url: str, clock: Clock) -> JwksVerifier:
    return JwksVerifier(
        url, clock=clock, refresh_seconds=10, min_refresh_seconds=1, timeout_seconds=30
    )


async def background_read(
    app: Any, clock: Clock, verifier: JwksVerifier, server: RawHttpServer
) -> asyncio.Task[Any]:
    """The read of the JWKS that a request with a stale copy starts, once the server holds
    its request."""
    clock.advance(15)  # past refresh_seconds, within twice it: answered, read behind
    async with client_for(app) as client:
        response = await client.get("/items", headers={"Authorization": f"Bearer {token()}"})
    assert response.status_code == 200, response.text
    task = verifier._background
    assert task is not None
    with anyio.fail_after(10):
        while len(server.requests) < 2:
            await asyncio.sleep(0.01)
    assert not task.done()
    return task


async def items(request: Request) -> JSONResponse:
    return JSONResponse({"user": request.user.username})


async def test_no_read_of_a_jwks_verifier_outlives_a_starlette_shutdown(
    held_jwks: tuple[RawHttpServer, threading.Event],
) -> None:
    """The middleware in the host's list hears the lifespan, and ends its verifier's
    background read at shutdown."""
    server, _ = held_jwks
    clock = Clock()
    verifier = jwks_verifier(server.url, clock)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await verifier.load()
        yield

    app = Starlette(
        routes=[Route("/items", items)],
        middleware=[Middleware(BearerTokenMiddleware, tokens=verifier)],
        lifespan=lifespan,
    )
    host = Lifespan(app)
    await host.start()
    task = await background_read(app, clock, verifier, server)
    await host.stop()
    assert task.done()
    assert len(server.requests) == 2  # the load, and the read that was ended


async def test_a_host_whose_middleware_hears_no_lifespan_closes_the_verifier(
    held_jwks: tuple[RawHttpServer, threading.Event],
) -> None:
    """Litestar runs its middleware per route, without the lifespan: the host closes the
    verifier at shutdown; it reads again when a later request finds its copy stale."""
    server, released = held_jwks
    clock = Clock()
    verifier = jwks_verifier(server.url, clock)

    @get("/items", sync_to_thread=False)
    def litestar_items() -> dict[str, bool]:
        return {"ok": True}

    app = Litestar(
        [litestar_items],
        middleware=[DefineMiddleware(BearerTokenMiddleware, tokens=verifier)],
        on_startup=[verifier.load],
        on_shutdown=[verifier.close],
    )
    host = Lifespan(app)
    await host.start()
    task = await background_read(app, clock, verifier, server)
    await host.stop()
    assert task.done()
    # Still usable: a later request whose copy is overdue has it read again.
    released.set()
    clock.advance(10)
    async with client_for(app) as client:
        response = await client.get("/items", headers={"Authorization": f"Bearer {token()}"})
    assert response.status_code == 200, response.text
    assert verifier.fetches == 3


# A start that fails ------------------------------------------------------------------


class StartFailed(Exception):
    """The app's own start failed, after something in it had used the service."""


def failing_host(
    framework: str, service: S3AuthService, start: Callable[[], Awaitable[None]]
) -> Any:
    """A host whose own start runs `start`, then fails; the middlewares hear its lifespan,
    and no hook of its own closes the service."""
    if framework == "quart":
        app = Quart("host")

        @app.before_serving
        async def starting() -> None:
            await start()
            raise StartFailed

        app.asgi_app = BearerTokenMiddleware(  # type: ignore[method-assign]
            BlacklistMiddleware(app.asgi_app, service), service
        )
        return app

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await start()
        raise StartFailed
        yield  # pragma: no cover

    starlette = Starlette(routes=[Route("/items", items)], lifespan=lifespan)
    return BearerTokenMiddleware(BlacklistMiddleware(starlette, service), service)


async def serve(server: str, app: Any) -> list[str]:
    """Run `app` under `server` until it gives up on the failed start; what the app told it
    (the bare protocol only: the real servers keep that to themselves)."""
    if server == "uvicorn":
        config = uvicorn.Config(app, lifespan="on", log_config=None, log_level="critical")
        with pytest.raises(SystemExit):  # uvicorn's exit status for a failed start
            await uvicorn.Server(config).serve()
        return []
    if server == "hypercorn":
        with pytest.raises(LifespanFailureError):
            await hypercorn_serve(app, HypercornConfig(), shutdown_trigger=asyncio.Event().wait)
        return []
    # A server's side, as uvicorn's: told of the failure, it sends no shutdown and exits.
    host = Lifespan(app)
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.create_task(app(scope, host.inbox.get, host.sent.put))
    await host.inbox.put({"type": "lifespan.startup"})
    told = await host.sent.get()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, StartFailed):
        await task
    return [told["type"]]


@pytest.mark.parametrize("server", ["protocol", "uvicorn", "hypercorn"])
@pytest.mark.parametrize("framework", ["quart", "starlette"])
async def test_no_sync_outlives_a_start_that_failed(framework: str, server: str) -> None:
    """A server whose app fails to start exits without a shutdown: the middleware ends the
    syncs the start began when it hears the failure, before the server does."""
    clock, store = Clock(), Gated(ObjectStore.from_url("memory://"))
    service = keyed_service(clock, store)
    _, pair = await login(service)
    running: list[asyncio.Task[Any]] = []

    async def start() -> None:
        await service.ensure_fresh()  # both snapshots read
        clock.advance(15)  # past the intervals, within twice them: answered, synced behind
        store.gate.clear()
        service.decode_token(pair.access_token)
        running.extend(background_syncs(service))

    try:
        told = await serve(server, failing_host(framework, service, start))
        assert len(running) == 2  # the revocations' and the keys'
        assert [task for task in running if not task.done()] == []
        if server == "protocol":
            assert told == ["lifespan.startup.failed"]
    finally:
        store.gate.set()
