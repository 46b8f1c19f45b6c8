"""BlacklistMiddleware: revoked tokens are refused from an in-process snapshot, with the
object-store requests that costs counted: none per request, one LIST per sync."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from conftest import make_bucket, make_settings
from support import (  # noqa: F401 (the *_fixture names register fixtures here)
    Clock,
    RecordingApp,
    StoreWrapper,
    bearer,
    call_http,
    clock_fixture,
    clocked_service_fixture,
    http_scope,
    login,
    make_clocked_service,
    ok_app,
    run_lifespan,
    stored_user,
    websocket_scope,
    websocket_session,
)

from s3auth_asgi import ConfigurationError, S3AuthService, StoreUnavailableError, TokenRevokedError
from s3auth_asgi.middleware.bearer import BearerTokenMiddleware
from s3auth_asgi.middleware.blacklist import BlacklistMiddleware
from s3auth_asgi.revocation_entry import SAME_MS_ATTEMPTS
from s3auth_asgi.storage import ObjectInfo, ObjectStore, Store, keys

pytestmark = pytest.mark.anyio


def stack(service: S3AuthService, *, strict: bool = False) -> BearerTokenMiddleware:
    return BearerTokenMiddleware(BlacklistMiddleware(ok_app, service, strict=strict), service)


async def get(app: Any, token: str, path: str = "/api/items") -> Any:
    return await call_http(app, http_scope(path, bearer(token)))


async def until_synced(service: S3AuthService) -> None:
    """Let the background sync started by a request finish."""
    with anyio.fail_after(10):
        while service.blacklist.is_stale():
            await anyio.sleep(0.005)


def requests(service: S3AuthService) -> int:
    return sum(service.store.requests.values())


async def test_a_logged_out_session_is_refused_at_once(service: S3AuthService) -> None:
    _, pair = await login(service)
    app = stack(service)
    assert (await get(app, pair.access_token)).status == 200
    await service.revoke_refresh_token(pair.refresh_token)
    response = await get(app, pair.access_token)
    assert response.status == 401
    assert response.challenge == (
        'Bearer realm="api", error="invalid_token", '
        'error_description="The session has been logged out"'
    )
    assert response.json()["code"] == "token_revoked"


async def test_a_blacklisted_jti_is_refused_and_the_guide_api_agrees(
    service: S3AuthService,
) -> None:
    _, pair = await login(service)
    _, other = await login(service, "bob")
    claims = service.decode_token(pair.access_token)
    app = stack(service)
    await service.blacklist.add(claims["jti"], claims["exp"])
    assert await service.blacklist.is_blacklisted(claims["jti"])
    assert (await get(app, pair.access_token)).status == 401
    assert (await get(app, other.access_token)).status == 200


async def test_logout_everywhere_refuses_every_earlier_token(
    service: S3AuthService, clock: Clock
) -> None:
    user, first = await login(service)
    second = await service.create_token_pair(user)
    app = stack(service)
    assert (await get(app, first.access_token)).status == 200
    clock.advance(0.01)
    await service.revoke_all_user_tokens(user.id)
    assert (await get(app, first.access_token)).status == 401
    assert (await get(app, second.access_token)).status == 401
    clock.advance(0.01)
    later = await service.create_token_pair(user)  # a new login after it works
    assert (await get(app, later.access_token)).status == 200


async def test_password_change_and_deactivation_refuse_tokens(clock: Clock) -> None:
    service = make_clocked_service(clock=clock)
    alice = await service.create_user("alice", "alice@example.com", "Correct-Horse-42x")
    bob = await service.create_user("bob", "bob@example.com", "Correct-Horse-42y")
    alice_pair = await service.create_token_pair(alice)
    bob_pair = await service.create_token_pair(bob)
    app = stack(service)
    assert (await get(app, alice_pair.access_token)).status == 200
    clock.advance(0.01)
    await service.set_password(alice.id, "Another-Horse-77z")
    assert (await get(app, alice_pair.access_token)).status == 401
    assert (await get(app, bob_pair.access_token)).status == 200
    await service.update_user(bob.id, is_active=False)
    assert (await get(app, bob_pair.access_token)).status == 401


async def test_no_store_request_per_request_and_one_list_per_sync_interval(
    service: S3AuthService, clock: Clock
) -> None:
    _, pair = await login(service)
    app = stack(service)
    service.store.reset_counts()
    assert (await get(app, pair.access_token)).status == 200  # primes the snapshot
    assert dict(service.store.requests) == {"list": 1, "get": 1}

    service.store.reset_counts()
    for _ in range(200):
        assert (await get(app, pair.access_token)).status == 200
    assert requests(service) == 0

    # Stale: the next request starts one sync and does not wait for it.
    clock.advance(service.blacklist.sync_seconds)
    assert service.blacklist.is_stale()
    assert (await get(app, pair.access_token)).status == 200
    assert requests(service) == 0  # not awaited on the request path
    for _ in range(50):  # requests while it runs start no other
        assert (await get(app, pair.access_token)).status == 200
    await until_synced(service)
    assert dict(service.store.requests) == {"list": 1, "get": 1}
    for _ in range(50):
        await get(app, pair.access_token)
    assert dict(service.store.requests) == {"list": 1, "get": 1}


async def test_a_fresh_snapshot_is_answered_without_awaiting_anything(
    service: S3AuthService, clock: Clock
) -> None:
    """`is_stale()` is asked first: only a stale snapshot costs the request an await, and
    then exactly one (which starts the sync in the background)."""
    _, pair = await login(service)
    awaited: list[bool] = []
    ensure_fresh = service.ensure_fresh

    async def counting_ensure_fresh(*, strict: bool = False) -> None:
        awaited.append(strict)
        await ensure_fresh(strict=strict)

    service.ensure_fresh = counting_ensure_fresh  # type: ignore[method-assign]
    app = stack(service)
    assert (await get(app, pair.access_token)).status == 200  # no snapshot yet: waited for
    assert awaited == [False]
    for _ in range(20):
        assert (await get(app, pair.access_token)).status == 200
    assert awaited == [False]
    clock.advance(service.blacklist.sync_seconds)
    assert (await get(app, pair.access_token)).status == 200
    assert awaited == [False, False]
    await until_synced(service)
    assert (await get(app, pair.access_token)).status == 200
    assert awaited == [False, False]
    strict = stack(service, strict=True)
    assert (await get(strict, pair.access_token)).status == 200
    assert awaited == [False, False, True]


async def test_requests_during_a_running_sync_start_no_second_one(
    store_url: str, clock: Clock
) -> None:
    service = make_clocked_service(store_url, clock=clock)
    _, pair = await login(service)
    app = stack(service)
    await get(app, pair.access_token)
    clock.advance(service.blacklist.sync_seconds)
    service.store.reset_counts()
    await get(app, pair.access_token)  # starts the sync
    for _ in range(20):  # the LIST is under way now: these must not queue another
        await anyio.sleep(0)
        assert (await get(app, pair.access_token)).status == 200
    await until_synced(service)
    await anyio.sleep(0.1)  # time for a second sync, were one queued
    assert dict(service.store.requests) == {"list": 1, "get": 1}


async def test_anonymous_requests_cost_nothing(service: S3AuthService) -> None:
    app = BearerTokenMiddleware(
        BlacklistMiddleware(ok_app, service), service, protected=("/api/*",)
    )
    for _ in range(20):
        assert (await call_http(app, http_scope("/public"))).status == 200
    assert requests(service) == 0


async def test_a_revoked_websocket_is_closed_with_1008(service: S3AuthService) -> None:
    _, pair = await login(service)
    app = stack(service)
    assert (
        await websocket_session(app, websocket_scope(headers=bearer(pair.access_token)))
    ).accepted
    await service.revoke_refresh_token(pair.refresh_token)
    result = await websocket_session(app, websocket_scope(headers=bearer(pair.access_token)))
    assert result.first == {"type": "websocket.close", "code": 1008, "reason": "token_revoked"}


async def test_only_the_handshake_is_checked_an_open_websocket_outlives_a_logout(
    service: S3AuthService,
) -> None:
    # The documented limit, and what an app that must close such sockets reads instead.
    user, pair = await login(service)
    incoming, inbox = anyio.create_memory_object_stream[dict[str, Any]](4)
    answers, outbox = anyio.create_memory_object_stream[dict[str, Any]](4)
    seen: list[Any] = []

    async def chat(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["auth"])
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": f"{scope['user'].username}: ok"})

    app = BearerTokenMiddleware(BlacklistMiddleware(chat, service), service)
    scope = websocket_scope(headers=bearer(pair.access_token))
    async with anyio.create_task_group() as tasks, incoming, outbox:
        tasks.start_soon(app, scope, inbox.receive, answers.send)
        await incoming.send({"type": "websocket.connect"})
        assert await outbox.receive() == {"type": "websocket.accept"}
        await service.revoke_all_user_tokens(user.id)
        await incoming.send({"type": "websocket.receive", "text": "after logout everywhere"})
        assert await outbox.receive() == {"type": "websocket.send", "text": "alice: ok"}
        await incoming.send({"type": "websocket.disconnect", "code": 1000})
    claims = seen[0].claims
    assert claims["exp"] == service.verify_access_token(pair.access_token)["exp"]
    assert isinstance(service.revoked_error(claims), TokenRevokedError)
    again = await websocket_session(app, websocket_scope(headers=bearer(pair.access_token)))
    assert again.first == {"type": "websocket.close", "code": 1008, "reason": "token_revoked"}


async def _two_instances(store_url: str, clock: Clock) -> tuple[S3AuthService, S3AuthService]:
    first = make_clocked_service(store_url, clock=clock)
    # memory:// stores are per object: share it; other URLs open their own store.
    shared = first.store if store_url == "memory://" else None
    second = make_clocked_service(store_url, clock=clock, store=shared)
    return first, second


async def test_a_revocation_by_another_instance_holds_within_the_sync_interval(
    store_url: str, clock: Clock
) -> None:
    writer, reader = await _two_instances(store_url, clock)
    _, pair = await login(writer)
    app = stack(reader)
    assert (await get(app, pair.access_token)).status == 200

    await writer.revoke_refresh_token(pair.refresh_token)
    reader.store.reset_counts()
    # Inside the interval the reader's snapshot has not seen it: the documented bound.
    clock.advance(reader.blacklist.sync_seconds / 2)
    assert (await get(app, pair.access_token)).status == 200
    # Past the interval one request starts the sync; once its LIST is done, refused.
    clock.advance(reader.blacklist.sync_seconds / 2)
    await get(app, pair.access_token)
    await until_synced(reader)
    response = await get(app, pair.access_token)
    assert response.status == 401
    assert response.json()["code"] == "token_revoked"
    if store_url != "memory://":
        assert dict(reader.store.requests) == {"list": 1, "get": 1}


async def test_after_an_idle_spell_the_first_request_waits_for_a_sync(store_url: str) -> None:
    """A snapshot twice the interval old is not answered from: the bound holds for a
    process that had no traffic to trigger background syncs."""
    interval = 0.05
    writer = make_clocked_service(store_url, clock=Clock())
    shared = writer.store if store_url == "memory://" else None
    reader = S3AuthService(
        make_settings(store_url, revocation_sync_seconds=interval), store=shared
    )  # the real clock: the bound is about time passing
    _, pair = await login(writer)
    app = stack(reader)
    assert (await get(app, pair.access_token)).status == 200
    await writer.revoke_refresh_token(pair.refresh_token)
    await anyio.sleep(2 * interval)  # idle
    assert (await get(app, pair.access_token)).status == 401


async def test_strict_mode_sees_another_instance_at_once(store_url: str, clock: Clock) -> None:
    writer, reader = await _two_instances(store_url, clock)
    _, pair = await login(writer)
    app = stack(reader, strict=True)
    assert (await get(app, pair.access_token)).status == 200
    await writer.revoke_refresh_token(pair.refresh_token)
    assert (await get(app, pair.access_token)).status == 401  # no clock change needed


async def test_strict_mode_lists_once_per_request_and_shares_lists_under_load(
    service: S3AuthService,
) -> None:
    _, pair = await login(service)
    app = stack(service, strict=True)
    service.store.reset_counts()
    for _ in range(3):
        assert (await get(app, pair.access_token)).status == 200
    assert dict(service.store.requests) == {"list": 3, "get": 3}

    service.store.reset_counts()
    statuses: list[int] = []

    async def one() -> None:
        statuses.append((await get(app, pair.access_token)).status)

    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(one)
    assert statuses == [200] * 20
    assert dict(service.store.requests) == {"list": 1, "get": 1}


@pytest.fixture
def unreachable_bucket(moto_endpoint: str) -> str:
    make_bucket(moto_endpoint)  # the endpoint works; this bucket does not exist
    return "s3://s3auth-no-such-bucket/auth"


async def test_a_store_failure_is_503_in_strict_mode_and_logged_otherwise(
    unreachable_bucket: str, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    healthy = make_clocked_service(clock=clock)
    _, pair = await login(healthy)
    broken = make_clocked_service(unreachable_bucket, clock=clock)
    strict = stack(broken, strict=True)
    response = await get(strict, pair.access_token)
    assert response.status == 503
    assert response.json()["code"] == "store_unavailable"
    assert b"www-authenticate" not in response.headers  # not the client's credentials' fault
    # Not strict, but the process never had a snapshot: no guessing either.
    unprimed = stack(make_clocked_service(unreachable_bucket, clock=clock))
    assert (await get(unprimed, pair.access_token)).status == 503

    # Not strict: a snapshot that was synced keeps serving; the failure is logged.
    lenient_service = make_clocked_service(unreachable_bucket, clock=clock)
    lenient_service.blacklist.store = healthy.store
    lenient = stack(lenient_service)
    assert (await get(lenient, pair.access_token)).status == 200
    lenient_service.blacklist.store = broken.store
    clock.advance(lenient_service.blacklist.sync_seconds)
    caplog.clear()  # the strict-mode failure above was logged already
    with caplog.at_level(logging.ERROR, logger="s3auth_asgi"):
        assert (await get(lenient, pair.access_token)).status == 200
        with anyio.fail_after(10):
            while "revocation snapshot sync failed" not in caplog.text:
                await anyio.sleep(0.01)
        # The next attempt waits one interval: no LIST per request against a dead store.
        broken.store.reset_counts()
        for _ in range(20):
            assert (await get(lenient, pair.access_token)).status == 200
            await anyio.sleep(0)  # let a background sync run, were one started
        assert sum(broken.store.requests.values()) == 0


class SlowListingStore(StoreWrapper):
    """A real store whose second listing takes `delay` seconds (after reading its page)."""

    def __init__(self, inner: Store, delay: float) -> None:
        super().__init__(inner)
        self.delay = delay
        self.listings = 0

    async def list(self, prefix: str, offset: str | None = None) -> AsyncIterator[ObjectInfo]:
        self.listings += 1
        items = [item async for item in self.inner.list(prefix, offset)]
        if self.listings == 2:
            await anyio.sleep(self.delay)
        for item in items:
            yield item


async def test_the_two_interval_bound_holds_when_a_listing_is_slow() -> None:
    """A request made more than twice the interval after a revocation is refused even
    while a background sync that began before the revocation is still listing."""
    interval = 0.05
    writer = make_clocked_service(clock=time.time)
    reader = S3AuthService(make_settings(revocation_sync_seconds=interval), store=writer.store)
    slow = SlowListingStore(writer.store, delay=0.3)
    reader.blacklist.store = slow
    _, pair = await login(writer)
    app = stack(reader)
    assert (await get(app, pair.access_token)).status == 200  # the first snapshot
    await anyio.sleep(interval * 1.2)
    assert (await get(app, pair.access_token)).status == 200  # starts the slow sync
    await anyio.sleep(0.01)
    await writer.revoke_refresh_token(pair.refresh_token)
    await anyio.sleep(2 * interval + 0.02)
    assert (await get(app, pair.access_token)).status == 401
    assert slow.listings == 3  # the request did not settle for the sync under way


async def test_outside_bearer_token_middleware_it_refuses_to_run(service: S3AuthService) -> None:
    misplaced = BlacklistMiddleware(BearerTokenMiddleware(ok_app, service), service)
    with pytest.raises(RuntimeError, match="inside BearerTokenMiddleware"):
        await call_http(misplaced, http_scope())


async def test_lifespan_passes_through(service: S3AuthService) -> None:
    inner = RecordingApp()
    assert await run_lifespan(BlacklistMiddleware(inner, service)) == []
    assert [scope["type"] for scope in inner.scopes] == ["lifespan"]
    assert requests(service) == 0


def test_configuration_is_validated(service: S3AuthService) -> None:
    with pytest.raises(ConfigurationError, match="ensure_fresh"):
        BlacklistMiddleware(ok_app, object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="ASGI application"):
        BlacklistMiddleware("app", service)
    with pytest.raises(ConfigurationError, match="ensure_fresh"):
        BlacklistMiddleware(ok_app, service.tokens)  # type: ignore[arg-type]
    assert BlacklistMiddleware(ok_app, service.blacklist).blacklist is service.blacklist
    assert BlacklistMiddleware(ok_app, service).blacklist is service


async def test_two_logouts_everywhere_in_one_millisecond_are_both_kept() -> None:
    # Instances whose clocks read the same millisecond, and a login landing between two
    # logouts everywhere: each names other sessions, and both must reach every instance.
    clock = Clock()
    store = ObjectStore.from_url("memory://")
    first, second, third = (make_clocked_service(clock=clock, store=store) for _ in range(3))
    user, _ = await login(first)
    assert await first.revoke_all_user_tokens(user.id) == 1
    late = await third.create_token_pair(user)
    assert await second.revoke_all_user_tokens(user.id) == 1
    entries = [info.key async for info in store.list(keys.REVOCATIONS)]
    assert len(entries) == 2  # one the millisecond after the other
    fresh = make_clocked_service(clock=clock, store=store)
    for service in (first, third, fresh):
        await service.blacklist.sync()
        claims = service.verify_access_token(late.access_token)
        assert service.blacklist.revoked_error(claims) is not None


async def test_a_logout_everywhere_finding_every_millisecond_taken_fails_rather_than_vanish() -> (
    None
):
    # One clock reading for every write: each logout everywhere of the user names another
    # session, so each takes the millisecond after the last. Past the attempts, the
    # revocation is no success: it would be this instance's alone.
    clock = Clock()
    store = ObjectStore.from_url("memory://")
    service = make_clocked_service(clock=clock, store=store)
    user = await stored_user(service)
    for _ in range(SAME_MS_ATTEMPTS):
        await service.create_token_pair(user)
        assert await service.revoke_all_user_tokens(user.id) == 1
    late = await service.create_token_pair(user)
    with pytest.raises(StoreUnavailableError):
        await service.revoke_all_user_tokens(user.id)
    assert len([info async for info in store.list(keys.REVOCATIONS)]) == SAME_MS_ATTEMPTS
    # Not taken for done here either: tried again once the clock moves on, it is written.
    clock.advance(0.01)
    assert await service.revoke_all_user_tokens(user.id) == 1
    fresh = make_clocked_service(clock=clock, store=store)
    await fresh.blacklist.sync()
    assert fresh.blacklist.revoked_error(fresh.verify_access_token(late.access_token))


class HeldRevocation(StoreWrapper):
    """Holds the next revocation's PUT in flight until released (slow, or being retried)."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.armed = False
        self.released = anyio.Event()

    async def create(self, key: str, value: Any) -> str:
        if self.armed and key.startswith(keys.REVOCATIONS):
            self.armed = False
            await self.released.wait()
        return await self.inner.create(key, value)


