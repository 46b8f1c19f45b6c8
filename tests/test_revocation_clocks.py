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
from support import SharedTime, SkewedClock, StoreWrapper, login, skewed_host

from s3auth_asgi import S3AuthService, TokenBlacklist, TokenRevokedError
from s3auth_asgi.errors import StoreUnavailableError
from s3auth_asgi.storage import ObjectStore, Store, keys
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


class SlowRevocationPuts(StoreWrapper):
    """Each revocation PUT takes the next of `seconds` of the shared time to land, and
    `meanwhile` (another process's sync) runs one second before it does; those past the
    list land at once."""

    def __init__(
        self, inner: Store, time: SharedTime, seconds: list[float], meanwhile: Any
    ) -> None:
        super().__init__(inner)
        self.time, self.seconds, self.meanwhile = time, seconds, meanwhile

    async def create(self, key: str, value: Any) -> str:
        if key.startswith(keys.REVOCATIONS) and self.seconds:
            seconds = self.seconds.pop(0)
            self.time.advance(seconds - min(seconds, 1))
            await self.meanwhile()
            self.time.advance(min(seconds, 1))
        return await self.inner.create(key, value)


async def slow_logout(
    writer_offset: float, put_seconds: list[float]
) -> tuple[SharedTime, ObjectStore, S3AuthService, str]:
    """A logout's revocation by a host `writer_offset` s off the reader's clock, whose
    revocation PUTs take `put_seconds`, while a running reader syncs one second before each
    lands. Returns the reader and the access token the revocation ended. The revocation
    alone: a logout whose ending took that long writes it once more after its DELETE
    (`late_deletes`), which the reader would then find whatever became of these."""
    time, store = SharedTime(), ObjectStore.from_url("memory://")
    reader = skewed_host(store, time, 0.0)
    slow = SlowRevocationPuts(store, time, put_seconds, reader.blacklist.sync)
    writer = skewed_host(slow, time, writer_offset)
    _, pair = await login(reader)
    await synced(reader)
    time.advance(20)
    await synced(reader)
    await writer.blacklist.revoke_session(reader.decode_token(pair.access_token)["sid"])
    return time, store, reader, pair.access_token


@pytest.mark.parametrize(
    ("writer_offset", "put_seconds"),
    [(0.0, 4.0), (-8.0, 4.0), (-10.0, 5.0)],
    ids=["same clock", "8s behind", "the allowance behind, the slowest put kept"],
)
async def test_a_logout_whose_put_was_slow_from_a_host_behind_is_seen_at_the_next_sync(
    writer_offset: float, put_seconds: float
) -> None:
    """A PUT that takes up to half the allowance is not written again, from a host whose
    clock is up to the allowance behind: the reader's listing overlap covers both."""
    time, store, reader, token = await slow_logout(writer_offset, [put_seconds])
    revocations = [info.key async for info in store.list(keys.REVOCATIONS)]
    assert len(revocations) == 1  # not written again
    store.reset_counts()
    await reader.ensure_fresh(strict=True)  # a sync begun after the logout was answered
    assert dict(store.requests) == {"list": 1, "get": 1}
    with pytest.raises(TokenRevokedError):
        reader.decode_token(token)
    fresh = skewed_host(store, time, 0.0)  # a process started now lists everything
    await synced(fresh)
    with pytest.raises(TokenRevokedError):
        fresh.decode_token(token)


async def test_a_revocation_written_again_after_a_slow_put_is_written_again_while_slow() -> None:
    """The first PUT takes 6 s and its re-write 7 s, both longer than half the allowance:
    each is written again under a later time, until one lands within it."""
    _, store, reader, token = await slow_logout(-10.0, [6.0, 7.0])
    await synced(reader)
    with pytest.raises(TokenRevokedError):
        reader.decode_token(token)
    revocations = [info.key async for info in store.list(keys.REVOCATIONS)]
    assert len(revocations) == 3


