"""Object-store limiters on one store with more than two clocks: one host far ahead, one
far behind, and hosts on the right clock between them.

Each clock more than the allowance apart from the others counts its own admissions: the
right clock's must not be erased by what the hosts off it write (the host ahead counting a
later time in place of theirs, the host behind keeping only the latest time it finds too far
ahead), or every process on the right clock would find its allowance full again after each
request through the host behind.
"""

from __future__ import annotations

import math

import anyio
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from support import SharedTime

from s3auth_asgi.ratelimit import FailureBudget, ObjectStoreRateLimitStore, RateLimit
from s3auth_asgi.ratelimit.gcra import Decision
from s3auth_asgi.ratelimit.stores import BucketState
from s3auth_asgi.storage import ObjectStore, Store, keys

SKEW = 10  # the default allowance
HOUR = 3600.0
LOGIN = RateLimit(max_requests=5, window_seconds=900)  # one more every 180 s
INTERVAL = LOGIN.emission_interval
BUDGET = FailureBudget("login.account", {"login_account": LOGIN})


def host(store: Store, time: SharedTime, offset: float) -> ObjectStoreRateLimitStore:
    """A process whose clock is `offset` off the true time, with no refusal remembered."""
    return ObjectStoreRateLimitStore(store, clock=lambda: time.now + offset)


async def ask(host: ObjectStoreRateLimitStore, kind: str, limit: RateLimit) -> Decision:
    """A request against the limit, or for a budget, a peek and, admitted, a failure."""
    if kind == "limit":
        return await host.acquire("login", "alice", limit, 1)
    budget = BUDGET if limit is LOGIN else FailureBudget("api.failures", {"api_failed": limit})
    reading = await host.peek(budget, "alice")
    if reading.allowed:
        reading = await host.record(reading)
    return reading.decisions[0]


@pytest.mark.parametrize("kind", ["limit", "budget"])
@pytest.mark.parametrize("store_url", ["memory", "file", "s3", "seaweedfs", "azure"], indirect=True)
@pytest.mark.anyio
async def test_hosts_ahead_and_behind_give_the_right_clock_no_fresh_allowance(
    store_url: str, kind: str
) -> None:
    """The host ahead counts a failure, a process on the right clock is refused (a full
    debt as of its clock), and after every request through the host behind another process
    on the right clock asks: within a few seconds, the right clock admits nothing more."""
    store, time = ObjectStore.from_url(store_url), SharedTime()
    assert (await ask(host(store, time, HOUR), kind, LOGIN)).allowed
    first = await ask(host(store, time, 0.0), kind, LOGIN)
    assert not first.allowed and first.retry_after == pytest.approx(INTERVAL)
    admitted = 0
    for _ in range(4):
        assert not (await ask(host(store, time, -HOUR), kind, LOGIN)).allowed
        for _ in range(LOGIN.max_requests):
            decision = await ask(host(store, time, 0.0), kind, LOGIN)
            admitted += decision.allowed
            # Never told to wait more than the allowance and one interval.
            assert decision.retry_after <= SKEW + INTERVAL
        time.advance(1)
    assert admitted == 0
    # The debt the right clock was given stands: one more once its interval is up.
    time.advance(INTERVAL - 4)
    assert (await ask(host(store, time, 0.0), kind, LOGIN)).allowed
    assert not (await ask(host(store, time, 0.0), kind, LOGIN)).allowed


@pytest.mark.parametrize("kind", ["limit", "budget"])
@pytest.mark.anyio
async def test_the_host_ahead_counting_over_the_right_clock_leaves_it_no_fresh_allowance(
    kind: str,
) -> None:
    """The right clock spends its burst; the host ahead counts one on top of it (its own time
    in place of the right clock's), and the host behind is refused: the right clock finds
    a time of the host behind, long past by its clock, beside the one too far ahead."""
    store, time = ObjectStore.from_url("memory://"), SharedTime()
    admitted = 0
    for _ in range(4):
        for _ in range(LOGIN.max_requests):
            admitted += (await ask(host(store, time, 0.0), kind, LOGIN)).allowed
        await ask(host(store, time, HOUR), kind, LOGIN)
        assert not (await ask(host(store, time, -HOUR), kind, LOGIN)).allowed
        time.advance(INTERVAL)
    # A burst, then one an interval: 5 + 3 over three intervals.
    assert admitted <= LOGIN.max_requests + 3


