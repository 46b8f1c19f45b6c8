"""RevocationSnapshot: what one process knows of the revocation list, held in memory.

Pure state, no I/O: `TokenBlacklist` feeds it the entries it writes and lists, and every
check of a token against it is a few dictionary lookups.

The state model. A revocation entry (see `storage.keys`) names its kind, its subject, the
time it was written and until when it matters:

- `jti`: one access token, by its id;
- `session`: every access token of one session (a logout);
- `user`: every access token of the sessions listed in the entry's body — the sessions the
  user had when the logout-everywhere was issued. Listing them, instead of cutting off by
  creation time, is what makes the cut-off independent of every host's clock: a session
  that existed is named, one created afterwards is not. An entry in 0.1's layout
  (`keys.is_unsharded_revocation`) has no body and means what it meant there: every
  session of the user (`sub`) opened up to the entry's time, read from the session id
  (`sid`). Those are kept apart, as cut-offs, until they end.

Beside the entries, one time: the end of every session (`every_session`), read with each
sync; a token whose session (`sid`) was opened before it is refused.

Each table maps a subject to the last second its entry matters. Forgetting happens in time
order through a heap of (until, table, subject), so a sync that finds nothing new does no
work proportional to what is known; `seen` (the keys inside the listing overlap) is
pruned the same way.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from .errors import TokenRevokedError
from .identifiers import session_created_ms
from .storage import keys

RevocationReason = Literal["jti", "session", "user", "all"]
_REASONS: tuple[RevocationReason, ...] = ("jti", "session", "user")
_REVOKED_DETAILS: dict[RevocationReason, str] = {
    "jti": "The token has been revoked",
    "session": "The session has been logged out",
    "user": "The user's tokens have been revoked",
    "all": "Every session has been ended; log in again",
}


def revoked_error(reason: RevocationReason) -> TokenRevokedError:
    """The error a token refused for `reason` is answered with, saying why."""
    return TokenRevokedError(_REVOKED_DETAILS[reason])


class RevocationSnapshot:
    """Revoked token ids, sessions and users' sessions, as known to this process."""

    __slots__ = ("_cutoffs", "_expiries", "_seen", "_seen_order", "_tables", "not_before_ms")

    def __init__(self) -> None:
        # reason -> subject -> last second the entry matters
        self._tables: dict[RevocationReason, dict[str, int]] = {r: {} for r in _REASONS}
        self._expiries: list[tuple[int, RevocationReason, str]] = []
        self._seen: set[str] = set()
        self._seen_order: list[tuple[int, str]] = []
        # user subject -> (sessions opened up to this ms are ended, last second it matters)
        self._cutoffs: dict[str, tuple[int, int]] = {}
        # Every session opened before this ms has ended (`every_session`); 0: none.
        self.not_before_ms = 0

    def __len__(self) -> int:
        return sum(len(table) for table in self._tables.values()) + len(self._cutoffs)

    def has_seen(self, key: str) -> bool:
        return key in self._seen

    def record(self, key: str, ended_sessions: Iterable[str] = ()) -> bool:
        """Take in one revocation key (with, for a `user` entry, the sessions its body
        lists); False when the key is not one."""
        parsed = keys.parse_revocation(key)
        if parsed is None:
            return False
        if key not in self._seen:
            self._seen.add(key)
            heapq.heappush(self._seen_order, (parsed.written_ms, key))
        if parsed.kind == "user" and keys.is_unsharded_revocation(key):
            up_to, until = self._cutoffs.get(parsed.subject, (0, 0))
            self._cutoffs[parsed.subject] = (
                max(up_to, parsed.written_ms),
                max(until, parsed.expires_s),
            )
        elif parsed.kind == "user":
            for session_id in ended_sessions:
                self._add("user", keys.revocation_subject(session_id), parsed.expires_s)
        else:
            self._add(parsed.kind, parsed.subject, parsed.expires_s)
        return True

    def _add(self, reason: RevocationReason, subject: str, until: int) -> None:
        table = self._tables[reason]
        if table.get(subject, -1) < until:
            table[subject] = until
            heapq.heappush(self._expiries, (until, reason, subject))

    def forget(self, older_than_s: float, seen_floor_ms: int) -> None:
        """Drop entries whose time ended before `older_than_s`, and seen keys written
        before `seen_floor_ms`: each in time order, stopping at the first that stays."""
        expiries = self._expiries
        while expiries and expiries[0][0] < older_than_s:
            until, reason, subject = heapq.heappop(expiries)
            table = self._tables[reason]
            if table.get(subject) == until:  # not extended by a later entry
                del table[subject]
        # Cut-offs are written by 0.1 processes alone, a few while they share the store.
        for subject in [s for s, (_, until) in self._cutoffs.items() if until < older_than_s]:
            del self._cutoffs[subject]
        order = self._seen_order
        while order and order[0][0] < seen_floor_ms:
            self._seen.discard(heapq.heappop(order)[1])

    def jti_revoked(self, jti: str, now: float) -> bool:
        until = self._tables["jti"].get(keys.revocation_subject(jti))
        return until is not None and until >= now

    def reason(self, claims: Mapping[str, Any]) -> RevocationReason | None:
        """Why these claims are refused, or None. Empty tables cost one truth test each."""
        jtis, sessions, users = self._tables["jti"], self._tables["session"], self._tables["user"]
        jti = claims.get("jti")
        if jtis and isinstance(jti, str) and keys.revocation_subject(jti) in jtis:
            return "jti"
        sid = claims.get("sid")
        if not isinstance(sid, str):
            return None
        if self.not_before_ms and session_created_ms(sid) < self.not_before_ms:
            return "all"
        if sessions or users:
            subject = keys.revocation_subject(sid)
            if subject in sessions:
                return "session"
            if subject in users:
                return "user"
        if self._cutoffs and self._cut_off(claims.get("sub"), sid):
            return "user"
        return None

    def _cut_off(self, sub: object, sid: str) -> bool:
        # An entry's time is never 0, and an id that holds no time reads as 0: none is cut.
        up_to = self.cutoff_ms(sub) if isinstance(sub, str) else 0
        return up_to > 0 and session_created_ms(sid) <= up_to

    def cutoff_ms(self, user_id: str) -> int:
        """The latest cut-off by time of the user's sessions known here, in ms (0: none): a
        0.1 logout everywhere, or the end of every session (`every_session`). A session
        this process opens must be younger, or its tokens are refused from birth."""
        cutoff = self._cutoffs.get(keys.revocation_subject(user_id))
        return max(cutoff[0] if cutoff is not None else 0, self.not_before_ms - 1)
