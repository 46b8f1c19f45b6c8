"""The in-memory store's table: a check touches one key, room is made first from keys
whose allowance is full again, which changes no answer, and a full allowance is answered
without the algorithm, as the algorithm would."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3auth_asgi.errors import ConfigurationError
from s3auth_asgi.ratelimit import FailureBudget, MemoryRateLimitStore, RateLimit, memory
from s3auth_asgi.ratelimit.gcra import Step, gcra, gcra_step
from s3auth_asgi.ratelimit.policy import MAX_RATE


@pytest.mark.parametrize("max_keys", [0, -1, True, 1.0, "100", 10_000_001, 10**12])
def test_max_keys_is_a_whole_number_up_to_ten_million(max_keys: object) -> None:
    # 10**12 keys would be taken, and grow the table unbounded in practice: past 100 TB.
    expected = (
        r"MemoryRateLimitStore max_keys must be a whole number from 1 to 10000000 "
        rf"\(10 million: about 1.3 GB a limit\), not {re.escape(repr(max_keys))}"
    )
    with pytest.raises(ConfigurationError, match=expected):
        MemoryRateLimitStore(max_keys=max_keys)  # type: ignore[arg-type]


@pytest.mark.parametrize("max_keys", [1, 10_000_000])
def test_max_keys_takes_its_bounds(max_keys: int) -> None:
    assert MemoryRateLimitStore(max_keys=max_keys).max_keys == max_keys


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_spent_keys_make_room_before_any_key_in_debt() -> None:
    clock = Clock()
    store = MemoryRateLimitStore(max_keys=100, clock=clock)
    limit = RateLimit(max_requests=2, window_seconds=60)
    assert store.check("api", "early", limit, 2).allowed  # its whole burst: in debt 60 s
    for i in range(99):
        assert store.check("api", f"once-{i}", limit, 1).allowed  # in debt 30 s
    clock.now = 31.0  # every one-off's allowance is full again; early's is not
    for i in range(50):
        assert store.check("api", f"new-{i}", limit, 1).allowed
    # `early` was seen first of all, yet it is the one-offs that made room.
    assert len(store) == 51
    assert not store.check("api", "early", limit, 2).allowed


@pytest.mark.anyio
async def test_spent_budgets_make_room_before_any_budget_in_debt() -> None:
    clock = Clock()
    store = MemoryRateLimitStore(max_keys=16, clock=clock)
    budget = FailureBudget(
        "login.account",
        {"short": RateLimit(5, 900), "daily": RateLimit(50, 86400)},
    )
    for _ in range(50):  # the victim's daily budget spent
        reading = await store.peek(budget, "account:victim")
        assert reading.allowed
        await store.record(reading)
        clock.now += 180
    spent = await store.peek(budget, "account:victim")
    assert spent.decisions[1].remaining == 5  # of 50
    # One failure on another name at a time, each state spent before the next comes
    # (a failure's debt on the daily limit is 1728 s): never more than one is live.
    for i in range(17):
        await store.record(await store.peek(budget, f"account:n{i}"))
        clock.now += 1730
    after = await store.peek(budget, "account:victim")
    assert after.tats == spent.tats  # kept, not handed a fresh budget
    assert after.decisions[1].remaining == 22  # what 17 × 1730 s gave back, not all 50
    assert len(store) == 3  # the victim and the two failures since the spent ones went


def test_without_spent_keys_the_front_goes_and_a_refusal_moves_a_key_back() -> None:
    store = MemoryRateLimitStore(max_keys=32, clock=lambda: 0.0)
    limit = RateLimit(max_requests=1, window_seconds=60)
    for i in range(32):
        assert store.check("api", f"k{i}", limit, 1).allowed
    assert not store.check("api", "k0", limit, 1).allowed  # refused: to the back
    assert store.check("api", "new", limit, 1).allowed  # full: the front two (32 / 16) go
    assert len(store) == 31
    assert not store.check("api", "k0", limit, 1).allowed  # kept
    assert not store.check("api", "k3", limit, 1).allowed  # kept
    assert store.check("api", "k1", limit, 1).allowed  # forgotten: starts afresh


def test_an_admission_overwrites_in_place() -> None:
    store = MemoryRateLimitStore(clock=lambda: 0.0)
    limit = RateLimit(max_requests=5, window_seconds=60)
    for key in ("a", "b", "c"):
        store.check("api", key, limit, 1)
    store.check("api", "a", limit, 1)
    assert list(store._tats["api"]) == ["a", "b", "c"]
    assert store._tats["api"]["a"] == 24.0  # two intervals of 12 s


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(0, 40), st.floats(0, 4), st.integers(1, 3)), max_size=200),
    most=st.integers(1, 4),
)
def test_making_room_from_spent_keys_changes_no_answer(
    steps: list[tuple[int, float, int]], most: int
) -> None:
    """Against an unbounded table run through `gcra` itself: the bounded store answers
    alike until the first time it had to drop a key still in debt (the front)."""
    clock = Clock()
    store = MemoryRateLimitStore(max_keys=16, clock=clock)
    limit = RateLimit(max_requests=most, window_seconds=1.0)
    forced: list[int] = []
    drop_front = store._drop_front

    def recording_drop_front(states: dict[str, object], count: int) -> None:
        forced.append(count)
        drop_front(states, count)

    store._drop_front = recording_drop_front  # type: ignore[method-assign]
    reference: dict[str, float] = {}
    for client, advance, cost in steps:
        clock.now += advance
        key = f"c{client}"
        cost = min(cost, most)
        new_tat, expected = gcra(reference.get(key), clock.now, limit, cost)
        reference[key] = new_tat
        answer = store.check("api", key, limit, cost)
        if forced:
            return
        assert answer == expected
        assert len(store) <= 16


@settings(max_examples=150, deadline=None)
@given(
    origin=st.sampled_from([0.0, 12_345.678, 1_780_000_000.0]),
    steps=st.lists(st.tuples(st.integers(0, 5), st.floats(0, 2), st.integers(1, 3)), max_size=80),
    limit=st.sampled_from(
        [
            RateLimit(max_requests=3, window_seconds=1.0),
            # Emission intervals near the shortest a limit takes, the closest to the
            # tolerance: a small burst, and the fastest rate.
            RateLimit(max_requests=3, window_seconds=3.5 / MAX_RATE),
            RateLimit(max_requests=MAX_RATE, window_seconds=1.0),
        ]
    ),
)
def test_an_admission_of_cost_1_skips_the_call_and_answers_as_the_algorithm(
    origin: float, steps: list[tuple[int, float, int]], limit: RateLimit
) -> None:
    """A check of cost 1 that is admitted (allowance full, or in debt) is answered without
    calling the algorithm, exactly as the algorithm answers; every other check calls it."""
    clock = Clock()
    clock.now = origin
    scale = limit.window_seconds
    ran: list[str] = []

    def counted_step(tat: float | None, now: float, *rest: float) -> Step:
        ran.append("step")
        return gcra_step(tat, now, *rest)  # type: ignore[arg-type]

    store = MemoryRateLimitStore(clock=clock)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(memory, "gcra_step", counted_step)
        reference: dict[str, float] = {}
        for client, advance, cost in steps:
            clock.now += advance * scale
            key = f"c{client}"
            tat = reference.get(key)
            new_tat, expected = gcra(tat, clock.now, limit, cost)
            reference[key] = new_tat
            before = len(ran)
            assert store.check("api", key, limit, cost) == expected
            assert len(ran) - before == (0 if cost == 1 and expected.allowed else 1)
            assert store._tats["api"][key] == new_tat


@pytest.mark.anyio
async def test_a_cost_above_the_limit_is_a_configuration_error_not_a_crash() -> None:
    store = MemoryRateLimitStore()
    limit = RateLimit(max_requests=5, window_seconds=60)
    for cost in (6, -1):
        with pytest.raises(ConfigurationError, match=f"cost must be between 0 and 5, got {cost}"):
            await store.acquire("api", "new", limit, cost)
        with pytest.raises(ConfigurationError, match="cost must be between 0 and 5"):
            store.check("api", "new", limit, cost)
    assert len(store) == 0
    assert (await store.acquire("api", "new", limit, 5)).allowed
