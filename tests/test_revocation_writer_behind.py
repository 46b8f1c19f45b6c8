"""A host whose clock is far behind the store's (a VM resumed before NTP caught up) writes
revocation keys that sort before every running reader's listing: its own next sync finds
them dated by the store's Last-Modified, writes them again under the store's time, and
times its later writes by it.

The store stamps Last-Modified from the true time, in whole seconds; each host reads the
true time through its own offset, and its monotonic clock is its own clock unless given.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import SharedTime, SkewedClock, StoreOnSharedTime, StoreWrapper, login, skewed_host

from s3auth_asgi import S3AuthService, TokenBlacklist, TokenRevokedError
from s3auth_asgi.storage import ObjectStore, Store, keys
from s3auth_asgi.writer_lag import lag_bounds

pytestmark = pytest.mark.anyio
BEHIND = -60.0  # well past the listing overlap of 15 s
SYNC = 5  # the default S3AUTH_REVOCATION_SYNC_SECONDS
SKEW = 10  # the default S3AUTH_REVOCATION_SKEW_SECONDS


async def synced(*hosts: S3AuthService) -> None:
    for host in hosts:
        await host.blacklist.sync()


def refused(host: S3AuthService, token: str) -> bool:
    try:
        host.decode_token(token)
    except TokenRevokedError:
        return True
    return False


async def revocation_keys(store: Store) -> list[keys.RevocationKey]:
    found = [keys.parse_revocation(info.key) async for info in store.list(keys.REVOCATIONS)]
    return sorted((key for key in found if key is not None), key=lambda key: key.written_ms)


async def fleet(
    writer_offset: float,
) -> tuple[SharedTime, StoreOnSharedTime, S3AuthService, S3AuthService, S3AuthService]:
    """Two readers (one on the true time, one 5 s ahead) and a writer `writer_offset` s off
    it, all synced once and again 20 s later: every reader's cursor is past the writer's
    clock when it is behind."""
    time = SharedTime()
    store = StoreOnSharedTime(ObjectStore.from_url("memory://"), lambda: time.now)
    reader = skewed_host(store, time, 0.0)
    ahead = skewed_host(store, time, 5.0)
    writer = skewed_host(store, time, writer_offset)
    await synced(reader, ahead, writer)
    time.advance(20)
    await synced(reader, ahead, writer)
    return time, store, reader, ahead, writer


async def test_a_logout_on_a_host_far_behind_is_refused_everywhere_after_its_next_sync() -> None:
    time, store, reader, ahead, writer = await fleet(BEHIND)
    _, pair = await login(reader)
    _, other = await login(reader, "bob")
    logged_out_at = time.now
    await writer.revoke_refresh_token(pair.refresh_token)
    time.advance(1)
    await synced(reader, ahead)
    # The gap: the readers' listing starts past the writer's clock.
    assert not refused(reader, pair.access_token)
    time.advance(SYNC - 1)
    store.reset_counts()
    await writer.blacklist.sync()  # its own next sync: finds its entry dated, writes it again
    assert dict(store.requests) == {"list": 1, "get": 1, "put": 1}
    first, again = await revocation_keys(store)
    assert first.subject == again.subject and first.kind == again.kind == "session"
    assert first.written_ms == int((logged_out_at + BEHIND) * 1000)
    # Timed by the store's clock, at most a second and the slow threshold ahead of it.
    assert time.now * 1000 <= again.written_ms <= (time.now + 1 + SKEW / 2) * 1000
    # Held as long as a token issued when it was first written lives, by the store's clock.
    assert again.expires_s >= logged_out_at + reader.settings.access_token_accepted_seconds
    time.advance(0.5)
    store.reset_counts()
    await synced(reader, ahead)
    assert dict(store.requests) == {"list": 2, "get": 2}
    assert refused(reader, pair.access_token) and refused(ahead, pair.access_token)
    # Its later writes are timed by the store's clock: seen at the readers' next sync, and
    # never written again.
    await writer.revoke_refresh_token(other.refresh_token)
    latest = (await revocation_keys(store))[-1]
    assert time.now * 1000 <= latest.written_ms <= (time.now + 1 + SKEW / 2) * 1000
    time.advance(1)
    await synced(reader, ahead)
    assert refused(reader, other.access_token) and refused(ahead, other.access_token)
    time.advance(SYNC)
    store.reset_counts()
    await writer.blacklist.sync()
    assert dict(store.requests) == {"list": 1, "get": 1}


@pytest.mark.parametrize("offset", [0.0, -10.0, 10.0], ids=["same", "behind", "ahead"])
async def test_clocks_within_the_allowance_cost_no_request_and_time_no_write(
    offset: float,
) -> None:
    time, store, reader, ahead, writer = await fleet(offset)
    _, pair = await login(reader)
    logged_out_at = time.now
    store.reset_counts()
    await writer.revoke_refresh_token(pair.refresh_token)
    assert dict(store.requests) == {"get": 1, "delete": 1, "put": 1}
    for _ in range(3):
        time.advance(SYNC)
        store.reset_counts()
        await synced(writer)
        assert dict(store.requests) == {"list": 1, "get": 1}
    (entry,) = await revocation_keys(store)
    assert entry.written_ms == int((logged_out_at + offset) * 1000)
    await synced(reader, ahead)
    assert refused(reader, pair.access_token) and refused(ahead, pair.access_token)


class SlowPuts(StoreWrapper):
    """Each revocation PUT lands the next of `seconds` later (those past the list at once)."""

    def __init__(self, inner: Store, time: SharedTime, seconds: list[float]) -> None:
        super().__init__(inner)
        self.time, self.seconds = time, seconds

    async def create(self, key: str, value: Any) -> str:
        if key.startswith(keys.REVOCATIONS) and self.seconds:
            self.time.advance(self.seconds.pop(0))
        return await self.inner.create(key, value)


async def test_a_put_slower_than_the_allowance_teaches_no_lag() -> None:
    """A PUT that took 12 s lands with a Last-Modified 12 s after its key's time, as from a
    host 12 s behind: timed by when it returned, it shows the clock right."""
    time = SharedTime()
    store = StoreOnSharedTime(ObjectStore.from_url("memory://"), lambda: time.now)
    writer = TokenBlacklist(
        SlowPuts(store, time, [12.0]),
        lookback_seconds=1805,
        sync_seconds=SYNC,
        skew_seconds=SKEW,
        clock=SkewedClock(time, 0.0),
    )
    await writer.sync()
    await writer.revoke_session("s1")  # slow: written again
    time.advance(SYNC)
    store.reset_counts()
    await writer.sync()
    assert dict(store.requests) == {"list": 1, "get": 1}
    await writer.revoke_session("s2")
    assert (await revocation_keys(store))[-1].written_ms == int(time.now * 1000)


def behind_host(
    monotonic: Any,
) -> tuple[SharedTime, StoreOnSharedTime, SkewedClock, TokenBlacklist]:
    time = SharedTime()
    store = StoreOnSharedTime(ObjectStore.from_url("memory://"), lambda: time.now)
    clock = SkewedClock(time, BEHIND)
    writer = TokenBlacklist(
        store,
        lookback_seconds=1805,
        sync_seconds=SYNC,
        skew_seconds=SKEW,
        clock=clock,
        monotonic=monotonic(time, clock),
    )
    return time, store, clock, writer


async def learned(time: SharedTime, writer: TokenBlacklist) -> None:
    await writer.sync()
    await writer.revoke_session("s1")
    time.advance(SYNC)
    await writer.sync()
    await writer.revoke_session("s2")
    assert await written_ms(writer, "s2") >= time.now * 1000  # timed by the store's clock


async def written_ms(writer: TokenBlacklist, session: str) -> int:
    """The time of the entry that revokes `session` (the latest, when written again)."""
    return max(
        key.written_ms for key in await revocation_keys(writer.store) if key.subject == session
    )


async def test_a_clock_set_right_times_the_next_write_by_itself() -> None:
    """NTP steps the clock forward; the monotonic clock, which no step moves, tells."""
    time, _, clock, writer = behind_host(lambda time, _: lambda: time.now)
    await learned(time, writer)
    clock.offset = 0.0
    time.advance(1)
    await writer.revoke_session("s3")
    assert await written_ms(writer, "s3") == int(time.now * 1000)


async def test_a_clock_set_right_with_its_monotonic_one_is_unshifted_after_its_next_sync() -> None:
    """A clock whose monotonic reading moved with the step (a test's; or one slewed, not
    stepped): the write after it is timed ahead, at most by the lag learned, and the next
    sync, which finds its own entries on time, drops the lag."""
    time, store, clock, writer = behind_host(lambda _, clock: clock)
    await learned(time, writer)
    clock.offset = 0.0
    time.advance(1)
    await writer.revoke_session("s3")
    ahead_by = await written_ms(writer, "s3") / 1000 - time.now
    assert 0 <= ahead_by <= -BEHIND + 1 + SKEW / 2
    time.advance(SYNC)
    store.reset_counts()
    await writer.sync()
    assert dict(store.requests) == {"list": 1, "get": 1}  # nothing written again
    await writer.revoke_session("s4")
    assert await written_ms(writer, "s4") == int(time.now * 1000)


@settings(max_examples=60, deadline=None)
@given(
    lag=st.floats(-30, 120),
    sent=st.floats(1.7e9, 1.7e9 + 1),
    took=st.floats(0, 6),
    landed=st.floats(0, 1),
    precision=st.sampled_from([1.0, 0.001]),
)
def test_the_lag_bounds_hold_and_never_exceed_the_allowance_for_clocks_within_it(
    lag: float, sent: float, took: float, landed: float, precision: float
) -> None:
    """A PUT sent at `sent` by a clock `lag` s behind the store's lands `landed` of the way
    through the time it took; the store gives its Last-Modified rounded down to whole
    seconds or finer. The bounds hold the lag, are at most a second and the PUT's time
    apart, and say more than the allowance only for a clock more than it behind."""
    landing = sent + lag + took * landed
    last_modified = math.floor(landing / precision) * precision
    low, high = lag_bounds(last_modified, sent, took)
    assert low <= lag + 1e-6 and lag < high + 1e-6
    assert high - low <= 1 + took + 1e-6
    if lag <= SKEW:
        assert low <= SKEW + 1e-6
