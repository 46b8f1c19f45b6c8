"""Which stored times a host counts on: those a clock within the skew allowance of its own
could have written.

A TAT is written from the clock of the host that admitted the request, at most one window
(`max_requests` intervals: the most debt `gcra` admits) ahead of that clock. So a host whose
clock is right finds every TAT written by a host within the allowance
(`S3AUTH_REVOCATION_SKEW_SECONDS`) at most a window plus the allowance ahead of its own
clock. One further ahead was written by a clock further ahead (or under a longer window
than this host's): counted as it stands, it would refuse the key here for as long as that
clock is ahead, and an hour-fast host would lock every key it admits out of every other
host for an hour.

Such a time is set aside. A host counts the latest time it finds within bounds; when it
finds none, it counts a full debt as of its own clock (refused now, one more request every
interval from now), which the store writes back, on the version it read, so that it
stands from then on instead of moving with the clock. The time set aside is written back
with it, so that the host ahead, which finds it within its own bounds, goes on counting
what it admitted; it lasts until some host finds it within bounds and counts it, which
writes it over. So a host on a right clock waits at most the allowance and one interval
per unit of cost, and each clock more than the allowance apart from the others counts its
own admissions, at most one limit's worth each.
"""

from __future__ import annotations

from typing import NamedTuple

from .gcra import TOLERANCE
from .policy import RateLimit


class Held(NamedTuple):
    """What a host counts on of a stored state (`tat`), and what it keeps aside."""

    tat: float | None
    """The time to decide on: None when there is none (a full allowance)."""
    aside: float | None
    """The latest time too far ahead to count on, to keep in the state; None for none."""
    debt: bool
    """Whether `tat` is a full debt put in place of times too far ahead, to write back."""


def span(limit: RateLimit) -> float:
    """The most debt a TAT may hold on the clock that wrote it: `max_requests` intervals,
    the window as `gcra` keeps it."""
    return limit.max_requests * limit.emission_interval


def hold(tat: float | None, aside: float | None, now: float, limit: RateLimit, skew: float) -> Held:
    """The times `tat` and `aside` of a stored state as a host whose clock says `now`
    counts them, a clock within `skew` seconds of its own being right (see the module)."""
    window = span(limit)
    bound = now + window + skew + TOLERANCE
    times = [time for time in (tat, aside) if time is not None]
    counted = [time for time in times if time <= bound]
    beyond = max((time for time in times if time > bound), default=None)
    if counted:
        return Held(max(counted), beyond, False)
    if beyond is None:
        return Held(None, None, False)
    return Held(now + window, beyond, True)