async def test_with_no_allowance_a_write_is_slow_only_past_a_second() -> None:
    """Half of no allowance is nothing: a write is written again only past a second, or
    every write, however fast, would be written again for ever."""
    time, store = SharedTime(), ObjectStore.from_url("memory://")

    async def nothing() -> None:
        pass

    slow = SlowRevocationPuts(store, time, [0.001, 1.0, 1.5, 0.001], nothing)
    writer = TokenBlacklist(
        slow, lookback_seconds=60, sync_seconds=5, skew_seconds=0, clock=SkewedClock(time, 0)
    )
    for session in ("s1", "s2", "s3"):
        await writer.revoke_session(session)
    assert store.requests["put"] == 4  # the 1.5 s one twice
    assert len([info async for info in store.list(keys.REVOCATIONS)]) == 4


async def test_a_store_too_slow_for_every_write_fails_the_revocation_after_four() -> None:
    """A store where every write takes longer than half the allowance would be written to
    for ever: after four slow writes the revocation fails as the store failing does (503
    through the app), so that the caller retries rather than waits without end."""
    time, store = SharedTime(), ObjectStore.from_url("memory://")

    async def nothing() -> None:
        pass

    slow = SlowRevocationPuts(store, time, [6.0] * 10, nothing)
    writer = TokenBlacklist(
        slow, lookback_seconds=60, sync_seconds=5, skew_seconds=10, clock=SkewedClock(time, 0)
    )
    with pytest.raises(StoreUnavailableError, match="too slow"):
        await writer.revoke_session("s1")
    assert store.requests["put"] == 4
    assert len([info async for info in store.list(keys.REVOCATIONS)]) == 4


async def test_a_sync_lists_again_one_and_a_half_allowances_before_the_last_one_began() -> None:
    """The overlap is the allowance (a writer's clock behind) plus half of it (the longest
    PUT not written again): nothing written earlier than that is listed again."""
    time, store = SharedTime(), ObjectStore.from_url("memory://")
    reader = skewed_host(store, time, 0.0)
    await synced(reader)
    began_ms = int(time.now * 1000)
    time.advance(reader.blacklist.sync_seconds)
    for written_ms in (began_ms - 15_001, began_ms - 15_000, began_ms - 1):
        key = keys.revocation(written_ms, "session", int(time.now) + 600, f"s{written_ms}")
        await store.create(key, {})
    store.reset_counts()
    assert await reader.blacklist.sync() == 2
    assert dict(store.requests) == {"list": 1, "get": 1}


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
    assert dict(store.requests) == {"list": 1, "get": 1}


def test_snapshot_ages_are_measured_on_the_monotonic_clock() -> None:
    # A clock given in code (a test's) moves snapshot ages itself.
    assert elapsed_clock(time.time) is time.monotonic
    clock = SkewedClock(SharedTime(), 0.0)
    assert elapsed_clock(clock) is clock


async def test_a_logout_everywhere_costs_its_record_one_list_one_entry_and_one_delete() -> None:
    time, store = SharedTime(), ObjectStore.from_url("memory://")
    service, reader = skewed_host(store, time, 0.0), skewed_host(store, time, 0.0)
    alice = await service.create_user("alice", "alice@example.com", PASSWORD)
    pairs = [await service.create_token_pair(alice) for _ in range(10)]
    await synced(reader)
    store.reset_counts()
    assert await service.revoke_all_user_tokens(alice.id) == 10
    # The record's GET and PUT (a new generation) and its marker's PUT, then the LIST, the
    # entry and the DELETE (`logout_everywhere`).
    assert dict(store.requests) == {"get": 1, "list": 1, "put": 3, "delete": 1}
    store.reset_counts()
    # The entry's body, naming the sessions, costs one GET to read (beside the end of
    # every session's, as at every sync).
    await synced(reader)
    assert dict(store.requests) == {"list": 1, "get": 2}
    for pair in pairs:
        with pytest.raises(TokenRevokedError):
            reader.decode_token(pair.access_token)
    store.reset_counts()
    assert await service.revoke_all_user_tokens(alice.id) == 0  # nothing left to end
    # No entry; the record's marker is there already, the superseded one is deleted.
    assert dict(store.requests) == {"get": 1, "list": 1, "put": 3, "delete": 1}


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
