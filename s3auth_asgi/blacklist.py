"""TokenBlacklist: the revocation list in the store, this process's snapshot of it, and
the snapshot's freshness.

Revocations are objects whose keys say what a reader needs (see `storage.keys`): written
time, kind (`jti`, `session`, `user`), the entry's end, and the subject; a `user` entry's
body names the sessions it ends. Keys sort by written time, so a sync lists only what was
written since the previous one began, less an overlap (below). A process's first sync
lists every entry and keeps those it must hold: how long an entry matters is the lifetime
of the tokens it refuses, which the writer knew and a reader may not, so no age is too old
to look at. The sweep (`cleanup`) deletes the others, deciding from the listing alone,
which keeps that listing to the entries that matter and those that ended lately. Checking
a token against the snapshot (`revocations`) costs no request; a sync costs one LIST per
1,000 keys listed (on Azure, 2–3: `offset_listing`), one GET per new `user` entry still
live and one of the end of every session (`every_session`); when to sync is `freshness`'s
policy.

What holds, for S the skew allowance (`S3AUTH_REVOCATION_SKEW_SECONDS`), any two hosts'
clocks at most S apart, S at least the leeway (as the settings require), and PUTs that take
any time to land:

- Seen. A revocation written through this object holds here at once, and in every other
  process from its first successful sync begun after the write returned: within the bound
  `freshness` documents (twice the sync interval; at once in strict mode). The key's time
  is read before its PUT is sent; a sync lists from the previous successful one's start
  less the overlap, S plus the slow threshold (half of S, at least a second): S for a
  writer's clock behind the reader's, the threshold for the time the PUT took to land after
  the key's time was read. A write that took longer than the threshold (on the monotonic
  clock) is written again under a later time: the write returns once one took no longer,
  so that one's key is at most the overlap older than the start of any sync begun before
  it landed, by the reader's clock, and the first successful sync begun after it landed
  lists it. A slow store delays the return, never the seeing; after four slow writes the
  revocation fails as a store down does (StoreUnavailableError), to be tried again.
- Seen from a writer far behind. A writer whose clock is more than S behind the store's
  writes keys that sort before the readers' listings; its own syncs list them (they list
  from its clock) with the store's Last-Modified, which tells it (`writer_lag`): its next
  successful sync writes them again by the store's clock, seen as above from then, and
  its later writes are timed by the store's clock while the lag lasts. So such a
  revocation is seen within the writer's next sync plus the bound above; a process that
  exits instead (an `s3auth` command) checks so before it exits (`check_own_writes`).
- Held. An entry's end is when the tokens it refuses stop being accepted by the writer's
  reckoning: a `jti` entry's is the token's `exp`; a `session` or `user` entry's the write's
  time plus the longest an access token is accepted (`lookback_seconds`). A process holds
  an entry S past its end by its own clock: that covers the leeway past an `exp`, and a
  token issued by a host whose clock is up to S ahead of the writer's. The sweep deletes an
  entry 2·S past its end by the sweeper's clock, when every process's, at most S behind,
  is past what it holds: a process started after the sweep misses nothing it must hold,
  and whether the sweep has run changes no answer.

Each sync thus lists again what was written in the overlap (15 s for the default S of
10 s) before the previous sync began: a matter of the recent rate of revocations, and of
the few ten-second shards of keys that span, never of the history; after a step back of
the host's clock, the next sync lists every entry again, once (`revocation_cursor`).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping, Sequence
from typing import Any

import anyio.lowlevel

from .errors import (
    ConfigurationError,
    S3ValidationError,
    StoreUnavailableError,
    TokenRevokedError,
)
from .every_session import sync_not_before
from .freshness import SnapshotFreshness
from .models import EndedSessions
from .revocation_cursor import ListingCursor
from .revocation_entry import create_entry
from .revocation_settings import RevocationNumbers, revocation_numbers
from .revocations import RevocationSnapshot, revoked_error
from .settings import S3AuthSettings
from .shared_on_copy import SharedOnCopy
from .storage import Store, keys
from .storage.access import gather, get_or_none
from .storage.batching import delete_as_listed
from .store_check import checked_writes
from .types import Clock, elapsed_clock, epoch_seconds
from .writer_lag import WriterLag

_SLOW_WRITE_ATTEMPTS = 4  # slow writes of one revocation before it fails
_LEAST_SLOW_MS = 1000
"""The least slow threshold: with a small allowance or none, a write that takes a few
milliseconds is not written again and again."""

_RECORD_BATCH = 1000


class TokenBlacklist(SharedOnCopy):
    """Revoked token ids, sessions and users: `add` / `is_blacklisted` for single access
    tokens, and the session and user revocations that logout and logout-everywhere write.

    `lookback_seconds` matters only for writing: the longest an access token of the issuer
    is accepted, its lifetime plus the leeway (the settings' `access_token_accepted_seconds`,
    which `from_settings` and `S3AuthService` pass). A session or user revocation written
    here holds that long, and `add` refuses an `expires_at` further away. `sync_seconds` and
    `skew_seconds` are the settings' S3AUTH_REVOCATION_SYNC_SECONDS and
    S3AUTH_REVOCATION_SKEW_SECONDS: how stale the snapshot may be, and how far behind a
    writer's clock may be and its revocations still be listed.

    What is not given (None) is read from the `S3AUTH_*` variables, all three at once, at the
    first sync, write or sweep, as `S3AuthService()` reads its settings. Where they cannot be
    read (settings made in code, or a process that only verifies and holds no secret key),
    writing is refused (ConfigurationError) rather than done under a lifetime that may be
    shorter than the issuer's, and reading goes on with the settings' defaults, a sync every
    5 s and a skew allowance of 10 s (`revocation_settings`): give those where the issuer's
    differ. Reading and cleaning need no lifetime: every entry says until when it matters."""

    def __init__(
        self,
        store: Store,
        *,
        lookback_seconds: int | None = None,
        sync_seconds: float | None = None,
        skew_seconds: int | None = None,
        clock: Clock = time.time,
        monotonic: Clock | None = None,
        store_probe: bool = True,
    ) -> None:
        """`clock` stamps and judges revocations; `monotonic` measures the time between
        syncs, `types.elapsed_clock(clock)` unless given. The numbers given are held to the
        ranges of the settings they stand for (the lookback: the lifetime's plus the
        leeway's). Writes wait for the check of the store's conditional writes, as the
        service's do (`store_check.checked_writes`; `store_probe` as S3AUTH_STORE_PROBE)."""
        self.store = checked_writes(store, store_probe, clock)
        self._given = (lookback_seconds, sync_seconds, skew_seconds)
        self._settled = None not in self._given
        numbers = revocation_numbers(*self._given, read_settings=False)
        self._take(numbers)
        self._clock = clock
        self._monotonic = elapsed_clock(clock) if monotonic is None else monotonic
        self.snapshot = RevocationSnapshot()
        self.freshness = SnapshotFreshness(
            self._list_new, interval=numbers.sync_seconds, clock=self._monotonic, wall=clock
        )
        self._cursor = ListingCursor()  # where the next sync lists from
        self._lag = WriterLag(self._monotonic)  # this clock behind the store's

    @classmethod
    def from_settings(
        cls, store: Store, settings: S3AuthSettings, *, clock: Clock = time.time
    ) -> TokenBlacklist:
        """The revocation list of a host whose tokens `settings` issue or verify: their
        lifetime, sync interval and skew allowance."""
        return cls(
            store,
            lookback_seconds=settings.access_token_accepted_seconds,
            sync_seconds=settings.revocation_sync_seconds,
            skew_seconds=settings.revocation_skew_seconds,
            clock=clock,
            store_probe=settings.store_probe,
        )

    def _settle(self) -> None:
        """Take the numbers not given from the `S3AUTH_*` settings, read the first time only."""
        if not self._settled:
            self._settled = True
            numbers = revocation_numbers(*self._given, read_settings=True)
            self._take(numbers)
            self.freshness.interval = numbers.sync_seconds

    def _take(self, numbers: RevocationNumbers) -> None:
        self.lookback_seconds = numbers.lookback_seconds
        self.sync_seconds = numbers.sync_seconds
        self.skew_ms = numbers.skew_seconds * 1000
        self._slow_ms = max(self.skew_ms // 2, _LEAST_SLOW_MS)
        self._overlap_ms = self.skew_ms + self._slow_ms
        self._unreadable = numbers.unreadable

    def _lifetime(self) -> int:
        """`lookback_seconds`, from the settings when not given; refused without them."""
        self._settle()
        if self.lookback_seconds is None:
            raise ConfigurationError(
                "writing a revocation needs the access-token lifetime, and the S3AUTH_* "
                f"settings cannot be read ({self._unreadable}): make the TokenBlacklist with "
                "TokenBlacklist.from_settings(store, settings), or give lookback_seconds"
            )
        return self.lookback_seconds

    # Writing -------------------------------------------------------------------------

    async def add(self, jti: str, expires_at: int | float | dt.datetime) -> None:
        """Revoke one access token by its `jti` until `expires_at` (its `exp`)."""
        expires_s = epoch_seconds(expires_at)
        lifetime = self._lifetime()
        now = self._clock()
        if expires_s > self._timed() + lifetime:
            raise S3ValidationError(
                "expires_at is further away than the longest access-token lifetime"
            )
        if self._swept(expires_s, now):
            return  # refused everywhere anyway: past its `exp` and the leeway, on every clock
        await self._write("jti", jti, expires_s)

    async def revoke_session(self, session_id: str) -> None:
        """Refuse every access token of a session from now on."""
        await self._write("session", session_id, int(self._timed()) + self._lifetime())

    async def revoke_user(self, user_id: str, session_ids: Sequence[str]) -> None:
        """Refuse every access token of these sessions of the user (all it had, listed by
        the caller): one entry, whose body names them."""
        ended = EndedSessions(sorted(session_ids))
        await self._write("user", user_id, int(self._timed()) + self._lifetime(), ended)

    async def _write(
        self, kind: keys.RevocationKind, subject: str, expires_s: int, body: Any = None
    ) -> None:
        # Readers list from their last sync less the overlap: the allowance, for our clock
        # behind theirs, and the slow threshold, for the time a write takes to land after
        # its key's time is read (slow, or resent by the client). One that may have taken
        # longer could sort before where a reader lists from: it is written again under a
        # later time, until one is known to have landed in time; a store too slow for that
        # fails the revocation as a store down does, so that the caller tries again.
        # Timed by the store's clock where this one is known to be far behind (`writer_lag`).
        for _ in range(_SLOW_WRITE_ATTEMPTS):
            started, sent = self._monotonic(), self._clock()
            written_ms = int((sent + self._lag.shift(sent)) * 1000)
            key, ours = await create_entry(self.store, written_ms, kind, subject, expires_s, body)
            self.snapshot.record(key, body.sessions if isinstance(body, EndedSessions) else ())
            if ours:
                self._lag.wrote(key, started, body)
            if (self._monotonic() - started) * 1000 <= self._slow_ms:
                return
        raise StoreUnavailableError(
            f"the store is too slow: {_SLOW_WRITE_ATTEMPTS} revocation writes in a row took "
            f"longer than {self._slow_ms / 1000:g} s, so other processes may not see it"
        )

    async def check_own_writes(self) -> float | None:
        """What the next sync would do about this process's writes (`WriterLag.check`),
        for one about to exit after them (`s3auth`'s commands): how far this clock is at
        least behind the store's, beyond the allowance, its dated entries written again."""
        self._settle()
        now, began_on, skew = self._clock(), self._monotonic(), self.skew_ms // 1000
        return await self._lag.check(self.store, now, began_on, skew, self._write)

    def _timed(self) -> float:
        """This host's clock as revocations are timed by: the store's where it is far behind."""
        now = self._clock()
        return now + self._lag.shift(now)

    # Reading -----------------------------------------------------------------------

    async def is_blacklisted(self, jti: str) -> bool:
        """Whether the access token with this `jti` was revoked (snapshot freshened first).
        False for one that is no string (claims without a `jti`), as `revoked_error` judges
        it: only a string is ever revoked by `add`."""
        if not isinstance(jti, str):
            return False
        await self.ensure_fresh()
        # Judged as of the skew allowance ago: a token within its leeway past `exp` is
        # still accepted, so its revocation still holds.
        return self.snapshot.jti_revoked(jti, self._clock() - self.skew_ms / 1000)

    async def ensure_fresh(self, *, strict: bool = False) -> None:
        """Bring the snapshot within the freshness bound (`freshness`); StoreUnavailable
        only when there is no snapshot to answer from, or in strict mode."""
        await self.freshness.ensure(strict=strict)

    def revoked_error(self, claims: Mapping[str, Any]) -> TokenRevokedError | None:
        """The error to refuse these claims with, saying why; None when not revoked.
        In memory: call `ensure_fresh` first (or let a middleware do it)."""
        reason = self.snapshot.reason(claims)
        return None if reason is None else revoked_error(reason)

    def is_stale(self) -> bool:
        """Whether `ensure_fresh` has anything to do now (a sync to wait for or to start)."""
        return self.freshness.is_stale()

    async def sync(self) -> int:
        """Read revocations written since the last sync now; returns how many were new."""
        return await self.freshness.sync()

    async def _list_new(self) -> int:
        """One sync: list from the cursor (less the skew allowance), or everything the
        first time, and take in new keys whose end has not passed; a `user` entry's body
        (the sessions it ends) costs one GET."""
        self._settle()
        now, elapsed = self._clock(), self._monotonic()
        now_ms = int(now * 1000)
        # After a step back of the clock, everything again (`revocation_cursor`).
        offset, again = self._cursor.start(now_ms, elapsed, self._overlap_ms)
        # An entry is held the skew allowance past its end (see the module's docstring).
        live_from = now - self.skew_ms / 1000
        snapshot = self.snapshot
        # Keys seen before cost one set lookup; only a new one is parsed.
        listed, mine = self._lag.watch(self.store.list(keys.REVOCATIONS, offset))
        fresh = [
            (info.key, entry)
            async for info in listed
            if (again or not snapshot.has_seen(info.key))
            and (entry := keys.parse_revocation(info.key)) is not None
            and entry.expires_s >= live_from
        ]
        new = [key for key, _ in fresh]
        # 0.1's `user` entries have no body: their key is the whole of them.
        users = [k for k, e in fresh if e.kind == "user" and not keys.is_unsharded_revocation(k)]
        ended: dict[str, list[str]] = {}
        if users:
            bodies = await gather([get_or_none(self.store, key, EndedSessions) for key in users])
            ended = {k: body.value.sessions for k, body in zip(users, bodies, strict=True) if body}
        recorded = 0
        for start in range(0, len(new), _RECORD_BATCH):
            batch = new[start : start + _RECORD_BATCH]
            recorded += sum(not snapshot.has_seen(key) for key in batch)
            for key in batch:
                snapshot.record(key, ended.get(key, ()))
            if start + _RECORD_BATCH < len(new):  # a first load: never hold the loop long
                await anyio.lowlevel.checkpoint()
        # The end of every session (`every_session`): 1 GET, whatever was listed.
        await sync_not_before(snapshot, self.store, self.skew_ms // 1000)
        # An entry that landed by now is listed next time, its key's time at most the
        # overlap before this one by our clock. Keys seen are kept until they are out of
        # that listing, with as much again for a clock stepped back meanwhile.
        self._cursor.began(now_ms, elapsed)
        snapshot.forget(now - self.skew_ms / 1000, now_ms - 2 * self._overlap_ms)
        # Our own entries listed tell how far this clock is behind the store's.
        self._lag.listed(mine, now, elapsed, self.skew_ms // 1000)
        await self._lag.write_again(self._write)
        return recorded

    # Cleaning ------------------------------------------------------------------------

    async def cleanup(self) -> int:
        """Delete entries no process holds any more by its clock, deciding from the listing
        alone."""
        self._settle()
        now = self._clock()
        expired = (
            info.key
            async for info in self.store.list(keys.REVOCATIONS)
            if (parsed := keys.parse_revocation(info.key)) is not None
            and self._swept(parsed.expires_s, now)
        )
        return await delete_as_listed(self.store, expired)

    def _swept(self, expires_s: int, now: float) -> bool:
        """Whether an entry ending at `expires_s` is past what any process holds by its
        clock: readers hold an entry the allowance past its end, and their clocks may be
        that far behind ours."""
        return expires_s + 2 * self.skew_ms / 1000 < now
