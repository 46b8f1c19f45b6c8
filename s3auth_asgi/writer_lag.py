"""WriterLag: how far this host's clock is behind the store's, learned from the
Last-Modified of its own revocations, and what `TokenBlacklist` does about it.

A revocation key is timed by its writer's clock, and readers list from their last sync's
start less the overlap, the skew allowance S plus the slow threshold (`blacklist`). A
writer further behind (a VM resumed before NTP caught up) writes keys that sort before
every running reader's listing: a logout there would end the session but leave its access
tokens accepted on every other host until they expire. Nothing the writer reads tells it
so but its own entries: its syncs list them (its listing starts by its own clock), each
with the store's Last-Modified, and it knows when it sent each PUT and how long it took.

The bounds. A PUT sent when a clock read `sent` lands when the store's clock reads at least
LM (a Last-Modified is whole seconds rounded down, or finer) and less than LM + 1, no
earlier than it was sent and no later than it returned, `took` seconds on (monotonic). So
for a clock `lag` seconds behind the store's (negative: ahead),
`LM - sent - took <= lag < LM + 1 - sent` (`lag_bounds`). The lower bound never says more
than the true lag however long the PUT took: a slow PUT (one written again, whose
Last-Modified is long after its key's time) is never taken for a clock behind, and a clock
within S of the store's never shows more than S. The two bounds are at most a second and
the PUT's time apart.

What is done, only on a lower bound beyond S, so never where clocks agree within the
allowance, and at no request where nothing is found:

- An entry of ours whose key's time was more than S behind the store's (the lower bound,
  from the key's time: `dated`) is written again by the sync that found it (1 PUT),
  timed as below, so the first sync any reader begins after that write returned lists it,
  as it lists any write from a host on the store's clock. A `session` or `user` entry's end
  is its time plus the longest an access token is accepted: it moves on by as much as the
  key's time may have been behind (the upper bound); a `jti` entry's is its token's `exp`.
  A write that fails is tried again at the next sync.
- Writes are timed by the store's clock, by the upper bound of the latest of our entries a
  sync lists: the store's clock less the monotonic one is less than LM + 1 less the
  monotonic reading when that PUT was sent, and a write is timed by that plus the monotonic
  clock now. So never behind the store's clock, and ahead of it by less than a second and
  that PUT's time. A step of the wall clock (NTP setting it right) moves no monotonic
  reading: a shift that comes to S or less (the clock within the allowance) is not
  applied, so the next write is timed by the corrected clock itself. What the monotonic
  clock does not count (a pause of the machine) or shares with the wall clock (a slew)
  shows only in the next sync that lists an entry of ours: each such sync decides anew,
  from the latest, and drops the lag once that one shows the clock within S.

So a revocation written on a host more than S behind the store is seen fleet-wide from
the first sync, on any host, begun after the writer's own next successful sync returned:
the writer's next sync plus the usual bound; once the lag is known, within the usual
bound. A process that exits after writing, with no next sync (an `s3auth` command), does
what that sync would in its place (`check`: one LIST from its earliest write). A clock
behind by S and less than a second and a PUT's time more may show no lag beyond S: its
writes are then timed as before, as by a host within the allowance.

Our writes wait here until a sync begun after their PUT returned: that one lists them,
since their key's time is no earlier than this clock when they were sent (a PUT slower than
the overlap may sort before it, and is written again by `blacklist` anyway); at most
`MAX_PENDING`, the oldest let go, in a process that writes and does not sync.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, NamedTuple

from .errors import StoreUnavailableError
from .storage import ObjectInfo, Store, keys
from .types import Clock

logger = logging.getLogger("s3auth_asgi")

Write = Callable[[keys.RevocationKind, str, int, Any], Awaitable[None]]
"""`TokenBlacklist._write`: an entry's kind, subject, end and body."""

MAX_PENDING = 10_000
"""The most writes of ours held for a sync: past it, the oldest go unchecked."""


def lag_bounds(last_modified: float, sent: float, took: float) -> tuple[float, float]:
    """(at least, less than) how far a clock that read `sent` when a PUT was sent, which
    returned `took` seconds later, is behind the store's clock, whose Last-Modified of the
    object is `last_modified` (see the module)."""
    return last_modified - sent - took, last_modified + 1 - sent


class OwnWrite(NamedTuple):
    sent_on: float
    """The monotonic clock then."""
    took: float
    """Seconds until it returned, on the monotonic clock."""
    body: Any
    """A `user` entry's body, to write it again."""


class Rewrite(NamedTuple):
    """An entry of this host's to write again: what it says, its end moved on."""

    kind: keys.RevocationKind
    subject: str
    expires_s: int
    body: Any


def dated(key: str, write: OwnWrite, last_modified: float, skew_seconds: int) -> Rewrite | None:
    """Our entry at `key`, to write again when its key's time shows it more than
    `skew_seconds` behind the store's clock (the lower bound): its end moved on by as much
    as that time may have been behind (the upper bound), unless it is a token's `exp`.
    None when it was on time."""
    parsed = keys.parse_revocation(key)
    if parsed is None:
        return None
    low, high = lag_bounds(last_modified, parsed.written_ms / 1000, write.took)
    if low <= skew_seconds:
        return None
    expires_s = parsed.expires_s if parsed.kind == "jti" else parsed.expires_s + math.ceil(high)
    return Rewrite(parsed.kind, parsed.subject, expires_s, write.body)


