"""GCRA, through the public limiter with an injected clock: the admission bound, exact
retry_after, independent keys, and what `remaining`/`reset_after` promise."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3auth_asgi.errors import ConfigurationError
from s3auth_asgi.ratelimit import (
    MemoryRateLimitStore,
    RateLimit,
    RateLimiter,
    gcra,
    parse_rate_limits,
)
from s3auth_asgi.ratelimit.gcra import TOLERANCE, full_allowance, gcra_step

pytestmark = pytest.mark.anyio


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def scope_from(ip: str) -> dict[str, object]:
    return {"type": "http", "method": "GET", "path": "/", "headers": [], "client": (ip, 5000)}


def make_limiter(limit: RateLimit, clock: FakeClock) -> RateLimiter:
    return RateLimiter(limits={"x": limit}, store=MemoryRateLimitStore(clock=clock))


limits_strategy = st.builds(
    RateLimit,
    max_requests=st.integers(1, 8),
    window_seconds=st.sampled_from([0.5, 1.0, 7.3, 60.0]),
)
# Clock origins: a fresh monotonic clock, and the wall clock (where rounding is coarsest).
origins = st.sampled_from([0.0, 12_345.678, 1_780_000_000.0])
steps_strategy = st.lists(
    st.tuples(
        st.floats(0, 3, allow_nan=False),  # time advance, in windows
        st.integers(0, 2),  # which client
        st.integers(1, 3),  # cost
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(limit=limits_strategy, origin=origins, steps=steps_strategy)
async def test_admissions_never_exceed_burst_plus_refill(
    limit: RateLimit, origin: float, steps: list[tuple[float, int, int]]
) -> None:
    """Over any span d, one key gets at most max_requests + d/T admitted (T = window/max):
    never more than the limit at once, and no faster than the limit per window after that."""
    clock = FakeClock(origin)
    limiter = make_limiter(limit, clock)
    admitted: dict[int, list[tuple[float, int]]] = {0: [], 1: [], 2: []}
    for advance, client, cost in steps:
        clock.now += advance * limit.window_seconds
        cost = min(cost, limit.max_requests)
        is_limited, info = await limiter.is_rate_limited(
            scope_from(f"192.0.2.{client}"), "x", cost=cost
        )
        assert is_limited is not info.allowed
        if info.allowed:
            admitted[client].append((clock.now, cost))
    interval = limit.emission_interval
    for history in admitted.values():
        for i in range(len(history)):
            total = 0
            for j in range(i, len(history)):
                total += history[j][1]
                span = history[j][0] - history[i][0]
                assert total <= limit.max_requests + (span + 2 * TOLERANCE) / interval


@settings(max_examples=150, deadline=None)
@given(limit=limits_strategy, origin=origins, steps=steps_strategy)
async def test_retry_after_is_exact(
    limit: RateLimit, origin: float, steps: list[tuple[float, int, int]]
) -> None:
    """A refused request passes once retry_after has passed, and not noticeably sooner."""
    clock = FakeClock(origin)
    limiter = make_limiter(limit, clock)
    for advance, client, cost in steps:
        clock.now += advance * limit.window_seconds / 4
        cost = min(cost, limit.max_requests)
        scope = scope_from(f"192.0.2.{client}")
        is_limited, info = await limiter.is_rate_limited(scope, "x", cost=cost)
        if not is_limited:
            assert info.retry_after == 0
            continue
        assert info.retry_after > 0
        refused_at = clock.now
        early = 1e-3 * limit.window_seconds
        if info.retry_after > early:
            clock.now = refused_at + info.retry_after - early
            still_limited, _ = await limiter.is_rate_limited(scope, "x", cost=cost)
            assert still_limited
        clock.now = refused_at + info.retry_after
        is_limited, _ = await limiter.is_rate_limited(scope, "x", cost=cost)
        assert not is_limited


@settings(max_examples=100, deadline=None)
@given(
    limit=limits_strategy,
    steps=steps_strategy,
    noise=st.lists(st.integers(1, 3), min_size=60, max_size=60),
)
async def test_distinct_keys_are_independent(
    limit: RateLimit, steps: list[tuple[float, int, int]], noise: list[int]
) -> None:
    """Client A gets the same answers whether or not other clients hammer in between."""

    async def run(with_noise: bool) -> list[tuple[bool, int, float]]:
        clock = FakeClock()
        limiter = make_limiter(limit, clock)
        answers = []
        for (advance, _, cost), others in zip(steps, noise, strict=False):
            clock.now += advance * limit.window_seconds / 3
            if with_noise:
                for other in range(others):
                    await limiter.is_rate_limited(scope_from(f"198.51.100.{other}"), "x")
            _, info = await limiter.is_rate_limited(
                scope_from("192.0.2.1"), "x", cost=min(cost, limit.max_requests)
            )
            answers.append((info.allowed, info.remaining, info.retry_after))
        return answers

    assert await run(with_noise=True) == await run(with_noise=False)


@settings(max_examples=100, deadline=None)
@given(limit=limits_strategy, origin=origins, used=st.integers(0, 8), wait=st.floats(0, 2))
async def test_remaining_and_reset_after_are_what_happens(
    limit: RateLimit, origin: float, used: int, wait: float
) -> None:
    """`remaining` more requests pass at once and the next one does not; after
    `reset_after`, one more passes."""
    clock = FakeClock(origin)
    limiter = make_limiter(limit, clock)
    client = scope_from("192.0.2.7")
    for _ in range(min(used, limit.max_requests)):
        await limiter.is_rate_limited(client, "x")
    clock.now += wait * limit.window_seconds
    _, info = await limiter.is_rate_limited(client, "x", cost=0)  # look without counting
    assert info.allowed
    for _ in range(info.remaining):
        is_limited, _ = await limiter.is_rate_limited(client, "x")
        assert not is_limited
    is_limited, refused = await limiter.is_rate_limited(client, "x")
    assert is_limited
    assert refused.remaining == 0
    assert refused.reset_after == pytest.approx(refused.retry_after, abs=1e-6)
    clock.now += refused.reset_after
    is_limited, _ = await limiter.is_rate_limited(client, "x")
    assert not is_limited


async def test_login_limit_numbers() -> None:
    """5/60: five at once, the sixth waits exactly 12 s (one emission interval)."""
    clock = FakeClock()
    limiter = make_limiter(RateLimit(max_requests=5, window_seconds=60), clock)
    client = scope_from("203.0.113.5")
    answers = [await limiter.is_rate_limited(client, "x") for _ in range(6)]
    assert [limited for limited, _ in answers] == [False] * 5 + [True]
    assert [info.remaining for _, info in answers] == [4, 3, 2, 1, 0, 0]
    # Each admitted request gives one unit back 12 s later.
    assert [info.reset_after for _, info in answers] == [pytest.approx(12.0)] * 6
    assert answers[5][1].retry_after == pytest.approx(12.0)
    clock.now += 11.9
    assert (await limiter.is_rate_limited(client, "x"))[0] is True
    clock.now += 0.1
    assert (await limiter.is_rate_limited(client, "x"))[0] is False
    # A full window of quiet restores the whole allowance.
    clock.now += 60
    _, info = await limiter.is_rate_limited(client, "x", cost=0)
    assert (info.remaining, info.reset_after) == (5, 0.0)


async def test_no_double_burst_at_a_window_edge() -> None:
    """A fixed window admits 2N around its edge; GCRA admits N, then one per interval."""
    clock = FakeClock()
    limiter = make_limiter(RateLimit(max_requests=10, window_seconds=60), clock)
    client = scope_from("203.0.113.5")
    clock.now = 59.9  # just before a fixed window would end
    first = [not (await limiter.is_rate_limited(client, "x"))[0] for _ in range(10)]
    clock.now = 60.1  # just after it would have reset
    second = [not (await limiter.is_rate_limited(client, "x"))[0] for _ in range(10)]
    assert sum(first) == 10
    assert sum(second) == 0


async def test_cost_counts_as_several_requests() -> None:
    clock = FakeClock()
    limiter = make_limiter(RateLimit(max_requests=10, window_seconds=10), clock)
    client = scope_from("203.0.113.5")
    _, info = await limiter.is_rate_limited(client, "x", cost=7)
    assert info.allowed and info.remaining == 3
    is_limited, info = await limiter.is_rate_limited(client, "x", cost=4)
    assert is_limited and info.retry_after == pytest.approx(1.0)
    with pytest.raises(ValueError, match="cost"):
        await limiter.is_rate_limited(client, "x", cost=11)
    with pytest.raises(KeyError, match="nope"):
        await limiter.is_rate_limited(client, "nope")


def test_gcra_is_pure() -> None:
    limit = RateLimit(max_requests=2, window_seconds=10)
    state, decision = gcra(None, 100.0, limit)
    assert (state, decision.allowed, decision.remaining) == (105.0, True, 1)
    again_state, again = gcra(None, 100.0, limit)
    assert (again_state, again) == (state, decision)
    state, decision = gcra(state, 100.0, limit)
    assert (state, decision.allowed, decision.remaining) == (110.0, True, 0)
    kept, refused = gcra(state, 101.0, limit)
    assert (kept, refused.allowed, refused.retry_after) == (110.0, False, 4.0)


@settings(max_examples=300, deadline=None)
@given(
    most=st.integers(1, 10_000),
    window=st.floats(1, 86_400 * 7, allow_nan=False),
    cost_share=st.floats(0, 1),
    now=st.floats(0, 4e9, allow_nan=False),
    behind=st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False)),
)
def test_a_full_allowance_is_answered_alike_at_every_now(
    most: int, window: float, cost_share: float, now: float, behind: float | None
) -> None:
    """Bit for bit: what the in-memory store answers from `full_allowance` without running
    the algorithm is what the algorithm answers, for a key never seen or whose TAT passed."""
    limit = RateLimit(max_requests=most, window_seconds=window)
    interval = limit.emission_interval
    cost = max(1, round(cost_share * most))
    tat = None if behind is None else now - behind
    answer = gcra_step(tat, now, interval, most, cost)
    assert answer == (now + cost * interval, *full_allowance(interval, most, cost))
    assert answer[1] is True
    # The tolerance is never worth a request: an interval is at least 100 µs.
    assert answer[2] == most - cost


def test_parse_rate_limits() -> None:
    limits = parse_rate_limits(" login=5/60, api = 100 / 60 ,burst=3/0.5")
    assert limits == {
        "login": RateLimit(5, 60),
        "api": RateLimit(100, 60),
        "burst": RateLimit(3, 0.5),
    }
    assert parse_rate_limits("") == {}
    for bad in ("login=5", "login=0/60", "login=5/0", "=5/60", "a b=1/1", "x=1/1,x=2/2", "5/60"):
        with pytest.raises(ConfigurationError, match="S3AUTH_RATE_LIMITS"):
            parse_rate_limits(bad)


def test_rate_limit_validates() -> None:
    with pytest.raises(ConfigurationError):
        RateLimit(max_requests=0, window_seconds=60)
    with pytest.raises(ConfigurationError):
        RateLimit(max_requests=5, window_seconds=-1)
    with pytest.raises(ConfigurationError):
        RateLimit(max_requests=5, window_seconds=float("inf"))
    with pytest.raises(ConfigurationError):
        RateLimit(max_requests=5, window_seconds=60, key="email")  # type: ignore[arg-type]
    assert RateLimit(max_requests=4, window_seconds=60).emission_interval == 15.0
