"""What a RateLimit may be: numbers the algorithm keeps exactly, at every clock it runs on.

A limit whose numbers are not finite, not positive, or past what GCRA's arithmetic holds (a
window of 1e300 s, 10**30 requests a minute, an emission interval within the comparisons'
tolerance) is refused when it is made, by hand or from S3AUTH_RATE_LIMITS alike. Whatever is
taken admits exactly its burst and then tells the client the emission interval to wait, on a
monotonic clock near 0 and on the wall clock, where a timestamp's rounding (a few 1e-7 s)
used to add up over a burst and refuse its last request."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from s3auth_asgi.auth_limits import DEFAULT_AUTH_LIMITS
from s3auth_asgi.errors import ConfigurationError
from s3auth_asgi.ratelimit import RateLimit, gcra, parse_rate_limits
from s3auth_asgi.ratelimit.gcra import TOLERANCE

YEAR = 365 * 86400
SHORTEST_INTERVAL = 1e-4
"""The documented bounds: a window of at most a year, at most one request every 100 µs."""
WINDOW_RANGE = "RateLimit.window_seconds must be a number from 0.0001 to 31536000 (a year)"


@pytest.mark.parametrize(
    ("max_requests", "window_seconds", "says"),
    [
        (5, math.nan, WINDOW_RANGE + ", not nan"),
        (5, math.inf, WINDOW_RANGE + ", not inf"),
        (5, -math.inf, WINDOW_RANGE + ", not -inf"),
        (5, 0, WINDOW_RANGE + ", not 0"),
        (5, -1, WINDOW_RANGE + ", not -1"),
        (5, 1e300, WINDOW_RANGE + ", not 1e+300"),
        (5, YEAR + 1, WINDOW_RANGE + ", not 31536001"),
        (5, 5e-5, WINDOW_RANGE + ", not 5e-05"),
        (5, "60", WINDOW_RANGE + ", not '60'"),
        (5, True, WINDOW_RANGE + ", not True"),
        (0, 60, "max_requests must be a whole number from 1 to 600000 (10,000 a second), not 0"),
        (-1, 60, "from 1 to 600000 (10,000 a second), not -1"),
        (5.0, 60, "max_requests must be a whole number from 1 to 600000"),
        (True, 60, "max_requests must be a whole number from 1 to 600000"),
        (10**30, 60, "from 1 to 600000 (10,000 a second), not " + str(10**30)),
        (10**9, 60, "from 1 to 600000 (10,000 a second), not 1000000000"),
        (10_001, 1, "from 1 to 10000 (10,000 a second), not 10001"),
        (2, 1e-4, "from 1 to 1 (10,000 a second), not 2"),
    ],
)
def test_a_limit_the_algorithm_cannot_keep_is_refused(
    max_requests: Any, window_seconds: Any, says: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        RateLimit(max_requests=max_requests, window_seconds=window_seconds)
    assert says in str(info.value)


def test_the_environment_is_held_to_the_same_bounds() -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_rate_limits("login=5/60,api=1000000000/60")
    assert str(info.value) == (
        "S3AUTH_RATE_LIMITS: api: RateLimit.max_requests must be a whole number from 1 to "
        "600000 (10,000 a second), not 1000000000"
    )
    with pytest.raises(ConfigurationError, match=r"S3AUTH_RATE_LIMITS: day: .*a year"):
        parse_rate_limits("day=5/99999999")


@pytest.mark.parametrize(
    ("max_requests", "window_seconds"),
    [(1, YEAR), (10_000, 1), (1, SHORTEST_INTERVAL), (YEAR * 10_000, YEAR), (5, 60)],
)
def test_a_limit_at_the_bounds_is_taken(max_requests: int, window_seconds: float) -> None:
    limit = RateLimit(max_requests=max_requests, window_seconds=window_seconds)
    assert limit.emission_interval <= window_seconds / max_requests
    assert limit.emission_interval > window_seconds / max_requests * (1 - 0.01)


def test_an_interval_a_timestamp_holds_exactly_is_kept_as_it_is() -> None:
    """Every default limit's interval is a binary fraction: nothing about it changes."""
    assert RateLimit(5, 60).emission_interval == 12.0
    assert RateLimit(120, 60).emission_interval == 0.5
    for limit in DEFAULT_AUTH_LIMITS.values():
        assert limit.emission_interval == limit.window_seconds / limit.max_requests
    assert RateLimit(100, 60).emission_interval == math.floor(0.6 * 2**20) / 2**20


@st.composite
def accepted_limits(draw: st.DrawFn) -> RateLimit:
    """Any window, and any count up to the most it takes: all of them taken."""
    window = draw(
        st.one_of(
            st.floats(SHORTEST_INTERVAL, YEAR),
            st.sampled_from([SHORTEST_INTERVAL, 0.5, 7.3, 60.0, 61.7, 3600.3, 86_400.0, YEAR]),
        )
    )
    most = math.floor(window * 10_000)
    count = draw(st.one_of(st.integers(1, min(most, 50)), st.integers(1, most), st.just(most)))
    return RateLimit(max_requests=count, window_seconds=window)


CLOCKS = st.one_of(
    st.floats(0, 2.0**32),
    st.sampled_from([0.0, 12_345.678, 1_780_000_000.0, 2.0**31 - 0.25, 4_200_000_000.0]),
)
"""A monotonic clock from its start, and the wall clock until 2106."""


@settings(max_examples=400, deadline=None)
@given(limit=accepted_limits(), now=CLOCKS, singles=st.integers(1, 64))
@example(limit=RateLimit(10, 0.5), now=3_171_040_375.411552, singles=64)
@example(limit=RateLimit(10_000, 86_400), now=1_781_550_196.9933295, singles=64)
@example(limit=RateLimit(1000, 61.7), now=1_955_217_009.1963546, singles=64)
def test_any_limit_taken_admits_exactly_its_burst(
    limit: RateLimit, now: float, singles: int
) -> None:
    """From a full allowance: `max_requests` pass at once (the last `singles` of them one at
    a time, each rounding a timestamp), not one more, and the one refused is told to wait
    the emission interval."""
    singles = min(singles, limit.max_requests)
    tat = None
    if limit.max_requests > singles:
        tat, decision = gcra(tat, now, limit, limit.max_requests - singles)
        assert decision.allowed and decision.remaining == singles
    for left in reversed(range(singles)):
        tat, decision = gcra(tat, now, limit)
        assert decision.allowed, (left, decision)
        assert decision.remaining == left
    _, refused = gcra(tat, now, limit)
    assert not refused.allowed
    assert abs(refused.retry_after - limit.emission_interval) <= TOLERANCE