async def test_a_revocation_that_lands_late_is_seen_by_instances_that_synced_meanwhile() -> None:
    clock = Clock()
    store = ObjectStore.from_url("memory://")
    held = HeldRevocation(store)
    writer = make_clocked_service(clock=clock, store=held)
    reader = make_clocked_service(clock=clock, store=store)
    _, pair = await login(writer)
    await reader.blacklist.sync()
    held.armed = True
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(writer.revoke_refresh_token, pair.refresh_token)
        await anyio.sleep(0.05)  # the key's time is fixed; the PUT has not landed
        clock.advance(reader.blacklist.skew_ms / 1000 + 1)
        await reader.blacklist.sync()  # the reader syncs while it is in flight
        held.released.set()
    clock.advance(1)
    await reader.blacklist.sync()
    claims = reader.verify_access_token(pair.access_token)
    assert reader.blacklist.revoked_error(claims) is not None


async def test_a_jti_revoked_within_its_leeway_stays_revoked() -> None:
    # A token is accepted until `exp` plus the leeway: revoked in that span, it must be
    # refused, and the guide's `is_blacklisted` must say so.
    clock = Clock()
    service = make_clocked_service(clock=clock)
    _, pair = await login(service)
    claims = service.verify_access_token(pair.access_token)
    clock.advance(claims["exp"] - clock() + service.settings.leeway_seconds - 1)
    assert service.decode_token(pair.access_token)  # still accepted, within the leeway
    await service.blacklist.add(claims["jti"], claims["exp"])
    assert await service.blacklist.is_blacklisted(claims["jti"])
    with pytest.raises(TokenRevokedError):
        service.decode_token(pair.access_token)