LIMIT = RateLimit(max_requests=3, window_seconds=30)  # one more every 10 s
STEP = LIMIT.emission_interval
SLACK = 1e-3


def one_clock(seconds: float) -> int:
    """What one clock admits within `seconds`: the burst, and one more per interval."""
    return LIMIT.max_requests + math.floor(seconds / STEP + SLACK)


BURST = [(1, 0.0)] * LIMIT.max_requests
far = st.floats(2 * LIMIT.window_seconds + 2 * SKEW, 3 * HOUR)


@pytest.mark.parametrize("kind", ["limit", "budget"])
@settings(max_examples=60, deadline=None)
@given(
    behind=far,
    ahead=far,
    ops=st.lists(st.tuples(st.integers(0, 3), st.floats(0, 25)), min_size=1, max_size=30),
)
# The host behind, refused, keeps only the latest time too far ahead for it: without the
# right clock's debt, host 1 found its allowance full after each of its requests.
@example(behind=HOUR, ahead=HOUR, ops=[(3, 0), (0, 0), (2, 0), *BURST, (2, 0), *BURST])
def test_three_clocks_far_apart_admit_at_most_three_limits(
    kind: str, behind: float, ahead: float, ops: list[tuple[int, float]]
) -> None:
    """Hosts 0 and 1 on the right clock, host 2 `behind` it, host 3 `ahead` of it, each far
    more than a window apart; each op: a host asks, then time passes. Over any span the
    hosts admit at most what three clocks admit each on its own, and the right clock alone
    at most what one does."""

    async def scenario() -> None:
        time = SharedTime()
        store = ObjectStore.from_url("memory://")
        offsets = (0.0, 0.0, -behind, ahead)
        hosts = [host(store, time, offset) for offset in offsets]
        admissions: list[tuple[float, int]] = []
        for index, wait in ops:
            decision = await ask(hosts[index], kind, LIMIT)
            if decision.allowed:
                admissions.append((time.now, index))
            elif index < 2:
                assert decision.retry_after <= SKEW + STEP + SLACK
            time.advance(wait)
        for first, (start, _) in enumerate(admissions):
            for end, _ in admissions[first:]:
                within = [who for t, who in admissions if start <= t <= end]
                assert len(within) <= 3 * one_clock(end - start)
                assert sum(who < 2 for who in within) <= one_clock(end - start)

    anyio.run(scenario)


@pytest.mark.parametrize("store_url", ["file"], indirect=True)
@pytest.mark.anyio
async def test_every_time_set_aside_is_kept_and_swept_only_once_each_has_passed(
    store_url: str,
) -> None:
    """The host behind finds the right clock's debt and the host ahead's time both too far
    ahead: it keeps both. The sweep (a limit it is not told of) keeps the state until the
    latest of them has passed."""
    store, time = ObjectStore.from_url(store_url), SharedTime()
    fast, right, slow = host(store, time, HOUR), host(store, time, 0.0), host(store, time, -HOUR)
    assert (await fast.acquire("login", "alice", LOGIN, 1)).allowed
    assert not (await right.acquire("login", "alice", LOGIN, 1)).allowed
    assert not (await slow.acquire("login", "alice", LOGIN, 1)).allowed
    stored = await store.get(keys.ratelimit("login", "alice"), BucketState)
    assert stored is not None and isinstance(stored.value.ahead, list)
    debt = time.now + LOGIN.window_seconds
    assert stored.value.ahead == [debt, time.now + HOUR + INTERVAL]
    time.advance(LOGIN.window_seconds + SKEW)  # the right clock's debt has passed
    assert await right.delete_expired({}) == 0
    time.advance(HOUR)
    assert await right.delete_expired({}) == 1


@pytest.mark.anyio
async def test_a_state_with_one_time_set_aside_alone_is_still_read() -> None:
    """As states held it before there could be several: a number, not a list."""
    store, time = ObjectStore.from_url("memory://"), SharedTime()
    ahead = time.now + HOUR + LOGIN.window_seconds
    written = BucketState(time.now + LOGIN.window_seconds, ahead=ahead)
    await store.create(keys.ratelimit("login", "alice"), written)
    # The host ahead counts its own time, full: refused for an interval.
    refused = await host(store, time, HOUR).acquire("login", "alice", LOGIN, 1)
    assert not refused.allowed and refused.retry_after == pytest.approx(INTERVAL)
