"""Failure budgets: GCRA's peek against its acquire (properties), all-or-nothing charges
over several limits, and the two stores' peek/record: exact request counts, lost races,
budgets spent by another process between a peek and its record."""

from __future__ import annotations

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import StoreWrapper

from s3auth_asgi.errors import ConfigurationError
from s3auth_asgi.ratelimit import (
    FailureBudget,
    FailureStore,
    MemoryRateLimitStore,
    ObjectStoreRateLimitStore,
    RateLimit,
    gcra,
    peek,
)
from s3auth_asgi.ratelimit.budget import charge_budget, peek_budget
from s3auth_asgi.storage import ObjectStore, Store, keys

pytestmark = pytest.mark.anyio

SHORT = RateLimit(max_requests=3, window_seconds=60)
LONG = RateLimit(max_requests=5, window_seconds=3600)
ACCOUNT = FailureBudget("test.account", {"short": SHORT, "long": LONG})
NOW = 1_780_000_000.0

limits = st.builds(
    RateLimit,
    max_requests=st.integers(1, 10),
    window_seconds=st.sampled_from([0.5, 1.0, 7.3, 60.0, 900.0, 86400.0]),
)
origins = st.sampled_from([0.0, 12_345.678, NOW])


@settings(max_examples=300, deadline=None)
@given(
    limit=limits,
    origin=origins,
    tat_offset=st.one_of(st.none(), st.floats(-100_000, 100_000, allow_nan=False)),
    cost=st.integers(1, 3),
)
def test_peek_admits_exactly_when_gcra_would(
    limit: RateLimit, origin: float, tat_offset: float | None, cost: int
) -> None:
    tat = None if tat_offset is None else origin + tat_offset
    peeked = peek(tat, origin, limit, cost)
    _, acquired = gcra(tat, origin, limit, cost)
    # Never admits what an acquire would refuse, nor the reverse; the wait it tells is exact.
    assert peeked.allowed == acquired.allowed
    assert peeked.retry_after == acquired.retry_after
    if peeked.allowed:
        # The allowance as it stands: the acquire's remaining, plus what it would spend.
        assert peeked.remaining == min(acquired.remaining + cost, limit.max_requests)
        assert gcra(tat, origin, limit, 0)[1].reset_after == peeked.reset_after


@settings(max_examples=150, deadline=None)
@given(
    origin=origins,
    steps=st.lists(
        st.tuples(st.floats(0, 400, allow_nan=False), st.booleans()), min_size=1, max_size=60
    ),
)
def test_peek_then_charge_keeps_the_gcra_bound(
    origin: float, steps: list[tuple[float, bool]]
) -> None:
    """Attempts peek, and fail (charge) or succeed (write nothing). Peeks never change the
    state, so the charges admitted are what GCRA alone admits: within any span of `d`
    seconds, at most max_requests + d / emission_interval for each limit."""
    tats: dict[str, float] = {}
    now = origin
    charged: list[float] = []
    for advance, fails in steps:
        now += advance
        before = dict(tats)
        if not all(d.allowed for d in peek_budget(tats, now, ACCOUNT)):
            assert tats == before
            continue
        if fails:
            kept, decisions = charge_budget(tats, now, ACCOUNT)
            assert kept is not None and all(d.allowed for d in decisions)
            tats = kept
            charged.append(now)
    for limit in ACCOUNT.limits.values():
        for i, start in enumerate(charged):
            within = [t for t in charged[i:] if t - start <= limit.window_seconds]
            span = within[-1] - start
            assert len(within) <= limit.max_requests + span / limit.emission_interval + 1e-6


def test_a_charge_is_all_or_nothing() -> None:
    tats = {"short": NOW + 59.0}  # SHORT has room for nothing more; LONG has all of its 5
    kept, decisions = charge_budget(tats, NOW, ACCOUNT)
    assert kept is None
    assert [d.allowed for d in decisions] == [False, True]
    assert decisions[1].remaining == 5  # LONG reports its allowance untouched


def test_a_budget_checks_its_names_and_knows_its_longest_window() -> None:
    assert ACCOUNT.window_seconds == 3600
    with pytest.raises(ConfigurationError, match="no limits"):
        FailureBudget("empty", {})
    with pytest.raises(ConfigurationError, match="limit name"):
        FailureBudget("a/b", {"short": SHORT})
    with pytest.raises(ConfigurationError, match="no RateLimit"):
        FailureBudget("x", {"short": 5})  # type: ignore[dict-item]


def test_both_stores_keep_failure_budgets() -> None:
    assert isinstance(MemoryRateLimitStore(), FailureStore)
    assert isinstance(ObjectStoreRateLimitStore(ObjectStore.from_url("memory://")), FailureStore)


async def test_peek_costs_a_get_and_record_a_conditional_put(store_url: str) -> None:
    store = ObjectStore.from_url(store_url)
    limiter = ObjectStoreRateLimitStore(store, clock=lambda: NOW)
    reading = await limiter.peek(ACCOUNT, "k")
    assert reading.allowed and reading.version is None
    assert dict(store.requests) == {"get": 1}
    store.reset_counts()
    recorded = await limiter.record(reading)  # new key: If-None-Match create, no re-read
    assert dict(store.requests) == {"put": 1}
    assert [d.remaining for d in recorded.decisions] == [2, 4]
    store.reset_counts()
    again = await limiter.peek(ACCOUNT, "k")
    await limiter.record(again)  # existing key: If-Match on the peek's ETag
    assert dict(store.requests) == {"get": 1, "put": 1}
    listed = [info.key async for info in store.list(keys.RATELIMIT)]
    assert listed == [keys.ratelimit_budget("test.account", "k")]  # one object, both limits


