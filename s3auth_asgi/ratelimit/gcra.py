"""The Generic Cell Rate Algorithm, as a pure function of (state, now, limit, cost).

The whole state of a key is one number, its theoretical arrival time (TAT): the moment the
key's allowance would be fully restored if no further request arrived. A request of cost `c`
moves it `c` emission intervals (window / max_requests, `RateLimit.emission_interval`) later,
and is admitted only if that leaves the TAT at most one window (`max_requests` intervals)
ahead of now. So a client can spend `max_requests` at once and then gets one more every
emission interval: no counter resets at a window edge, hence no double burst there, and the
wait for the next admission is known exactly. The answer depends on the time only through
the key's debt, how far its TAT is ahead of now: every key whose TAT has passed, like a key
never seen, gets the same answer (`full_allowance`).

Two questions can be put to a state. `gcra` asks "admit this request, and count it?" and
returns the state to keep. `peek` asks "would it be admitted?" and returns no state: it is
for limits on failures (see `budget`), whose state is read before a password is checked and
advanced (by `gcra`) only when the password turns out wrong. A TAT only ever moves later,
by someone's admission, so a peek that refuses stays right until its retry_after; one that
admits may be overtaken by a concurrent admission, which the later `gcra` then sees.

Where the state lives (a dict, an object store, Redis) is the stores' business.
"""

from __future__ import annotations

from math import trunc

import msgspec

from .policy import RateLimit

TOLERANCE = 1e-6
"""Seconds of slack in comparisons. Wall-clock timestamps (~1.8e9 s) carry rounding errors of
a few 1e-7 s; without slack, a client that waits exactly `retry_after` could be refused."""


class Decision(msgspec.Struct, frozen=True, gc=False):
    """The outcome of one check of one key against one limit."""

    allowed: bool
    remaining: int
    """How many more requests of cost 1 would be admitted right now."""
    reset_after: float
    """Seconds until one more unit of quota is available (0 when the allowance is full)."""
    retry_after: float
    """Seconds until this request, at the same cost, would be admitted (0 when it was)."""


Step = tuple[float, bool, int, float, float]
"""(state to keep, allowed, remaining, reset_after, retry_after): a Decision's fields as a
plain tuple, for the in-memory store, whose caller builds a RateLimitInfo from them and
would only throw a Decision away."""


def gcra_step(tat: float | None, now: float, interval: float, max_requests: int, cost: int) -> Step:
    """The algorithm itself: `gcra` with the limit taken apart (`interval` its emission
    interval), for callers that check one limit many times and take the limit apart once."""
    # The window as the limit keeps it: whole intervals, each a whole number of grains
    # (`policy.INTERVAL_GRAIN`), so that it and every TAT are exact sums.
    window = max_requests * interval
    horizon = window + TOLERANCE
    # The answer depends on `now` only through `debt`, how far the TAT is ahead of it: a
    # full allowance (debt 0) gets the same answer at every `now` (see `full_allowance`).
    if tat is not None and tat > now:
        start, debt = tat, tat - now
    else:
        start, debt = now, 0.0
    spend = cost * interval
    ahead = debt + spend
    if ahead <= horizon:
        # Admitted. `room` is how many intervals of allowance are left, fractions included.
        room = (horizon - ahead) / interval
        # `trunc` is `int` for a float, at less than half the cost of the type call.
        remaining = trunc(room)
        new_tat = start + spend
        if remaining >= max_requests:
            return new_tat, True, max_requests, 0.0, 0.0
        return new_tat, True, remaining, (remaining + 1 - room) * interval + TOLERANCE, 0.0
    # Refused: the state stays as it was, and the wait is to when the TAT fits the window.
    retry_after = ahead - window
    if cost == 1:
        # Less than one unit is left, so none remains, and the next unit is this request's:
        # reset_after is retry_after (the general formula below, simplified).
        return start, False, 0, retry_after, retry_after
    room = (horizon - debt) / interval
    # Negative room only when the clock went back (or another host's clock is ahead of ours).
    remaining = trunc(room) if room > 0 else 0
    reset_after = (remaining + 1 - room) * interval + TOLERANCE
    return start, False, remaining, reset_after, retry_after


FullAllowance = tuple[bool, int, float, float]
"""(allowed, remaining, reset_after, retry_after): the answer `full_allowance` gives."""


def full_allowance(interval: float, max_requests: int, cost: int) -> FullAllowance:
    """What `gcra_step` answers, but for the state, for a key whose allowance is full (never
    seen, or its TAT passed): the same at every `now`, and the state it keeps is
    `now + cost * interval`. Most checks find a full allowance (a client asking less often
    than once per emission interval always does), so a caller that checks one limit many
    times can take this answer once and skip the algorithm on them."""
    _, allowed, remaining, reset_after, retry_after = gcra_step(
        None, 0.0, interval, max_requests, cost
    )
    return allowed, remaining, reset_after, retry_after


def gcra(tat: float | None, now: float, limit: RateLimit, cost: int = 1) -> tuple[float, Decision]:
    """Check a request of `cost` at `now` against the key's state `tat` (None: never seen).

    Returns the state to keep and the decision. A refused request leaves the state as it was
    (the returned value is equivalent), so a client hammering while refused is not pushed
    further out: the wait it is told is the wait it gets.
    """
    new_tat, allowed, remaining, reset_after, retry_after = gcra_step(
        tat, now, limit.emission_interval, limit.max_requests, cost
    )
    return new_tat, Decision(allowed, remaining, reset_after, retry_after)


def peek(tat: float | None, now: float, limit: RateLimit, cost: int = 1) -> Decision:
    """What `gcra` would decide for a request of `cost` at `now`, without counting it.

    `allowed` and `retry_after` are exactly gcra's; when admitted, `remaining` and
    `reset_after` describe the allowance as it stands (this request not counted), so
    `remaining` is gcra's plus `cost`. Pure: the state is the caller's to keep or not.
    """
    _, decision = gcra(tat, now, limit, cost)
    if not decision.allowed:
        return decision
    # A request of cost 0 is always admitted and moves nothing: its decision is the standing,
    # but for `remaining`, taken from gcra's own count so that the two can never disagree
    # by a rounding error at the edge of the tolerance.
    standing = gcra(tat, now, limit, 0)[1]
    remaining = min(decision.remaining + cost, limit.max_requests)
    return Decision(True, remaining, standing.reset_after, 0.0)
