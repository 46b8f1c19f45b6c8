"""A refusal remembered by the object-store limiter costs no request, and never refuses
what the store would admit (stored state only moves later)."""

from __future__ import annotations

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3auth_asgi.ratelimit import FailureBudget, ObjectStoreRateLimitStore, RateLimit
from s3auth_asgi.storage import ObjectStore

LIMIT = RateLimit(max_requests=3, window_seconds=30)
BUDGET = FailureBudget("login.account", {"login_account": LIMIT})


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_remembered_refusal_costs_nothing_until_the_state_would_admit() -> None:
    async def scenario() -> None:
        clock, store = Clock(), ObjectStore.from_url("memory://")
        limiter = ObjectStoreRateLimitStore(store, clock=clock)
        for _ in range(3):
            assert (await limiter.acquire("api", "k", LIMIT, 1)).allowed
        store.reset_counts()
        first = await limiter.acquire("api", "k", LIMIT, 1)
        assert not first.allowed and dict(store.requests) == {"get": 1}
        store.reset_counts()
        again = await limiter.acquire("api", "k", LIMIT, 1)
        assert not again.allowed and sum(store.requests.values()) == 0
        assert again.retry_after == first.retry_after  # the clock has not moved
        clock.now += first.retry_after
        assert (await limiter.acquire("api", "k", LIMIT, 1)).allowed
        assert dict(store.requests) == {"get": 1, "put": 1}

    anyio.run(scenario)


@settings(max_examples=80, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 1), st.booleans(), st.floats(0, 15)), min_size=1, max_size=25
    )
)
def test_two_processes_never_refuse_from_memory_what_the_store_admits(
    steps: list[tuple[int, bool, float]],
) -> None:
    """Each step: process 0 or 1 peeks the budget (and records a failure when admitted, or
    when the flag says the password was wrong), then time passes. A remembered refusal is
    compared with a fresh reader that has no memory."""

    async def scenario() -> None:
        clock, store = Clock(), ObjectStore.from_url("memory://")
        processes = [ObjectStoreRateLimitStore(store, clock=clock) for _ in range(2)]
        for who, wrong, wait in steps:
            reading = await processes[who].peek(BUDGET, "alice")
            truth = await ObjectStoreRateLimitStore(store, clock=clock).peek(BUDGET, "alice")
            assert reading.allowed == truth.allowed
            if reading.allowed and wrong:
                await processes[who].record(reading)
            clock.now += wait

    anyio.run(scenario)


@pytest.mark.anyio
async def test_refusals_cost_no_request_until_the_retry_time_on_every_store(
    store_url: str,
) -> None:
    """memory://, file:// and S3 alike: an admission is a GET and a PUT, the first refusal one
    GET, every refusal after it none, until the retry time it gave has passed."""
    clock, store = Clock(), ObjectStore.from_url(store_url)
    limiter = ObjectStoreRateLimitStore(store, clock=clock)
    for _ in range(LIMIT.max_requests):
        store.reset_counts()
        assert (await limiter.acquire("api", "k", LIMIT, 1)).allowed
        assert sum(store.requests.values()) <= 2
    store.reset_counts()
    first = await limiter.acquire("api", "k", LIMIT, 1)
    assert not first.allowed and dict(store.requests) == {"get": 1}
    for step in range(20):
        clock.now += first.retry_after / 21
        store.reset_counts()
        assert not (await limiter.acquire("api", "k", LIMIT, 1)).allowed, step
        assert sum(store.requests.values()) == 0
    clock.now += first.retry_after  # well past it
    store.reset_counts()
    assert (await limiter.acquire("api", "k", LIMIT, 1)).allowed
    assert sum(store.requests.values()) <= 2


@settings(max_examples=80, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 3), st.floats(0, 12)), min_size=1, max_size=30
    )
)
def test_a_refusal_from_memory_is_the_refusal_the_store_gives(
    steps: list[tuple[int, int, float]],
) -> None:
    """Three processes share one store and take turns, each remembering its own refusals.
    Whenever one answers from memory (no request), a reader with no memory, asked at the
    same moment, refuses too, with the same retry time or a later one: the remembered state
    is a lower bound of the stored one, since stored state only moves later."""

    async def scenario() -> None:
        clock, store = Clock(), ObjectStore.from_url("memory://")
        processes = [ObjectStoreRateLimitStore(store, clock=clock) for _ in range(3)]
        for who, cost, wait in steps:
            store.reset_counts()
            decision = await processes[who].acquire("api", "k", LIMIT, cost)
            from_memory = sum(store.requests.values()) == 0
            if from_memory:
                assert not decision.allowed
                truth = await ObjectStoreRateLimitStore(store, clock=clock).acquire(
                    "api", "k", LIMIT, cost
                )
                assert not truth.allowed
                assert truth.retry_after >= decision.retry_after
            clock.now += wait

    anyio.run(scenario)
