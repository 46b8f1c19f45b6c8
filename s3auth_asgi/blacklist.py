"""TokenBlacklist: the revocation list and each process's in-process snapshot of it.

Revocations are objects whose keys say everything (see `storage.keys`): written time,
kind (`jti`, `session`, `user`), until when the entry matters, and the subject. Keys sort
by written time, so a sync lists only what is new, starting a little before the newest
key it has seen (the overlap covers clock skew between writers); a cleaner decides from
the listing alone. Checking a token against the snapshot costs no request; a sync costs
one LIST per 1,000 new entries.

Staleness: a revocation written by another process is seen here at the latest after one
sync interval (plus the time of one LIST); one written through this object at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Mapping
from typing import Any

import anyio

from .errors import S3AuthError, S3ValidationError, TokenRevokedError
from .storage import ObjectStore, StoreConflict, keys
from .tokens import session_created_ms

_REVOKED_DETAILS = {
    "jti": "The token has been revoked",
    "session": "The session has been logged out",
    "user": "The user's tokens have been revoked",
}


class TokenBlacklist:
    """Revoked token ids, sessions and users, as the guide's `TokenBlacklist` plus more."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        lookback_seconds: int = 1800 + 60,
        sync_seconds: float = 5.0,
        skew_seconds: int = 10,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.lookback_seconds = lookback_seconds
        self.sync_seconds = sync_seconds
        self.skew_ms = skew_seconds * 1000
        self._clock = clock
        self._jtis: dict[str, int] = {}
        self._sessions: dict[str, int] = {}
        self._users: dict[str, tuple[int, int]] = {}  # user -> (not_before_ms, expires_s)
        self._seen: dict[str, int] = {}  # keys inside the overlap window -> written_ms
        self._cursor_ms: int | None = None  # the next sync lists from here, less skew
        self._synced_at = float("-inf")
        self._failed_at = float("-inf")
        self._sync_lock = anyio.Lock()

    # Writing -------------------------------------------------------------------------

    async def add(self, jti: str, expires_at: int | float | dt.datetime) -> None:
        """Revoke one access token by its `jti` until `expires_at` (its `exp`)."""
        expires_s = _epoch_seconds(expires_at)
        now = self._clock()
        if expires_s > now + self.lookback_seconds:
            raise S3ValidationError(
                "expires_at is further away than the longest access-token lifetime"
            )
        if expires_s <= now:
            return  # an expired token is refused anyway
        await self._write("jti", jti, expires_s)

    async def revoke_session(self, session_id: str) -> None:
        """Refuse every access token of a session from now on."""
        await self._write("session", session_id, int(self._clock()) + self.lookback_seconds)

    async def revoke_user(self, user_id: str, before_ms: int) -> None:
        """Refuse every access token of the user's sessions created up to `before_ms`."""
        await self._write(
            "user", user_id, int(self._clock()) + self.lookback_seconds, written_ms=before_ms
        )

    async def _write(
        self, kind: keys.RevocationKind, subject: str, expires_s: int, written_ms: int = 0
    ) -> None:
        written_ms = written_ms or int(self._clock() * 1000)
        key = keys.revocation(written_ms, kind, expires_s, subject)
        # The key is the whole entry: finding it already there means the same revocation
        # was written in the same millisecond, which is success.
        with contextlib.suppress(StoreConflict):
            await self.store.create(key, {})
        self._record(key)

    # Reading -------------------------------------------------------------------------

    async def is_blacklisted(self, jti: str) -> bool:
        """The guide's check: syncs when the snapshot is older than the interval."""
        await self.sync_if_stale()
        expires = self._jtis.get(keys.revocation_subject(jti))
        return expires is not None and expires >= self._clock()

    def revocation_reason(self, claims: Mapping[str, Any]) -> str | None:
        """Why the snapshot refuses these claims (`jti`, `session`, `user`), or None.

        Pure in-memory: call `sync_if_stale` (or `sync`) to refresh the snapshot.
        """
        jti = claims.get("jti")
        if self._jtis and isinstance(jti, str) and keys.revocation_subject(jti) in self._jtis:
            return "jti"
        sid = claims.get("sid")
        if (
            self._sessions
            and isinstance(sid, str)
            and keys.revocation_subject(sid) in self._sessions
        ):
            return "session"
        sub = claims.get("sub")
        if isinstance(sub, str) and self._users:
            entry = self._users.get(keys.revocation_subject(sub))
            if entry is not None and isinstance(sid, str) and session_created_ms(sid) <= entry[0]:
                return "user"
        return None

    def user_revoked_up_to_ms(self, user_id: str) -> int:
        """The latest logout-everywhere of the user known here, in ms (0: none)."""
        entry = self._users.get(keys.revocation_subject(user_id))
        return entry[0] if entry is not None else 0

    def revoked_error(self, claims: Mapping[str, Any]) -> TokenRevokedError | None:
        """The error to refuse these claims with, saying why; None when not revoked."""
        reason = self.revocation_reason(claims)
        return None if reason is None else TokenRevokedError(_REVOKED_DETAILS[reason])

    def snapshot_age(self) -> float:
        """Seconds since the last successful sync began (infinite before the first)."""
        return self._clock() - self._synced_at

    def has_snapshot(self) -> bool:
        return self._synced_at > float("-inf")

    def is_stale(self) -> bool:
        return self.snapshot_age() >= self.sync_seconds

    def _due(self) -> bool:
        """Stale, and not inside the pause after a failed sync. The pause applies only
        while there is a snapshot to serve from: an unreachable store is not asked again
        on every call, and without a snapshot every call must try."""
        if not self.is_stale():
            return False
        return not self.has_snapshot() or self._clock() - self._failed_at >= self.sync_seconds

    async def sync_if_stale(self) -> None:
        """Sync when due; callers that queued behind a sync it just made do not repeat it."""
        if self._due():
            async with self._sync_lock:
                if self._due():
                    await self._sync_locked()

    async def sync(self) -> int:
        """Read revocations written since the last sync; returns how many were new."""
        async with self._sync_lock:
            return await self._sync_locked()

    async def _sync_locked(self) -> int:
        now = self._clock()
        now_ms = int(now * 1000)
        if self._cursor_ms is None:
            start_ms = now_ms - self.lookback_seconds * 1000
        else:
            start_ms = self._cursor_ms - self.skew_ms
        new = 0
        try:
            async for info in self.store.list(keys.REVOCATIONS, keys.revocation_offset(start_ms)):
                if info.key not in self._seen and self._record(info.key):
                    new += 1
        except S3AuthError:
            self._failed_at = now
            raise
        # An entry not listed by now was written with a clock more than the skew
        # allowance behind ours; the next listing starts that far back.
        self._cursor_ms = now_ms
        self._synced_at = now
        self._forget(now)
        return new

    def _record(self, key: str) -> bool:
        parsed = keys.parse_revocation(key)
        if parsed is None:
            return False
        self._seen[key] = parsed.written_ms
        if parsed.kind == "jti":
            self._jtis[parsed.subject] = max(parsed.expires_s, self._jtis.get(parsed.subject, 0))
        elif parsed.kind == "session":
            self._sessions[parsed.subject] = max(
                parsed.expires_s, self._sessions.get(parsed.subject, 0)
            )
        else:
            before, expires = self._users.get(parsed.subject, (0, 0))
            self._users[parsed.subject] = (
                max(before, parsed.written_ms),
                max(expires, parsed.expires_s),
            )
        return True

    def _forget(self, now: float) -> None:
        """Drop what can no longer matter: expired entries, keys below the overlap."""
        for table in (self._jtis, self._sessions):
            for subject in [s for s, exp in table.items() if exp < now]:
                del table[subject]
        for subject in [s for s, (_, exp) in self._users.items() if exp < now]:
            del self._users[subject]
        if self._cursor_ms is not None:
            floor = self._cursor_ms - 2 * self.skew_ms
            for key in [k for k, w in self._seen.items() if w < floor]:
                del self._seen[key]

    # Cleaning ------------------------------------------------------------------------

    async def cleanup(self) -> int:
        """Delete entries past their end, deciding from the listing alone."""
        now = self._clock()
        expired = [
            info.key
            async for info in self.store.list(keys.REVOCATIONS)
            if (parsed := keys.parse_revocation(info.key)) is not None
            and parsed.expires_s + self.skew_ms / 1000 < now
        ]
        if expired:
            await self.store.delete_many(expired)
        return len(expired)


def _epoch_seconds(value: int | float | dt.datetime) -> int:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return int(value.timestamp())
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise S3ValidationError("expires_at must be a datetime or a Unix timestamp")
    return int(value)