class WriterLag:
    """This host's own revocation writes awaiting a sync, and the lag learned from them."""

    def __init__(self, monotonic: Clock) -> None:
        self._monotonic = monotonic
        self.pending: dict[str, OwnWrite] = {}
        self.due: dict[str, Rewrite] = {}
        # Less than the store's clock minus the monotonic one; None: no lag known.
        self._store_over: float | None = None
        self._skew = 0  # the allowance, as of the last sync

    def shift(self, now: float) -> float:
        """Seconds to add to this host's clock, reading `now`, to time a revocation: 0
        unless a lag is known (see the module)."""
        if self._store_over is None:
            return 0.0
        shift = self._store_over + self._monotonic() - now
        # No more than the allowance: this clock is within it of the store's (set right).
        return shift if shift > self._skew else 0.0

    def wrote(self, key: str, sent_on: float, body: Any) -> None:
        """A PUT of ours, sent when the monotonic clock read `sent_on`, landed at `key`.
        Held until a sync; a process that writes and does not sync holds the latest few."""
        pending = self.pending
        pending[key] = OwnWrite(sent_on, self._monotonic() - sent_on, body)
        if len(pending) > MAX_PENDING:
            del pending[next(iter(pending))]

    def watch(
        self, infos: AsyncIterator[ObjectInfo]
    ) -> tuple[AsyncIterator[ObjectInfo], list[ObjectInfo]]:
        """A sync's listing, passed through, and the list our entries in it are put in as
        they go by: `infos` itself while no write of ours awaits a sync."""
        mine: list[ObjectInfo] = []
        if not self.pending:
            return infos, mine

        async def noting() -> AsyncIterator[ObjectInfo]:
            async for info in infos:
                if info.key in self.pending:
                    mine.append(info)
                yield info

        return noting(), mine

    def listed(
        self, infos: Iterable[ObjectInfo], now: float, began_on: float, skew_seconds: int
    ) -> float | None:
        """After a successful sync that began when this clock read `now` and the monotonic
        one `began_on`, which listed `infos` (among them, our entries): learn or drop the
        lag, mark our dated entries to write again, and let go of our writes that sync
        listed or should have. How far this clock is at least behind the store's, where
        that is more than the allowance; else None."""
        self._skew = skew_seconds
        seen = [
            (info.key, write, info.last_modified.timestamp())
            for info in infos
            if (write := self.pending.get(info.key)) is not None
        ]
        behind = self._learn(seen, now, began_on) if seen else None
        for key, write, last_modified in seen:
            if (rewrite := dated(key, write, last_modified, skew_seconds)) is not None:
                self.due[key] = rewrite
        listed = {key for key, _, _ in seen}
        self.pending = {
            key: write
            for key, write in self.pending.items()
            if key not in listed and write.sent_on + write.took > began_on
        }
        return behind

    def _learn(
        self, seen: list[tuple[str, OwnWrite, float]], now: float, began_on: float
    ) -> float | None:
        """From the latest of our entries listed (a clock set right since the earlier ones
        were written, or slewed with its monotonic one, shows in it): whether this clock,
        reading `now` when the monotonic one read `began_on`, is more than the allowance
        behind the store's, and if so, the upper bound to time writes by. How far it is at
        least behind where that is more than the allowance, else None."""
        _, write, last_modified = max(seen, key=lambda item: item[1].sent_on)
        low, high = lag_bounds(last_modified, write.sent_on, write.took)  # on the monotonic
        known = self._store_over is not None
        behind = low + began_on - now
        if behind > self._skew:
            self._store_over = high
            if not known:
                logger.warning(
                    "this host's clock is at least %.0f s behind the store's, more than the "
                    "skew allowance: revocations are timed by the store's clock until it "
                    "is set right",
                    behind,
                )
            return behind
        if known:
            self._store_over = None
            logger.warning("this host's clock is back within the skew allowance of the store's")
        return None

    async def write_again(self, write: Write) -> None:
        """Write again, with `write` (`TokenBlacklist._write`), the entries found dated; a
        store that fails leaves the rest for the next sync."""
        try:
            await self._write_due(write)
        except StoreUnavailableError as error:
            logger.error(
                "writing a revocation again, timed by the store's clock, failed: %r", error
            )

    async def _write_due(self, write: Write) -> None:
        for key, entry in list(self.due.items()):
            await write(entry.kind, entry.subject, entry.expires_s, entry.body)
            self.due.pop(key, None)

    async def check(
        self, store: Store, now: float, began_on: float, skew_seconds: int, write: Write
    ) -> float | None:
        """In place of the next sync, for a process about to exit after writing (the
        `s3auth` commands that end sessions), begun when this clock read `now` and the
        monotonic one `began_on`: list from the earliest of our writes awaiting a sync (a
        LIST per 1,000 keys from there: ours, and what was written since), learn the lag
        from them and write the dated ones again, as a sync would. How far this clock is
        at least behind the store's where that is more than the allowance, else None. No
        request where no write awaits; StoreUnavailableError where the listing, or a
        write again, fails."""
        times = [found.written_ms for key in self.pending if (found := keys.parse_revocation(key))]
        if not times:
            return None
        offset = keys.revocation_offset(min(times))
        mine = [
            info async for info in store.list(keys.REVOCATIONS, offset) if info.key in self.pending
        ]
        behind = self.listed(mine, now, began_on, skew_seconds)
        await self._write_due(write)
        return behind
