"""Object-store limiters on one store whose clocks disagree.

A state holds a time read from the clock of the host that wrote it. A host whose clock is
ahead by more than a window plus the skew allowance (`S3AUTH_REVOCATION_SKEW_SECONDS`)
writes times no host on a right clock could have written: such a time counts for the others
as a full debt as of their own clock, written back (If-Match) so that it stops counting
more, and is kept aside in the state for the host ahead, which goes on being limited by its
own count. So a host on a right clock is never told to wait more than the allowance and one
interval per unit of cost, and the fleet admits at most what two clocks would (one within
the allowance of the others: what one clock spread by its offset would).
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
from s3auth_asgi.ratelimit.stores import BucketState, BudgetState
from s3auth_asgi.storage import ObjectStore, Store, keys

SKEW = 10  # the default allowance
HOUR = 3600.0
LOGIN = RateLimit(max_requests=5, window_seconds=900)  # one more every 180 s
INTERVAL = LOGIN.emission_interval
BUDGET = FailureBudget("login.account", {"login_account": LOGIN})
on_local = pytest.mark.parametrize("store_url", ["memory", "file"], indirect=True)


def host(store: Store, time: SharedTime, offset: float) -> ObjectStoreRateLimitStore:
    return ObjectStoreRateLimitStore(store, clock=lambda: time.now + offset)


@on_local
@pytest.mark.anyio
async def test_a_host_an_hour_ahead_locks_no_key_out_on_the_others(store_url: str) -> None:
    store, time = ObjectStore.from_url(store_url), SharedTime()
    ahead, right, other = host(store, time, HOUR), host(store, time, 0.0), host(store, time, 0.0)
    assert (await ahead.acquire("login", "alice", LOGIN, 1)).allowed
    store.reset_counts()
    refused = await right.acquire("login", "alice", LOGIN, 1)
    # A full debt as of its own clock, not an hour of it; written back on the version read.
    assert not refused.allowed and refused.retry_after == pytest.approx(INTERVAL)
    assert dict(store.requests) == {"get": 1, "put": 1}
    stored = await store.get(keys.ratelimit("login", "alice"), BucketState)
    assert stored is not None and stored.value.tat == time.now + LOGIN.window_seconds
    store.reset_counts()
    assert not (await right.acquire("login", "alice", LOGIN, 1)).allowed
    assert sum(store.requests.values()) == 0  # remembered
    # Another host on a right clock finds the debt written back: a GET, no write.
    assert (await other.acquire("login", "alice", LOGIN, 1)).retry_after == pytest.approx(INTERVAL)
    assert dict(store.requests) == {"get": 1}
    # The host ahead still counts what it admitted: four more, then refused.
    for _ in range(4):
        assert (await ahead.acquire("login", "alice", LOGIN, 1)).allowed
    assert not (await ahead.acquire("login", "alice", LOGIN, 1)).allowed
    # Its admissions since count as a full debt again, as of the time they are found.
    time.advance(INTERVAL)
    store.reset_counts()
    again = await right.acquire("login", "alice", LOGIN, 1)
    assert not again.allowed and again.retry_after == pytest.approx(INTERVAL)
    assert dict(store.requests) == {"get": 1, "put": 1}
    time.advance(INTERVAL)
    store.reset_counts()
    assert (await right.acquire("login", "alice", LOGIN, 1)).allowed
    assert dict(store.requests) == {"get": 1, "put": 1}


@on_local
@pytest.mark.anyio
async def test_a_failure_counted_an_hour_ahead_locks_no_account_out(store_url: str) -> None:
    store, time = ObjectStore.from_url(store_url), SharedTime()
    ahead, right = host(store, time, HOUR), host(store, time, 0.0)
    assert (await ahead.record(await ahead.peek(BUDGET, "alice"))).allowed
    store.reset_counts()
    peeked = await right.peek(BUDGET, "alice")
    assert not peeked.allowed
    assert peeked.decisions[0].retry_after == pytest.approx(INTERVAL)
    assert dict(store.requests) == {"get": 1, "put": 1}
    stored = await store.get(keys.ratelimit_budget(BUDGET.name, "alice"), BudgetState)
    assert stored is not None
    assert stored.value.tats == {"login_account": time.now + LOGIN.window_seconds}
    store.reset_counts()
    assert not (await right.peek(BUDGET, "alice")).allowed
    assert sum(store.requests.values()) == 0  # remembered
    for _ in range(4):  # the host ahead counted one failure of five
        assert (await ahead.record(await ahead.peek(BUDGET, "alice"))).allowed
    assert not (await ahead.peek(BUDGET, "alice")).allowed
    time.advance(INTERVAL)
    store.reset_counts()
    assert not (await right.peek(BUDGET, "alice")).allowed  # its failures since, found
    assert dict(store.requests) == {"get": 1, "put": 1}
    time.advance(INTERVAL)
    store.reset_counts()
    assert (await right.record(await right.peek(BUDGET, "alice"))).allowed
    assert dict(store.requests) == {"get": 1, "put": 1}


# Any skew, any sequence -----------------------------------------------------------------

LIMIT = RateLimit(max_requests=3, window_seconds=30)  # one more every 10 s
STEP = LIMIT.emission_interval
SLACK = 1e-3


def admitted_at_most(span: float, offset: float) -> int:
    """Units a fleet of right clocks and one `offset` off admits within `span` seconds: what
    one clock admits over the span widened by the offset while that is within the
    allowance, and beyond it, what two clocks admit, each on its own."""

    def one_clock(seconds: float) -> int:
        return LIMIT.max_requests + math.floor(seconds / STEP + SLACK)

    if abs(offset) <= SKEW:
        return one_clock(span + abs(offset))
    return 2 * one_clock(span)


Ops = list[tuple[int, float, int]]
BURST = [(2, 0.0, 1)] * LIMIT.max_requests
FAILURES = FailureBudget("api.failures", {"api_failed": LIMIT})


async def ask(host: ObjectStoreRateLimitStore, kind: str, cost: int) -> Decision:
    """A request of `cost` against the limit, or for a budget, a peek and, admitted, a
    failure of `cost` recorded (a cost of 0: the peek alone, as a right password)."""
    if kind == "limit":
        return await host.acquire("api", "k", LIMIT, cost)
    reading = await host.peek(FAILURES, "k")
    if reading.allowed and cost:
        reading = await host.record(reading, cost)
    return reading.decisions[0]


@pytest.mark.parametrize("kind", ["limit", "budget"])
@settings(max_examples=200, deadline=None)
@given(
    offset=st.one_of(st.floats(-3 * HOUR, 3 * HOUR), st.floats(-60, 60)),
    ops=st.lists(
        st.tuples(st.integers(0, 2), st.floats(0, 40), st.integers(0, 2)), min_size=1, max_size=30
    ),
    quiet=st.floats(0, 4 * HOUR),
)
@example(offset=HOUR, ops=[(2, 0.0, 1), (0, 0.0, 1)], quiet=0.0)
# Bursts through the host ahead between two others' refusals: each refusal writes a debt
# back, which must not give the host ahead its allowance back.
@example(offset=HOUR, ops=[*BURST, (0, 0.0, 1), *BURST, (1, 0.0, 1), *BURST], quiet=0)
# The host ahead counts over host 0's debt just after host 0 was refused on it: host 0's
# next refusal is from memory, and the one after it finds a debt to put in place again.
@example(offset=21.0, ops=[(2, 0.0, 2), (0, 0.0, 1), (2, 0.0, 1)], quiet=0.0)
def test_a_right_clock_waits_at_most_the_allowance_and_the_fleet_stays_bounded(
    kind: str, offset: float, ops: Ops, quiet: float
) -> None:
    """Hosts 0 and 1 are on the right clock, host 2 `offset` off it; each op: a host asks
    at a cost, then time passes. Then, `quiet` later, host 0 asks, and asks again when
    told, at most twice: the debt it finds, and a time set aside that comes within bounds
    meanwhile, each keep it waiting at most the allowance and one interval. Once more when
    its first answer is a refusal from memory, which writes nothing: decided on a debt it
    put in place, which the host ahead may have counted over since (a store read would
    have found that and put the debt in place again, at once)."""

    async def scenario() -> None:
        time = SharedTime()
        store = ObjectStore.from_url("memory://")
        hosts = [host(store, time, 0.0), host(store, time, 0.0), host(store, time, offset)]
        admissions: list[tuple[float, int]] = []
        for index, wait, cost in ops:
            decision = await ask(hosts[index], kind, cost)
            if decision.allowed:
                admissions.append((time.now, cost))
            elif index < 2:
                peeked = max(cost, 1) if kind == "budget" else cost  # a peek asks for one
                assert decision.retry_after <= SKEW + peeked * STEP + SLACK
            time.advance(wait)
        for first, (start, _) in enumerate(admissions):
            for end, _ in admissions[first:]:
                units = sum(c for t, c in admissions if start <= t <= end)
                assert units <= admitted_at_most(end - start, offset)
        time.advance(quiet)
        waited = 0.0
        store.reset_counts()
        decision = await ask(hosts[0], kind, 1)
        refusals = 2 + (sum(store.requests.values()) == 0)  # the first from memory
        for _ in range(refusals):
            if decision.allowed:
                break
            assert decision.retry_after <= SKEW + STEP + SLACK
            waited += decision.retry_after + SLACK
            time.advance(decision.retry_after + SLACK)
            decision = await ask(hosts[0], kind, 1)
        assert decision.allowed and waited <= refusals * (SKEW + STEP + 2 * SLACK)

    anyio.run(scenario)


@on_local
@pytest.mark.anyio
async def test_the_sweep_keeps_a_time_set_aside_until_it_has_passed(store_url: str) -> None:
    """Read by the sweep (a limit it is not told of), a state goes only once the time set
    aside for the host ahead has passed too."""
    store, time = ObjectStore.from_url(store_url), SharedTime()
    ahead, right = host(store, time, HOUR), host(store, time, 0.0)
    assert (await ahead.acquire("login", "alice", LOGIN, 1)).allowed
    assert not (await right.acquire("login", "alice", LOGIN, 1)).allowed  # a debt set aside
    time.advance(LOGIN.window_seconds + SKEW)  # the debt written back has passed
    assert await right.delete_expired({}) == 0
    time.advance(HOUR)
    assert await right.delete_expired({}) == 1
