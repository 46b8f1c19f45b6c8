"""One policy keeps every reader's revocation snapshot fresh: the middleware, the auth app,
`decode_token` and `is_blacklisted` all go through the blacklist's `SnapshotFreshness`.

A writer and a reader share one store; the reader's clock is moved by hand, so "stale"
(one interval) and "overdue" (two) are exact. Request counts say who synced.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from litestar import Litestar, get
from starlette.applications import Starlette
from starlette.routing import Mount
from support import (  # noqa: F401 (clock_fixture registers the `clock` fixture)
    Clock,
    StoreWrapper,
    bearer,
    call_http,
    clock_fixture,
    http_scope,
    make_clocked_service,
    ok_app,
    run_lifespan,
)

from s3auth_asgi import (
    BearerTokenMiddleware,
    BlacklistMiddleware,
    S3AuthService,
    StoreUnavailableError,
    TokenRevokedError,
)
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.app.fastapi import CurrentUser, include_auth
from s3auth_asgi.app.litestar import S3AuthPlugin, requires_scopes
from s3auth_asgi.freshness import SnapshotFreshness
from s3auth_asgi.storage import ObjectInfo, ObjectStore

pytestmark = pytest.mark.anyio
PASSWORD = "Correct-Horse-42x"


async def _writer_and_reader(clock: Clock) -> tuple[S3AuthService, S3AuthService, str, str]:
    """A writer that logs alice in, and a reader (own clock) with a fresh snapshot."""
    store = ObjectStore.from_url("memory://")
    writer = make_clocked_service(store=store, clock=Clock())
    reader = make_clocked_service(store=store, clock=clock)
    alice = await writer.create_user("alice", "alice@example.com", PASSWORD)
    pair = await writer.create_token_pair(alice)
    writer.clock.advance(0.01)  # type: ignore[attr-defined]
    await reader.blacklist.sync()
    return writer, reader, alice.id, pair.access_token


def lists(service: S3AuthService) -> int:
    return service.store.requests["list"]


async def settled(service: S3AuthService) -> None:
    with anyio.fail_after(10):
        while service.blacklist.is_stale():
            await anyio.sleep(0.005)


async def test_decode_token_answers_at_once_and_syncs_in_the_background_when_stale(
    clock: Clock,
) -> None:
    writer, reader, user_id, token = await _writer_and_reader(clock)
    await writer.revoke_all_user_tokens(user_id)
    reader.store.reset_counts()
    assert reader.decode_token(token)["sub"] == user_id  # fresh: no request, not seen yet
    assert lists(reader) == 0
    clock.advance(reader.blacklist.sync_seconds)
    assert reader.decode_token(token)["sub"] == user_id  # stale: answered from the snapshot
    reader.decode_token(token)  # a second call starts no second sync
    await settled(reader)
    assert lists(reader) == 1
    with pytest.raises(TokenRevokedError):
        reader.decode_token(token)


def test_decode_token_without_an_event_loop_answers_from_the_snapshot(clock: Clock) -> None:
    async def prepare() -> tuple[S3AuthService, str]:
        _, reader, _, token = await _writer_and_reader(clock)
        return reader, token

    reader, token = anyio.run(prepare)
    clock.advance(10 * reader.blacklist.sync_seconds)
    reader.store.reset_counts()
    assert "sub" in reader.decode_token(token)
    assert lists(reader) == 0


async def test_is_blacklisted_waits_only_when_overdue(clock: Clock) -> None:
    writer, reader, _, token = await _writer_and_reader(clock)
    claims = writer.verify_access_token(token)  # decode_token would start a writer's sync
    await writer.blacklist.add(claims["jti"], claims["exp"])
    clock.advance(reader.blacklist.sync_seconds)
    reader.store.reset_counts()
    assert not await reader.blacklist.is_blacklisted(claims["jti"])  # stale: not waited for
    await settled(reader)
    assert lists(reader) == 1
    assert await reader.blacklist.is_blacklisted(claims["jti"])
    await writer.blacklist.add("another-jti", claims["exp"])
    clock.advance(2 * reader.blacklist.sync_seconds)
    assert await reader.blacklist.is_blacklisted("another-jti")  # overdue: waited for
    assert lists(reader) == 2


def _app_on(reader: S3AuthService) -> httpx.AsyncClient:
    app = Starlette(routes=[Mount("/auth", app=create_auth_app(reader, rate_limit=False))])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_the_auth_app_follows_the_same_policy(clock: Clock) -> None:
    writer, reader, user_id, token = await _writer_and_reader(clock)
    await writer.revoke_all_user_tokens(user_id)
    async with _app_on(reader) as client:
        clock.advance(reader.blacklist.sync_seconds)
        stale = await client.get("/auth/me", headers=bearer(token))
        assert stale.status_code == 200  # within the bound: answered, sync started
        await settled(reader)
        refused = await client.get("/auth/me", headers=bearer(token))
        assert refused.status_code == 401
        assert refused.json()["code"] == "token_revoked"

    writer2, reader2, user2, token2 = await _writer_and_reader(Clock())
    await writer2.revoke_all_user_tokens(user2)
    reader2.clock.advance(2 * reader2.blacklist.sync_seconds)  # type: ignore[attr-defined]
    async with _app_on(reader2) as client:
        overdue = await client.get("/auth/me", headers=bearer(token2))
        assert overdue.status_code == 401  # past the bound: waited for the sync


async def test_middleware_app_and_decode_token_share_one_sync(clock: Clock) -> None:
    writer, reader, user_id, token = await _writer_and_reader(clock)
    await writer.revoke_all_user_tokens(user_id)
    stack = BearerTokenMiddleware(BlacklistMiddleware(ok_app, reader), reader)
    clock.advance(2 * reader.blacklist.sync_seconds)
    reader.store.reset_counts()
    statuses: list[int] = []

    async def through_middleware() -> None:
        statuses.append((await call_http(stack, http_scope("/x", bearer(token)))).status)

    async def through_app(client: httpx.AsyncClient) -> None:
        statuses.append((await client.get("/auth/me", headers=bearer(token))).status_code)

    async with _app_on(reader) as client, anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(through_middleware)
            tg.start_soon(through_app, client)
    assert statuses == [401] * 10
    assert lists(reader) == 1
    with pytest.raises(TokenRevokedError):
        reader.decode_token(token)
    assert lists(reader) == 1


async def test_without_any_snapshot_an_unreachable_store_is_a_refusal(clock: Clock) -> None:
    _, reader, _, token = await _writer_and_reader(clock)
    broken = make_clocked_service(store=_Unreachable(), clock=clock)
    with pytest.raises(StoreUnavailableError):
        await broken.ensure_fresh()
    # With a snapshot, the old one keeps serving and the failure is only logged.
    clock.advance(2 * reader.blacklist.sync_seconds)
    reader.blacklist.store = _Unreachable()
    await reader.ensure_fresh()
    assert reader.decode_token(token)["sid"]


class _Unreachable(ObjectStore):
    def __init__(self) -> None:
        super().__init__(None)

    async def list(self, prefix: str, offset: str | None = None):  # type: ignore[override]
        raise StoreUnavailableError("LIST failed")
        yield  # pragma: no cover


DOWN_SECONDS = 0.2


class _SlowlyDown(StoreWrapper):
    """Every listing reaches the store and fails `DOWN_SECONDS` later, its answer lost: a
    store timing out."""

    async def list(self, prefix: str, offset: str | None = None):  # type: ignore[override]
        async for _ in self.inner.list(prefix, offset):
            pass
        await anyio.sleep(DOWN_SECONDS)
        raise StoreUnavailableError("LIST timed out")
        yield  # pragma: no cover


async def test_requests_arriving_during_a_failing_first_sync_share_its_failure(
    clock: Clock,
) -> None:
    _, _, _, token = await _writer_and_reader(clock)
    inner = ObjectStore.from_url("memory://")
    broken = make_clocked_service(store=_SlowlyDown(inner), clock=clock)
    stack = BearerTokenMiddleware(BlacklistMiddleware(ok_app, broken), broken)
    statuses: list[int] = []
    waits: list[float] = []

    async def request() -> None:
        started = anyio.current_time()
        statuses.append((await call_http(stack, http_scope("/x", bearer(token)))).status)
        waits.append(anyio.current_time() - started)

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(request)
    assert statuses == [503] * 10
    assert inner.requests["list"] == 1  # one sync attempt, not one per request
    assert max(waits) < 2 * DOWN_SECONDS  # that one failure, not each one's before it
    # A request after the failure tries again: without a snapshot there is no pause.
    assert (await call_http(stack, http_scope("/x", bearer(token)))).status == 503
    assert inner.requests["list"] == 2


async def test_a_failed_background_sync_is_logged_once_and_raises_nowhere(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    _, _, _, token = await _writer_and_reader(clock)
    broken = make_clocked_service(store=_Unreachable(), clock=clock)
    assert broken.decode_token(token)["sid"]  # no snapshot, and it cannot wait
    task = broken.blacklist.freshness._background
    assert task is not None
    with anyio.fail_after(5):
        while not task.done():
            await anyio.sleep(0.001)
    failures = [r for r in caplog.records if "sync failed" in r.getMessage()]
    assert len(failures) == 1
    assert isinstance(task.exception(), StoreUnavailableError)  # retrieved by the callback


class _ListingDown(StoreWrapper):
    """Every listing reaches the store (counted) and fails."""

    def list(self, prefix: str, offset: str | None = None) -> AsyncIterator[ObjectInfo]:
        self.requests["list"] += 1
        raise StoreUnavailableError("LIST failed")


async def test_decode_token_with_no_snapshot_tries_the_store_once_an_interval(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """With the store down since the start, each `decode_token` (which cannot wait) would
    start a sync of its own the moment the last one failed: one try, and one line logged,
    an interval instead, as with a snapshot to serve from."""
    _, _, _, token = await _writer_and_reader(clock)
    down = _ListingDown(ObjectStore.from_url("memory://"))
    broken = make_clocked_service(store=down, clock=clock)
    freshness = broken.blacklist.freshness
    for expected in (1, 2):
        for _ in range(20):
            assert broken.decode_token(token)["sid"]
            if freshness._background is not None:
                await asyncio.wait((freshness._background,))
            clock.advance(broken.blacklist.sync_seconds / 100)
        assert dict(down.requests) == {"list": expected}
        failures = [r for r in caplog.records if "sync failed" in r.getMessage()]
        assert len(failures) == expected
        clock.advance(broken.blacklist.sync_seconds)


async def test_the_first_snapshot_loads_at_startup_not_on_the_first_request(
    clock: Clock,
) -> None:
    writer, reader, user_id, token = await _writer_and_reader(clock)
    fresh = make_clocked_service(store=reader.store, clock=clock)
    await writer.revoke_all_user_tokens(user_id)
    stack = BearerTokenMiddleware(BlacklistMiddleware(Starlette(), fresh), fresh)
    fresh.store.reset_counts()
    sent = await run_lifespan(stack)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert lists(fresh) == 1 and fresh.blacklist.freshness.has_snapshot()
    fresh.store.reset_counts()
    refused = await call_http(stack, http_scope("/x", bearer(token)))
    assert refused.status == 401 and refused.json()["code"] == "token_revoked"
    assert sum(fresh.store.requests.values()) == 0  # the request waited for nothing


async def test_an_unreachable_store_at_startup_is_logged_and_not_fatal(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    broken = make_clocked_service(store=_Unreachable(), clock=clock)
    stack = BearerTokenMiddleware(BlacklistMiddleware(Starlette(), broken), broken)
    sent = await run_lifespan(stack)
    assert sent[0]["type"] == "lifespan.startup.complete"
    assert any("no revocation snapshot at startup" in r.getMessage() for r in caplog.records)


def fastapi_host(service: S3AuthService) -> FastAPI:
    app = FastAPI()
    include_auth(app, service)

    @app.get("/items")
    async def items(user: CurrentUser) -> dict[str, str]:
        return {"user": user.username}

    return app


@get("/items", guards=[requires_scopes()])
async def litestar_items() -> dict[str, bool]:
    return {"ok": True}


def litestar_host(service: S3AuthService) -> Litestar:
    # Litestar's own logging config would take the log records from pytest's handler.
    return Litestar([litestar_items], plugins=[S3AuthPlugin(service)], logging_config=None)


INTEGRATIONS: dict[str, tuple[Callable[[S3AuthService], Any], str]] = {
    "include_auth": (fastapi_host, "/items"),
    "S3AuthPlugin": (litestar_host, "/items"),
    "the auth app alone": (create_auth_app, "/me"),
}


@pytest.mark.parametrize("integration", INTEGRATIONS)
async def test_the_integrations_load_the_first_snapshot_at_startup(
    integration: str, clock: Clock
) -> None:
    # No BlacklistMiddleware: the dependency or guard checks revocation itself.
    writer, reader, user_id, token = await _writer_and_reader(clock)
    fresh = make_clocked_service(store=reader.store, clock=clock)
    await writer.revoke_all_user_tokens(user_id)
    build, path = INTEGRATIONS[integration]
    app = build(fresh)
    fresh.store.reset_counts()
    sent = await run_lifespan(app)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert lists(fresh) == 1 and fresh.blacklist.freshness.has_snapshot()
    fresh.store.reset_counts()
    refused = await call_http(app, http_scope(path, bearer(token)))
    assert refused.status == 401 and refused.json()["code"] == "token_revoked"
    assert sum(fresh.store.requests.values()) == 0  # the request waited for nothing


@pytest.mark.parametrize("integration", INTEGRATIONS)
async def test_the_integrations_start_with_the_store_unreachable(
    integration: str, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    broken = make_clocked_service(store=_Unreachable(), clock=clock)
    sent = await run_lifespan(INTEGRATIONS[integration][0](broken))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert any("no revocation snapshot at startup" in r.getMessage() for r in caplog.records)


async def test_a_sync_that_fails_with_any_error_pauses_the_next(clock: Clock) -> None:
    """A sync failing with an error that is not one of ours (a bug, say) still counts as a
    failed sync: a stale snapshot starts one try an interval, not one per request."""
    calls: list[float] = []

    async def sync_once() -> int:
        calls.append(clock())
        if len(calls) > 1:
            raise RuntimeError("not one of ours")
        return 0

    freshness = SnapshotFreshness(sync_once, interval=60, clock=clock)
    await freshness.sync()
    clock.advance(61)
    for _ in range(5):
        freshness.start_in_background_if_stale()
        if freshness._background is not None:
            await freshness._background  # the snapshot there is serves: nothing raised
    assert len(calls) == 2
    clock.advance(60)
    freshness.start_in_background_if_stale()
    assert freshness._background is not None
    await freshness._background
    assert len(calls) == 3


class _Buggy(StoreWrapper):
    """A listing that fails with an error of no store's: a bug in the sync's source."""

    broken = True

    def list(self, prefix: str, offset: str | None = None) -> AsyncIterator[ObjectInfo]:
        if self.broken:
            self.requests["list"] += 1
            raise RuntimeError("a bug in the listing")
        return self.inner.list(prefix, offset)


def bug_tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.exc_info and isinstance(r.exc_info[1], RuntimeError)
    ]


async def test_a_sync_failing_with_a_bug_is_a_503_never_a_500(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """With no snapshot to answer from, a sync whose source raised what no store raises is
    the documented failure, 503 `store_unavailable`, as an unreachable store's; its
    traceback is logged once per interval, however many requests it fails."""
    _, _, _, token = await _writer_and_reader(clock)
    buggy = _Buggy(ObjectStore.from_url("memory://"))
    service = make_clocked_service(store=buggy, clock=clock)
    stack = BearerTokenMiddleware(BlacklistMiddleware(ok_app, service), service)
    answers = [await call_http(stack, http_scope("/x", bearer(token))) for _ in range(3)]
    assert [(a.status, a.headers[b"content-type"], a.json()["code"]) for a in answers] == [
        (503, b"application/problem+json", "store_unavailable")
    ] * 3
    assert buggy.requests["list"] == 3  # no snapshot: every request tries again
    assert len(bug_tracebacks(caplog)) == 1
    clock.advance(service.blacklist.sync_seconds)
    assert (await call_http(stack, http_scope("/x", bearer(token)))).status == 503
    assert len(bug_tracebacks(caplog)) == 2


async def test_an_overdue_snapshot_whose_sync_has_a_bug_keeps_serving(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    _, _, _, token = await _writer_and_reader(clock)
    buggy = _Buggy(ObjectStore.from_url("memory://"))
    buggy.broken = False
    service = make_clocked_service(store=buggy, clock=clock)
    stack = BearerTokenMiddleware(BlacklistMiddleware(ok_app, service), service)
    await service.ensure_fresh()
    buggy.broken = True
    clock.advance(2 * service.blacklist.sync_seconds)  # overdue
    buggy.reset_counts()
    answers = [await call_http(stack, http_scope("/x", bearer(token))) for _ in range(3)]
    assert [a.status for a in answers] == [200] * 3
    assert buggy.requests["list"] == 1  # the failed sync pauses the next for an interval
    assert len(bug_tracebacks(caplog)) == 1
