"""Logout-everywhere ends exactly the sessions that existed when it was issued, whatever
clock the hosts that opened them had, and no session opened after it.

Hosts share one store; each has its own clock, a fixed offset from a common time that the
test moves by hand. The revoking host is exact.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from conftest import make_settings
from support import SharedTime, SkewedClock, StoreWrapper, skewed_host

from s3auth_asgi import S3AuthService, TokenBlacklist, TokenRevokedError
from s3auth_asgi.storage import ObjectStore
from s3auth_asgi.types import elapsed_clock

pytestmark = pytest.mark.anyio
PASSWORD = "Correct-Horse-42x"
SESSION = "sessionBBBBBBBBBBBBBBB"


async def synced(*hosts: S3AuthService) -> None:
    for service in hosts:
        await service.blacklist.sync()


@pytest.mark.parametrize("offset", [5.0, -5.0, 300.0, -300.0], ids=lambda o: f"{o:+.0f}s")
async def test_sessions_opened_on_a_skewed_host_end_and_later_ones_live(offset: float) -> None:
    # Tokens verify across hosts only within the leeway, and readers see entries only
    # within the listing overlap: both must cover the skew. Which sessions an entry ends
    # is decided by no clock.
    allowance = int(abs(offset)) + 10
    settings = {"revocation_skew_seconds": allowance, "leeway_seconds": allowance}
    time, store = SharedTime(), ObjectStore.from_url("memory://")
    revoker = skewed_host(store, time, 0.0, **settings)
    skewed = skewed_host(store, time, offset, **settings)
    exact = skewed_host(store, time, 0.0, **settings)
    alice = await revoker.create_user("alice", "alice@example.com", PASSWORD)
    await synced(revoker, skewed, exact)
    before = [await skewed.create_token_pair(alice), await exact.create_token_pair(alice)]
    time.advance(0.5)
    ended = await revoker.revoke_all_user_tokens(alice.id)
    assert ended == 2
    time.advance(0.5)
    after = await skewed.create_token_pair(alice)  # opened after the logout-everywhere
    time.advance(1)
    await synced(revoker, skewed, exact)
    for reader in (revoker, skewed, exact):
        for pair in before:
            with pytest.raises(TokenRevokedError):
                reader.decode_token(pair.access_token)
        assert reader.decode_token(after.access_token)["sid"]


async def test_a_session_opened_in_the_same_millisecond_after_the_revocation_lives() -> None:
    time, store = SharedTime(), ObjectStore.from_url("memory://")
    service = skewed_host(store, time, 0.0)
    alice = await service.create_user("alice", "alice@example.com", PASSWORD)
    old = await service.create_token_pair(alice)
    await service.revoke_all_user_tokens(alice.id)  # the clock has not moved at all
    new = await service.create_token_pair(alice)
    with pytest.raises(TokenRevokedError):
        service.decode_token(old.access_token)
    assert service.decode_token(new.access_token)["sid"]
    other = skewed_host(store, time, 0.0)
    await synced(other)
    with pytest.raises(TokenRevokedError):
        other.decode_token(old.access_token)
    assert other.decode_token(new.access_token)["sid"]


async def test_a_revoker_whose_clock_is_off_is_still_seen_within_the_allowance() -> None:
    time, store = SharedTime(), ObjectStore.from_url("memory://")
    settings = {"revocation_skew_seconds": 310}
    reader = skewed_host(store, time, 0.0, **settings)
    alice = await reader.create_user("alice", "alice@example.com", PASSWORD)
    pair = await reader.create_token_pair(alice)
    await synced(reader)
    time.advance(60)
    await synced(reader)  # the reader's cursor is now well past the slow revoker's clock
    slow = skewed_host(store, time, -300.0, **settings)
    await slow.revoke_all_user_tokens(alice.id)
    await synced(reader)
    with pytest.raises(TokenRevokedError):
        reader.decode_token(pair.access_token)


async def test_a_clock_stepped_back_delays_no_sync_and_loses_no_revocation() -> None:
    """A host that booted with its clock an hour ahead syncs, then NTP steps its clock back
    to the true time: a revocation written after that is seen within the usual bound, not
    an hour later."""
    true_time, store = SharedTime(), ObjectStore.from_url("memory://")
    host = SkewedClock(true_time, 3600.0)
    # Its monotonic clock, which no step moves: the true time's pace.
    reader = TokenBlacklist(store, clock=host, monotonic=lambda: true_time.now)
    writer = TokenBlacklist.from_settings(store, make_settings(), clock=SkewedClock(true_time, 0.0))
    await reader.ensure_fresh()
    host.offset = 0.0
    await writer.revoke_session(SESSION)
    true_time.advance(2 * reader.sync_seconds)
    store.reset_counts()
    await reader.ensure_fresh()  # overdue by the time that really passed: waited for
    assert reader.revoked_error({"jti": "j", "sid": SESSION}) is not None
    assert dict(store.requests) == {"list": 1}


def test_snapshot_ages_are_measured_on_the_monotonic_clock() -> None:
    # A clock given in code (a test's) moves snapshot ages itself.
    assert elapsed_clock(time.time) is time.monotonic
    clock = SkewedClock(SharedTime(), 0.0)
    assert elapsed_clock(clock) is clock


async def test_a_logout_everywhere_costs_one_list_one_entry_and_one_delete() -> None:
    time, store = SharedTime(), ObjectStore.from_url("memory://")
    service, reader = skewed_host(store, time, 0.0), skewed_host(store, time, 0.0)
    alice = await service.create_user("alice", "alice@example.com", PASSWORD)
    pairs = [await service.create_token_pair(alice) for _ in range(10)]
    await synced(reader)
    store.reset_counts()
    assert await service.revoke_all_user_tokens(alice.id) == 10
    assert dict(store.requests) == {"list": 1, "put": 1, "delete": 1}
    store.reset_counts()
    await synced(reader)  # the entry's body, naming the sessions, costs one GET to read
    assert dict(store.requests) == {"list": 1, "get": 1}
    for pair in pairs:
        with pytest.raises(TokenRevokedError):
            reader.decode_token(pair.access_token)
    store.reset_counts()
    assert await service.revoke_all_user_tokens(alice.id) == 0  # nothing left to end
    assert dict(store.requests) == {"list": 1}


async def test_a_refresh_that_waited_on_the_store_for_the_winner_is_not_a_reuse() -> None:
    """The loser of a rotation race that waits longer than the grace window for the store
    (SeaweedFS polls its write lock once a second) still gets the winner's pair."""
    time = SharedTime()
    inner = ObjectStore.from_url("memory://")

    class SlowLoser(StoreWrapper):
        interfering = True

        async def call(self, name: str, run: Any) -> Any:
            if name == "replace" and self.interfering:
                self.interfering = False
                await winner.refresh_access_token(pair.refresh_token)  # wins the race
                time.advance(winner.settings.refresh_grace_seconds + 5)  # the lock wait
            return await run()

    winner = skewed_host(inner, time, 0.0)
    loser = skewed_host(SlowLoser(inner), time, 0.0)
    alice = await winner.create_user("alice", "alice@example.com", PASSWORD)
    pair = await winner.create_token_pair(alice)
    answered = await loser.refresh_access_token(pair.refresh_token)
    assert answered.refresh_token != pair.refresh_token
    assert loser.decode_token(answered.access_token)["sub"] == alice.id
    # The session lives on: the winner's token rotates again.
    assert await winner.refresh_access_token(answered.refresh_token)
