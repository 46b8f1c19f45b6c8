"""A refusal remembered by the object-store limiter costs no request, and never refuses
what the store would admit (stored state only moves later)."""

from __future__ import annotations

import anyio
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