async def test_a_spent_budget_refuses_at_the_peek_and_writes_nothing(store_url: str) -> None:
    store = ObjectStore.from_url(store_url)
    limiter = ObjectStoreRateLimitStore(store, clock=lambda: NOW)
    for _ in range(SHORT.max_requests):
        assert (await limiter.record(await limiter.peek(ACCOUNT, "k"))).allowed
    store.reset_counts()
    refused = await limiter.peek(ACCOUNT, "k")
    assert not refused.allowed
    assert dict(store.requests) == {"get": 1}
    assert refused.decisions[0].retry_after == pytest.approx(SHORT.emission_interval, abs=1e-3)


class Racing(StoreWrapper):
    """Runs `race` once, right before the next conditional write."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.races: list[object] = []

    async def call(self, name, run):  # type: ignore[no-untyped-def]
        if name in ("create", "replace") and self.races:
            await self.races.pop(0)  # type: ignore[misc]
        return await run()


async def test_a_record_after_a_lost_race_counts_on_top_of_the_winner(store_url: str) -> None:
    ours_store = ObjectStore.from_url(store_url)
    theirs_store = ours_store if store_url == "memory://" else ObjectStore.from_url(store_url)
    racing = Racing(ours_store)
    ours = ObjectStoreRateLimitStore(racing, clock=lambda: NOW)
    theirs = ObjectStoreRateLimitStore(theirs_store, clock=lambda: NOW)
    reading = await ours.peek(ACCOUNT, "k")
    racing.races.append(theirs.record(await theirs.peek(ACCOUNT, "k")))
    ours_store.reset_counts()
    theirs_store.reset_counts()
    recorded = await ours.record(reading)
    assert recorded.allowed
    assert [d.remaining for d in recorded.decisions] == [1, 3]  # two counted: nothing lost
    # Ours: the create that lost, the re-read, the If-Match PUT that won.
    ours_count = dict(ours_store.requests) if ours_store is not theirs_store else None
    if ours_count is not None:
        assert ours_count == {"put": 2, "get": 1}


async def test_a_budget_spent_between_peek_and_record_is_refused(store_url: str) -> None:
    """The peek admitted; by the time of the record another process spent the budget: the
    record re-reads, refuses and writes nothing (the caller answers 429, not 401)."""
    ours_store = ObjectStore.from_url(store_url)
    theirs_store = ours_store if store_url == "memory://" else ObjectStore.from_url(store_url)
    ours = ObjectStoreRateLimitStore(ours_store, clock=lambda: NOW)
    theirs = ObjectStoreRateLimitStore(theirs_store, clock=lambda: NOW)
    await ours.record(await ours.peek(ACCOUNT, "k"))
    stale = await ours.peek(ACCOUNT, "k")
    assert stale.allowed
    for _ in range(SHORT.max_requests - 1):
        assert (await theirs.record(await theirs.peek(ACCOUNT, "k"))).allowed
    recorded = await ours.record(stale)
    assert not recorded.allowed
    assert not (await theirs.peek(ACCOUNT, "k")).allowed


async def test_concurrent_records_admit_no_more_than_the_limit(store_url: str) -> None:
    stores = [ObjectStore.from_url(store_url)]
    stores.append(stores[0] if store_url == "memory://" else ObjectStore.from_url(store_url))
    limiters = [ObjectStoreRateLimitStore(s) for s in stores]
    admitted = 0

    async def attempt(limiter: ObjectStoreRateLimitStore) -> None:
        nonlocal admitted
        reading = await limiter.peek(ACCOUNT, "k")
        if reading.allowed:
            recorded = await limiter.record(reading)
            admitted += recorded.allowed

    async with anyio.create_task_group() as tasks:
        for i in range(10):
            tasks.start_soon(attempt, limiters[i % 2])
    assert 1 <= admitted <= SHORT.max_requests


async def test_memory_store_records_on_the_current_state() -> None:
    now = [NOW]
    store = MemoryRateLimitStore(clock=lambda: now[0])
    stale = [await store.peek(ACCOUNT, "k") for _ in range(SHORT.max_requests + 2)]
    answers = [(await store.record(reading)).allowed for reading in stale]
    assert answers == [True] * SHORT.max_requests + [False, False]
    now[0] += SHORT.emission_interval
    assert (await store.peek(ACCOUNT, "k")).allowed
    assert len(store) == 1


def test_memory_store_bounds_budget_keys() -> None:
    store = MemoryRateLimitStore(max_keys=100)

    async def fill() -> None:
        for i in range(1000):
            await store.record(await store.peek(ACCOUNT, f"k{i}"))
            assert len(store) <= 100

    anyio.run(fill)


async def test_delete_expired_uses_a_budgets_longest_window(store_url: str) -> None:
    import datetime as dt

    store = ObjectStore.from_url(store_url)
    limiter = ObjectStoreRateLimitStore(store)
    await limiter.record(await limiter.peek(ACCOUNT, "k"))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120)  # past SHORT, not LONG
    assert await limiter.delete_expired({"test.account": ACCOUNT}, now=later) == 0
    much_later = later + dt.timedelta(hours=1)
    assert await limiter.delete_expired({"test.account": ACCOUNT}, now=much_later) == 1


async def test_a_peeked_key_is_not_the_one_evicted() -> None:
    store = MemoryRateLimitStore(max_keys=16, clock=lambda: NOW)
    for _ in range(SHORT.max_requests):
        await store.record(await store.peek(ACCOUNT, "attacked"))
    for i in range(64):
        assert not (await store.peek(ACCOUNT, "attacked")).allowed  # refused, and in use
        await store.record(await store.peek(ACCOUNT, f"other{i}"))
    assert not (await store.peek(ACCOUNT, "attacked")).allowed
