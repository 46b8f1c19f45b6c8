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

Such a time is set aside. A host counts the latest time it finds within bounds while that
is still owed (ahead of its clock); when it finds none, it counts a full debt as of its own
clock (refused now, one more request every interval from now), which the store writes back,
on the version it read, so that it stands from then on instead of moving with the clock.
The times set aside are written back with it, every one of them, so that each host further
ahead, which finds its own within its bounds, goes on counting what it admitted; each lasts
until some host finds it within bounds and counts it (or a later time), which writes it
over.

With a time too far ahead in the state, one within bounds that has passed is no sign of a
full allowance: the latest time this clock wrote may be gone, counted over by the host ahead
(which writes its own later time in its place) and followed by a time of a host behind,
long past by this clock. Then too a full debt is counted, which is at least whatever this
clock wrote, for that was at most a window ahead of it. So a host on a right clock waits at
most the allowance and one interval per unit of cost, and each clock more than the
allowance apart from the others counts its own admissions, at most one limit's worth each,
however many such clocks share the key.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from .gcra import TOLERANCE
from .policy import RateLimit

MAX_ASIDE = 8
"""Times set aside that a state keeps, the latest: one for each clock further ahead of the
writer's than the allowance and a window, which a fleet has few of."""

Aside = tuple[float, ...]
"""Times set aside, earliest first."""


class Held(NamedTuple):
    """What a host counts on of a stored state (`tat`), and what it keeps aside."""

    tat: float | None
    """The time to decide on: None when there is none (a full allowance)."""
    aside: Aside
    """The times too far ahead to count on, to keep in the state; () for none."""
    debt: bool
    """Whether `tat` is a full debt put in place of what was found, to write back."""


def span(limit: RateLimit) -> float:
    """The most debt a TAT may hold on the clock that wrote it: `max_requests` intervals,
    the window as `gcra` keeps it."""
    return limit.max_requests * limit.emission_interval


def aside_times(stored: float | Iterable[float] | None) -> Aside:
    """The times set aside of a stored state: none, one (as states held it before there
    could be several) or several."""
    if stored is None:
        return ()
    if isinstance(stored, float | int):
        return (float(stored),)
    return tuple(stored)


def hold(
    tat: float | None,
    aside: float | Iterable[float] | None,
    now: float,
    limit: RateLimit,
    skew: float,
) -> Held:
    """The times `tat` and `aside` of a stored state as a host whose clock says `now`
    counts them, a clock within `skew` seconds of its own being right (see the module)."""
    window = span(limit)
    bound = now + window + skew + TOLERANCE
    times = aside_times(aside) if tat is None else (tat, *aside_times(aside))
    latest = max((time for time in times if time <= bound), default=None)
    beyond = tuple(sorted({time for time in times if time > bound}))[-MAX_ASIDE:]
    if not beyond:
        return Held(latest, (), False)
    if latest is not None and latest > now:
        return Held(latest, beyond, False)
    return Held(now + window, beyond, True)
