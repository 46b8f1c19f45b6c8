"""Ending every session of every user at once (`every_session`): one cut-off object, read
by each process's revocation sync, refuses every session opened before it, at a refresh,
on the sessions page and in the middleware; logins after it work at once; the writer's
clock is held to the store's Last-Modified.

Hosts share one store; each has its own clock, a fixed offset from a common time that the
test moves by hand, and the store stamps Last-Modified by the common time (`StoreOnSharedTime`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio
import httpx
import pytest
from conftest import make_service, make_settings
from support import (
    SharedTime,
    SkewedClock,
    StoreOnSharedTime,
    bearer,
    call_http,
    http_scope,
    make_clocked_service,
    ok_app,
    stored_user,
)
from support import login as support_login
from test_admin_rule import _cli_store
from test_app import PASSWORD, assert_problem, checked_client, client_for, mounted, register
from test_app import bearer as bearer_header
from test_app import login as app_login
from test_app_totp import code_at, first_step, second_step, turn_on
from test_cli import Run

from s3auth_asgi import S3AuthService, TokenRevokedError
from s3auth_asgi.cli import failures
from s3auth_asgi.identifiers import session_created_ms
from s3auth_asgi.middleware.bearer import BearerTokenMiddleware
from s3auth_asgi.middleware.blacklist import BlacklistMiddleware
from s3auth_asgi.models import TokenPair
from s3auth_asgi.session_generation import is_session_key, sweepable
from s3auth_asgi.storage import ObjectInfo, ObjectStore, Store, Versioned, keys

pytestmark = pytest.mark.anyio
T = TypeVar("T")
SKEW = 10  # the settings' default allowance

SYNC = {"list": 1, "get": 1}  # the revocations' LIST; the cut-off's GET
REFRESH = {"get": 1, "list": 1, "put": 1}  # session; the cap's LIST; rotation
REFUSED = {"get": 1, "delete": 1}  # the session read, refused, deleted
END_ALL = {"get": 2, "put": 1}  # the cut-off read, written, read back


@pytest.fixture(params=["memory", "file"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    url = "memory://" if request.param == "memory" else f"file://{tmp_path}/store"
    if request.param == "file":
        (tmp_path / "store").mkdir()
    return ObjectStore.from_url(url)


def host(store: Store, time: SharedTime, offset: float = 0.0) -> S3AuthService:
    return make_clocked_service(store=store, clock=SkewedClock(time, offset))


def accepted(service: S3AuthService, pair: TokenPair) -> bool:
    try:
        service.decode_token(pair.access_token)
    except TokenRevokedError:
        return False
    return True


async def test_every_session_of_every_user_ends_on_every_host(shared_store: ObjectStore) -> None:
    time = SharedTime()
    store = StoreOnSharedTime(shared_store, lambda: time.now)
    writer, other = host(store, time), host(store, time)
    alice = await stored_user(writer, "alice")
    bob = await stored_user(writer, "bob")
    # Both have a fresh snapshot: no sync starts in the background of what is counted.
    await writer.blacklist.sync()
    await other.blacklist.sync()
    before = [await writer.create_token_pair(alice), await other.create_token_pair(bob)]
    time.advance(1)

    store.reset_counts()
    await writer.end_all_sessions()
    assert dict(store.requests) == END_ALL
    # The writer refuses at once; the other host once its sync has read the cut-off.
    assert not any(accepted(writer, pair) for pair in before)
    assert all(accepted(other, pair) for pair in before)
    store.reset_counts()
    await other.blacklist.sync()
    assert dict(store.requests) == SYNC  # one GET more per sync round, and no more
    assert not any(accepted(other, pair) for pair in before)

    # Its refresh tokens are refused too, and their sessions deleted on the way.
    for service, pair in ((writer, before[0]), (other, before[1])):
        store.reset_counts()
        with pytest.raises(TokenRevokedError):
            await service.refresh_access_token(pair.refresh_token)
        assert dict(store.requests) == REFUSED
    assert await writer.get_user_active_sessions(alice.id) == []

    # Logging in again works at once, on either host, and refreshes at the usual cost.
    for service in (writer, other):
        again = await service.create_token_pair(alice)
        assert accepted(writer, again) and accepted(other, again)
        store.reset_counts()
        refreshed = await service.refresh_access_token(again.refresh_token)
        assert dict(store.requests) == REFRESH
        assert accepted(writer, refreshed) and accepted(other, refreshed)
    assert len(await writer.get_user_active_sessions(alice.id)) == 2


async def test_the_other_hosts_middleware_refuses_after_its_sync() -> None:
    time = SharedTime()
    store = StoreOnSharedTime(ObjectStore.from_url("memory://"), lambda: time.now)
    writer, other = host(store, time), host(store, time)
    alice = await stored_user(writer, "alice")
    pair = await other.create_token_pair(alice)
    app = BearerTokenMiddleware(BlacklistMiddleware(ok_app, other), other)
    assert (await call_http(app, http_scope("/api", bearer(pair.access_token)))).status == 200
    time.advance(1)
    await writer.end_all_sessions()
    store.reset_counts()
    assert (await call_http(app, http_scope("/api", bearer(pair.access_token)))).status == 200
    assert sum(store.requests.values()) == 0  # a fresh snapshot: no request per request
    time.advance(other.settings.revocation_sync_seconds * 2)  # overdue: the request waits
    response = await call_http(app, http_scope("/api", bearer(pair.access_token)))
    assert response.status == 401
    assert dict(store.requests) == SYNC
    strict = BearerTokenMiddleware(BlacklistMiddleware(ok_app, writer, strict=True), writer)
    new = await other.create_token_pair(alice)
    assert (await call_http(strict, http_scope("/api", bearer(new.access_token)))).status == 200


class HeldCutOffRead(StoreOnSharedTime):
    """Once `holding` is set, holds the answer of the next read of the cut-off until
    `released` is: a sync answered before an ending landed, slow to finish."""

    def __init__(self, inner: Store, now: Callable[[], float]) -> None:
        super().__init__(inner, now)
        self.holding = False
        self.answered = anyio.Event()
        self.released = anyio.Event()

    async def get(self, key: str, type_: type[T]) -> Versioned[T] | None:
        found = await super().get(key, type_)
        if key == keys.SESSIONS_NOT_BEFORE and self.holding:
            self.holding = False
            self.answered.set()
            await self.released.wait()
        return found


async def test_a_sync_answered_before_the_ending_does_not_lift_it_on_the_writer() -> None:
    time = SharedTime()
    store = HeldCutOffRead(ObjectStore.from_url("memory://"), lambda: time.now)
    writer = host(store, time)
    alice = await stored_user(writer, "alice")
    await writer.blacklist.sync()
    old = await writer.create_token_pair(alice)
    time.advance(1)
    store.holding = True
    async with anyio.create_task_group() as group:
        group.start_soon(writer.blacklist.sync)
        await store.answered.wait()  # the sync has read the store: no cut-off there yet
        await writer.end_all_sessions()
        assert not accepted(writer, old)
        store.released.set()
    # The sync ended with what it read before the ending: the writer still refuses.
    assert not accepted(writer, old)
    with pytest.raises(TokenRevokedError):
        await writer.refresh_access_token(old.refresh_token)
    # What it reads next is the store's.
    await writer.blacklist.sync()
    assert not accepted(writer, old)


async def test_a_writer_clock_far_ahead_locks_nobody_out_for_long() -> None:
    time = SharedTime()
    store = StoreOnSharedTime(ObjectStore.from_url("memory://"), lambda: time.now)
    ahead, exact = host(store, time, 3600.0), host(store, time)
    alice = await stored_user(exact, "alice")
    old = await exact.create_token_pair(alice)
    time.advance(1)
    await ahead.end_all_sessions()
    await exact.blacklist.sync()
    assert not accepted(exact, old)
    # Held to the store's time plus the allowance: not an hour ahead.
    cutoff = exact.blacklist.snapshot.not_before_ms
    assert cutoff <= (time.now + SKEW + 1) * 1000
    time.advance(SKEW + 2)
    late = host(store, time)  # a host that has not read the cut-off before its login
    new = await late.create_token_pair(alice)
    await late.blacklist.sync()
    assert accepted(late, new) and accepted(exact, new)


async def test_a_writer_clock_far_behind_still_ends_what_was_opened_before() -> None:
    time = SharedTime()
    store = StoreOnSharedTime(ObjectStore.from_url("memory://"), lambda: time.now)
    behind, exact = host(store, time, -3600.0), host(store, time)
    alice = await stored_user(exact, "alice")
    time.advance(5)
    old = await exact.create_token_pair(alice)
    time.advance(1)
    await behind.end_all_sessions()
    await exact.blacklist.sync()
    assert not accepted(exact, old)
    with pytest.raises(TokenRevokedError):
        await exact.refresh_access_token(old.refresh_token)
    # Logins right after work: on the writer, whose clock reads an hour before the
    # cut-off, and on a host that has read it, whose clock reads the same second.
    assert accepted(behind, await behind.create_token_pair(alice))
    assert accepted(exact, await exact.create_token_pair(alice))


async def test_a_later_ending_never_moves_the_cut_off_back() -> None:
    time = SharedTime()
    store = StoreOnSharedTime(ObjectStore.from_url("memory://"), lambda: time.now)
    ahead, behind = host(store, time, 5.0), host(store, time, -5.0)
    await ahead.end_all_sessions()
    first = ahead.blacklist.snapshot.not_before_ms
    await behind.end_all_sessions()
    assert behind.blacklist.snapshot.not_before_ms >= first


async def test_the_sweep_deletes_the_sessions_it_ended() -> None:
    time = SharedTime()
    store = StoreOnSharedTime(ObjectStore.from_url("memory://"), lambda: time.now)
    service = host(store, time)
    alice = await stored_user(service, "alice")
    old = [await service.create_token_pair(alice) for _ in range(2)]
    time.advance(1)
    await service.end_all_sessions()
    new = await service.create_token_pair(alice)
    await service.cleanup_expired_tokens()
    listed = [info.key async for info in store.list(keys.user_sessions(alice.id))]
    assert [session_created_ms(keys.id_from_key(k)) for k in listed] == [
        session_created_ms(service.decode_token(new.access_token)["sid"])
    ]
    assert not any(accepted(service, pair) for pair in old)
    assert await store.get(keys.SESSIONS_NOT_BEFORE, dict) is not None


async def test_a_second_step_waiting_since_before_the_cut_off_opens_no_session() -> None:
    """A login's `mfa_token` proves the password only, as it stood before the incident:
    every host that knows the cut-off refuses one issued before it, as it refuses such a
    session. One issued after it works, on a host whose clock reads before it too."""
    time = SharedTime()
    store = StoreOnSharedTime(ObjectStore.from_url("memory://"), lambda: time.now)
    writer, behind = host(store, time, 0.0), host(store, time, -60.0)
    apps = {"writer": mounted(writer), "behind": mounted(behind)}
    async with client_for(apps["writer"]) as client:
        await register(client, "alice")
        seed = await turn_on(client, writer, "alice")
    waiting = {}
    for name, app in apps.items():
        async with client_for(app) as client:
            waiting[name] = await first_step(client, "alice")
    time.advance(1)
    await writer.end_all_sessions()
    # The other host reads the cut-off as its second step brings its snapshot within its
    # bound: overdue by the time the next code comes.
    code = code_at(seed, writer.clock)  # type: ignore[arg-type]
    for name, app in apps.items():
        async with client_for(app) as client:
            response = await second_step(client, waiting[name], code)
        assert_problem(response, 401, "invalid_mfa_token")
    # Nothing was spent: a login after the cut-off, begun on the host whose clock still
    # reads before it, goes through with the same code, on either host.
    assert behind.clock() * 1000 < behind.blacklist.snapshot.not_before_ms
    async with client_for(apps["behind"]) as client:
        fresh = await first_step(client, "alice")
    async with client_for(apps["writer"]) as client:
        response = await second_step(client, fresh, code)
    assert response.status_code == 200, response.text


def test_the_cut_off_is_no_session_and_no_marker() -> None:
    info_time = dt.datetime.now(dt.UTC)
    info = ObjectInfo(keys.SESSIONS_NOT_BEFORE, info_time - dt.timedelta(days=3650), 20)
    assert not is_session_key(info.key)
    assert not sweepable(info, make_settings(), info_time.timestamp())


async def test_the_admin_endpoint_ends_every_session_the_callers_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = make_service()
    await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    async with checked_client(service) as client:
        await ended_through_the_endpoint(service, client, caplog)


async def ended_through_the_endpoint(
    service: S3AuthService, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    admin = await app_login(client, "root")
    await register(client, "alice")
    alice = await app_login(client, "alice")
    refused = await client.post("/auth/admin/sessions/end-all", headers=bearer_header(alice))
    assert_problem(refused, 403, "insufficient_scope")
    caplog.set_level(logging.INFO, logger="s3auth_asgi.events")
    caplog.clear()
    response = await client.post("/auth/admin/sessions/end-all", headers=bearer_header(admin))
    assert response.status_code == 200, response.text
    assert response.json()["not_before"] == service.blacklist.snapshot.not_before_ms / 1000
    events = [r.auth_event for r in caplog.records if r.name == "s3auth_asgi.events"]  # type: ignore[attr-defined]
    assert [(e.name, e.outcome) for e in events] == [("admin_sessions_end_all", "success")]
    for tokens in (alice, admin):
        assert (await client.get("/auth/me", headers=bearer_header(tokens))).status_code == 401
        again = await client.post("/auth/refresh", data={"refresh_token": tokens["refresh_token"]})
        assert_problem(again, 401, "token_revoked")
    # Logging in again works at once.
    alice = await app_login(client, "alice")
    assert (await client.get("/auth/me", headers=bearer_header(alice))).status_code == 200


def test_the_command_ends_every_session_once_confirmed(monkeypatch: pytest.MonkeyPatch) -> None:
    store = _cli_store(monkeypatch)
    service = make_service(store=store)
    _, pair = anyio.run(lambda: support_login(service))
    refused = Run("sessions", "end-all", open_store=lambda url: store)
    assert (refused.code, refused.out) == (failures.USAGE, ""), refused
    assert "pass --yes" in refused.err
    declined = Run("sessions", "end-all", stdin="no\n", terminal=True, open_store=lambda u: store)
    assert declined.code == failures.USAGE, declined
    anyio.run(service.blacklist.sync)
    assert accepted(service, pair)  # nothing was ended
    asked = Run("sessions", "end-all", stdin="end\n", terminal=True, open_store=lambda u: store)
    assert asked.code == failures.OK, asked
    assert asked.out.startswith("ended every session opened before "), asked
    assert Run("sessions", "end-all", "--yes", open_store=lambda url: store).code == failures.OK
    anyio.run(service.blacklist.sync)
    assert not accepted(service, pair)
