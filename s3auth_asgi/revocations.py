"""RevocationSnapshot: what one process knows of the revocation list, held in memory.

Pure state, no I/O: `TokenBlacklist` feeds it the keys it writes and lists, and every
check of a token against it is a few dictionary lookups.

The state model. A revocation key (see `storage.keys`) names its kind, subject, the time
it was written and until when it matters:

- `jti` and `session` entries: subject → the latest "matters until" second seen;
- `user` entries: subject → (cut-off ms, matters until): every session whose id says it
  was created at or before the cut-off is refused;
- `seen`: the keys inside the listing overlap (see `TokenBlacklist`), so a key listed twice
  counts once.

An entry is forgotten once it no longer matters: its tokens have expired anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from .identifiers import session_created_ms
from .storage import keys

RevocationReason = Literal["jti", "session", "user"]


class RevocationSnapshot:
    """Revoked token ids, sessions and users, as known to this process."""

    __slots__ = ("_jtis", "_seen", "_sessions", "_users")

    def __init__(self) -> None:
        self._jtis: dict[str, int] = {}
        self._sessions: dict[str, int] = {}
        self._users: dict[str, tuple[int, int]] = {}  # user -> (cut-off ms, expires s)
        self._seen: dict[str, int] = {}  # keys inside the listing overlap -> written ms

    def has_seen(self, key: str) -> bool:
        return key in self._seen

    def record(self, key: str) -> bool:
        """Take in one revocation key; False when it is not one."""
        parsed = keys.parse_revocation(key)
        if parsed is None:
            return False
        self._seen[key] = parsed.written_ms
        subject, expires_s = parsed.subject, parsed.expires_s
        if parsed.kind == "jti":
            self._jtis[subject] = max(expires_s, self._jtis.get(subject, 0))
        elif parsed.kind == "session":
            self._sessions[subject] = max(expires_s, self._sessions.get(subject, 0))
        else:
            cut_off, expires = self._users.get(subject, (0, 0))
            self._users[subject] = (max(cut_off, parsed.written_ms), max(expires, expires_s))
        return True

    def forget(self, now: float, seen_floor_ms: int) -> None:
        """Drop entries that can no longer matter, and seen keys below the overlap."""
        for table in (self._jtis, self._sessions):
            for subject in [s for s, expires in table.items() if expires < now]:
                del table[subject]
        for subject in [s for s, (_, expires) in self._users.items() if expires < now]:
            del self._users[subject]
        for key in [k for k, written in self._seen.items() if written < seen_floor_ms]:
            del self._seen[key]

    def jti_revoked(self, jti: str, now: float) -> bool:
        expires = self._jtis.get(keys.revocation_subject(jti))
        return expires is not None and expires >= now

    def reason(self, claims: Mapping[str, Any]) -> RevocationReason | None:
        """Why these claims are refused, or None. Empty tables cost one truth test each."""
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
        if self._users and isinstance(sub, str) and isinstance(sid, str):
            entry = self._users.get(keys.revocation_subject(sub))
            if entry is not None and session_created_ms(sid) <= entry[0]:
                return "user"
        return None

    def user_cut_off_ms(self, user_id: str) -> int:
        """The latest logout-everywhere cut-off of the user known here, in ms (0: none)."""
        entry = self._users.get(keys.revocation_subject(user_id))
        return entry[0] if entry is not None else 0
