"""Listing a user's sessions, and sweeping the expired ones: the reading half of
`sessions` (request budgets there).
"""

from __future__ import annotations

from .every_session import read_not_before
from .identifiers import is_id
from .models import SessionInfo
from .session_endings import SessionEndings
from .session_generation import is_session_key, sweepable
from .session_rules import ending_recorded
from .session_times import opened_ms
from .storage import ObjectInfo, keys
from .storage.batching import delete_as_listed


class SessionListing(SessionEndings):
    """A part of `S3AuthService`."""

    async def get_user_active_sessions(
        self, user_id: str, current_session_id: str | None = None
    ) -> list[SessionInfo]:
        """The user's sessions that can be used (`session_rules`), newest first, without
        secrets. Sessions beyond the cap are ended on the way (`_end_sessions_beyond_cap`):
        what is shown is what can refresh. The revocation snapshot is synced first when
        overdue (1 LIST, 1 GET), as a refresh syncs it."""
        if not is_id(user_id):
            return []
        # Judged by this process's revocations (the end of every session) within their
        # bound, as a refresh is: a process that only lists (a command) may have none yet.
        await self.blacklist.ensure_fresh()
        now = self._now()
        listing = await self._end_sessions_beyond_cap(user_id, now, read_all=True)
        kept = sorted(listing.kept, key=lambda s: (s.opened_ms, s.id), reverse=True)
        return [
            session.info(
                current_session_id,
                expires_at=self._expiry(session),
                absolute_expires_at=self._absolute(session),
            )
            for session in kept
        ]

    async def _cleanup_expired_sessions(self) -> int:
        """Delete expired sessions, deciding from listings alone (a session cannot outlive
        its last write plus the idle lifetime, nor its creation plus the absolute one: see
        `session_cap.listed_as_expired`), those opened before the end of every session
        (`every_session`, read first: 1 GET), those the revocations this process holds
        say have ended (`session_rules.ending_recorded`: no request, and none known to a
        process that has not synced), and generation markers too old to stop any
        (`session_generation.sweepable`); returns how many."""
        now = self.clock()
        ended_before = await read_not_before(self.store, self.settings.revocation_skew_seconds)
        expired = (
            info.key
            async for info in self.store.list(keys.SESSIONS)
            if sweepable(info, self.settings, now)
            or (
                is_session_key(info.key)
                and (
                    opened_before(info, ended_before, self.settings.revocation_skew_seconds)
                    or ending_recorded(self.blacklist, info.key)
                )
            )
        )
        return await delete_as_listed(self.store, expired)


def opened_before(info: ObjectInfo, not_before_ms: int, skew_seconds: int) -> bool:
    """Whether the listed session was opened before the end of every session
    (`every_session`): the time its id begins with, held to its listed Last-Modified
    (`session_times`), which every host reads alike."""
    return opened_ms(keys.id_from_key(info.key), info.last_modified, skew_seconds) < not_before_ms
