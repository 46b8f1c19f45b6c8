"""What a listing's Last-Modified proves: when an object that lives a lifetime from its
last write has lapsed on every host, so that the sweep (`cleanup_expired_tokens`) may
delete it from the listing alone.

Hosts judge such an object by a time written in it by the clock of the host that wrote it
(a session's last refresh, a mailed token's issue) plus the lifetime; the sweep judges by
the store's Last-Modified and its own clock. Two offsets lie between the two, and the
clock-skew allowance (`S3AUTH_REVOCATION_SKEW_SECONDS`), how far apart any two clocks may
be, the store's among them, bounds each one:

- the writer's clock against the store's: the time written in the object is at most the
  allowance after its Last-Modified. The writer rounds its time down to the second and
  reads its clock before its PUT reaches the store, and the store's Last-Modified is whole
  seconds rounded down or finer: a writer d seconds ahead of the store writes a time at
  most d, rounded up to a whole second, after the Last-Modified, and the allowance is a
  whole number of seconds;
- the sweeper's clock against the host asked to accept the object: at most the allowance
  ahead.

So an object whose Last-Modified plus its lifetime lies more than twice the allowance
behind the sweeper's clock is past its expiry by the clock of every host within the
allowance. One allowance covers only one of the offsets: with a writer 5 s ahead of the
store, a sweeper 5 s ahead and a host 5 s behind (all within 10 s of each other), that
host accepts the object for 5 s after the allowance alone would let the sweep delete it.
The rule errs towards keeping: what the sweep keeps past its expiry, every host refuses.

The rate limiter's sweep (`ratelimit.sweep`) judges its states the same way, with a limit's
window for the lifetime: a state is at most one window ahead of the writer's clock.

`latest_written` holds a time read from an object to that bound where a clock further
ahead than the allowance must not decide: a rotation's time (`sessions`), a session's
opening (`session_times`), the end of every session (`every_session`).

A time written from the clock that also names the object (a session id begins with its
creation time) needs one allowance only, for the sweeper against the host: the host
compares the same clock's reading (`session_cap`).
"""

from __future__ import annotations

import datetime as dt

from .storage import ObjectInfo


def latest_written(last_modified: dt.datetime, skew_seconds: int) -> float:
    """The latest time a writer within the allowance `skew_seconds` of the store can have
    written into an object whose Last-Modified is `last_modified` (see the module): what
    holds a time written by a clock further ahead (a host booted ahead, set right since)
    to the store's clock."""
    return int(last_modified.timestamp()) + skew_seconds + 1


def lapsed_everywhere(info: ObjectInfo, lifetime: float, skew_seconds: float, now: float) -> bool:
    """Whether `lifetime` seconds from the listed object's last write have passed by the
    clock of every host within the allowance `skew_seconds`, `now` by this host's (see the
    module)."""
    return info.last_modified.timestamp() + lifetime + 2 * skew_seconds < now
