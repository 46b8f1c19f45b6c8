"""ListingCursor: where a process's next revocation sync lists from (`blacklist`), on a
host whose wall clock may step.

A sync lists from when the previous one began, less the overlap. That time is read on the
wall clock, which revocation keys are written by, and on the monotonic clock, which no step
moves; at the next sync, the two tell whether the wall clock stepped meanwhile:

- Forward (a clock set ahead, a VM resumed after a pause): the listing starts where the
  previous one began, so nothing written in between is skipped.
- Back (NTP correcting a host that ran ahead): the previous start is ahead of every key
  written from now on; the listing starts from that start as the clock reads now. And
  what the clock ahead judged over, an entry whose end it had passed (not taken, or
  forgotten), may hold again: the tokens it refuses are current again by the corrected
  clock. So the whole list is read again, once, every entry taken whether seen before or
  not: what the sweep keeps, a LIST per 1,000 entries, on a step back of more than a
  second (a smaller one is within what the skew allowance covers).
"""

from __future__ import annotations

from typing import NamedTuple

from .storage import keys

STEP_BACK_MS = 1000
"""The least step back of the wall clock that reads the whole list again."""


class ListingStart(NamedTuple):
    offset: str | None
    """The listing's offset; None: from the first key."""
    again: bool
    """Whether the whole list is read again after a step back: keys seen before are taken
    again."""


class ListingCursor:
    """When the last successful sync began, by the wall clock and by the monotonic one."""

    def __init__(self) -> None:
        self._began: tuple[int, float] | None = None

    def start(self, now_ms: int, elapsed: float, overlap_ms: int) -> ListingStart:
        """Where a sync beginning at `now_ms` (wall) and `elapsed` (monotonic) lists from."""
        if self._began is None:
            return ListingStart(None, again=False)
        began_ms, then = self._began
        # When the last sync began, by the wall clock as it reads now.
        began_now_ms = now_ms - int((elapsed - then) * 1000)
        if began_ms - began_now_ms > STEP_BACK_MS:
            return ListingStart(None, again=True)
        return ListingStart(keys.revocation_offset(min(began_ms, began_now_ms) - overlap_ms), False)

    def began(self, now_ms: int, elapsed: float) -> None:
        """A sync that began then succeeded: the next one lists from there."""
        self._began = (now_ms, elapsed)
