"""Which sessions can still be used, and the per-user cap over them: the one rule that a
refresh, the cap and the sessions page all apply.

A session can be used while it is before its idle and its absolute expiry (each the
earlier of the one written in it and the one today's setting gives: `Session.idle_expiry`,
`absolute_expiry`), was not opened before the account's last change that ended its
sessions (`session_generation`), has not had a spent refresh token of it presented again
(`Session.reused_at`), and was not opened (when `session_times` says) before the end of
every session (`every_session`, as this host last read it), nor ended by a revocation this
host holds (`ending_recorded`); and while no deletion has closed its account, which a
listing tells by a closing marker, and then the record (`session_generation`). Only such
sessions refresh, are shown, and count against `S3AUTH_MAX_SESSIONS_PER_USER`.

The last two a listing tells at no request: a listed session that this host's revocations
(their snapshot, within its bound) say has ended is neither counted, read nor shown, and
its object is deleted on the way (1 batch DELETE, with no revocation: it has one). An
ending that writes its revocation before its DELETE (the cap's, an account change's: not a
logout, which deletes first, `session_endings`) leaves such an object when the DELETE
fails; ranked, it would count against the cap, be read, and be shown as live. That
holds while the revocation is held (an access token's lifetime and the skew allowance,
`blacklist`); a session still left after that, which no listing nor sweep by a host that
held it deleted meanwhile, is judged by the rest of the rule again.

A listing alone does not tell it: the written expiry and the generation are in the object.
A listing that shows no more live sessions than the cap needs no more (none of them can be
beyond it). One that shows more (`session_cap.counted`) has its sessions read, 1 GET each,
and then every one of them that cannot be used is ended with those beyond the cap, so the
next listing is within the cap again and reads nothing: a session that expired under a
shorter idle lifetime than today's, which the listing, judged by today's, takes for live;
a login that raced an account change.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from .blacklist import TokenBlacklist
from .errors import TokenRevokedError
from .identifiers import session_created_ms
from .late_deletes import revoke_then_delete
from .models import Session
from .open_records import open_user
from .revocations import revoked_error
from .session_cap import beyond_cap, counted
from .session_generation import being_deleted, newest_marker, predates, sessions_only
from .session_times import held_to_store
from .settings import S3AuthSettings
from .storage import Store, Versioned, keys
from .storage.access import delete_quietly, gather, get_or_none
from .types import Clock

logger = logging.getLogger("s3auth_asgi")


class CapListing(NamedTuple):
    """What `_end_sessions_beyond_cap` found: the sessions it read that can be used and
    were not ended, the keys of those it ended, the generation of the newest marker
    (`session_generation`), if any, and whether it ended them all as a deletion's closing
    marker and the closed (or gone) record it read told it to."""

    kept: list[Session]
    ended: set[str]
    newest_marker: str | None
    account_closed: bool = False


class SessionRules:
    """The usability rule and the cap, for `SessionOperations`, which sets the attributes."""

    store: Store
    settings: S3AuthSettings
    clock: Clock
    blacklist: TokenBlacklist

    def _now(self) -> int:
        return int(self.clock())

    def _expiry(self, session: Session) -> int:
        """When the session ends: the idle expiry, or the absolute one when earlier."""
        return min(self._idle(session), self._absolute(session))

    def _idle(self, session: Session) -> int:
        return session.idle_expiry(self.settings.refresh_token_seconds)

    def _absolute(self, session: Session) -> int:
        return session.absolute_expiry(self.settings.session_absolute_seconds)

    def _usable(self, session: Session, newest: str | None, now: float) -> bool:
        """Whether the session can still be used (the module's rule); `newest`, the newest
        generation marker of its user (None: none, or not known yet, when only the
        expiries decide)."""
        opened_before_a_change = session.user_generation is not None and predates(
            session.user_generation, newest
        )
        ended_by_reuse = session.reused_at != 0
        return (
            self._expiry(session) > now
            and not opened_before_a_change
            and not ended_by_reuse
            and not self._ended_with_all(session)
        )

    def _held(self, found: Versioned[Session]) -> Session:
        """The session read, its times held to the store's clock (`session_times`)."""
        return held_to_store(found, self.settings.revocation_skew_seconds)

    def _ended_with_all(self, session: Session) -> bool:
        """Whether the session (as `_held` gives it) was opened before the end of every
        session (`every_session`), as this host has read it: by its held opening time, not
        the id's alone, which a login host far ahead would have put past the cut-off. A
        session not held (no `opened_ms`) is judged by its id's time, never as opened at 0."""
        opened = session.opened_ms or session_created_ms(session.id)
        return opened < self.blacklist.snapshot.not_before_ms

    def _revoked(self, session: Session) -> TokenRevokedError | None:
        """Why the revocations this host holds refuse the session (as `_held` gives it), or
        None: its own, a user's naming it, or the end of every session."""
        revoked = self.blacklist.revoked_error({"sid": session.id})
        if revoked is None and self._ended_with_all(session):
            return revoked_error("all")
        return revoked

    async def _end_sessions_beyond_cap(
        self, user_id: str, now: float, own: Session | None = None, *, read_all: bool = False
    ) -> CapListing:
        """List the user's sessions and end, as a logout does (their access tokens refused
        first, then the objects deleted), those beyond the cap and, when the listing shows
        more than the cap, those that cannot be used (see the module). `own`, the session
        being refreshed, was just read (as `_held` gives it): it is judged like the others,
        and ended if it cannot be used. `read_all`: read every listed session, not only when
        over the cap (the sessions page shows them). Markers are not sessions: never ranked,
        read or ended; a deletion's closing marker has the user record read (1 GET), and
        every listed session ended when it is closed or gone (`session_generation`). One
        LIST per 1,000; 1 GET per session read; ending costs 1 revocation create (a
        `session` entry for one, else one `user` entry naming them) and 1 batch DELETE per
        1,000."""
        everything = [info async for info in self.store.list(keys.user_sessions(user_id))]
        listed = sessions_only(everything)
        newest = newest_marker(everything)
        own_key = keys.session(user_id, own.id) if own is not None else None
        if being_deleted(everything) and not await self._account_open(user_id):
            closed = {info.key for info in listed} | ({own_key} if own_key else set())
            if closed:
                await self._end_listed(user_id, closed, "its account is being deleted")
            return CapListing([], closed, newest, account_closed=True)
        # Ended already, by what this host's revocations hold: not counted, read or shown,
        # and their objects, which an ending cut short before its DELETE left, deleted.
        left = {info.key for info in listed if ending_recorded(self.blacklist, info.key)}
        if left:
            listed = [info for info in listed if info.key not in left]
            await delete_quietly(self.store, *sorted(left))
        candidates = counted(listed, self.settings, now, own_key)
        over = len(candidates) > self.settings.max_sessions_per_user
        wanted = [info.key for info in listed] if read_all else candidates if over else []
        to_read = [key for key in wanted if key != own_key]
        found = await gather([get_or_none(self.store, key, Session) for key in to_read])
        read = {
            key: self._held(item)
            for key, item in zip(to_read, found, strict=True)
            if item is not None
        }
        if own is not None:
            read[keys.session(user_id, own.id)] = own
        usable = {key for key, session in read.items() if self._usable(session, newest, now)}
        if over:
            excluded = [key for key in candidates if key not in usable]  # or gone meanwhile
            opened = {key: session.opened_ms for key, session in read.items()}
            beyond = beyond_cap(listed, self.settings, now, own_key, excluded, opened)
            ended = {*beyond, *(key for key in excluded if key in read)}
        else:
            ended = {own_key} if own_key is not None and own_key not in usable else set()
        if ended:
            await self._end_listed(user_id, ended, "beyond the cap or unusable")
        kept = [session for key, session in read.items() if key in usable and key not in ended]
        return CapListing(kept, ended, newest)

    async def _account_open(self, user_id: str) -> bool:
        """Whether the user record is there, readable and not closed by a deletion."""
        return await open_user(self.store, user_id) is not None

    async def _end_listed(self, user_id: str, ended: set[str], why: str) -> None:
        ids = sorted(keys.id_from_key(key) for key in ended)

        async def revoke() -> None:
            if len(ids) == 1:
                await self.blacklist.revoke_session(ids[0])
            else:
                await self.blacklist.revoke_user(user_id, ids)

        await revoke_then_delete(self.clock, revoke, lambda: self.store.delete_many(sorted(ended)))
        logger.info("ended %d session(s) of user %s: %s", len(ids), user_id, why)


def ending_recorded(blacklist: TokenBlacklist, session_key: str) -> bool:
    """Whether the revocations this host holds (`blacklist.snapshot`, no request) say that
    the session at `session_key` has ended: its own revocation, a user's naming it, or the
    end of every session (`every_session`). No such session can be used again: a refresh
    of it is refused. An ending that writes its revocation before its DELETE (the module's)
    leaves such an object behind when it is cut short between the two."""
    user_id = session_key.split("/")[1]
    claims = {"sub": user_id, "sid": keys.id_from_key(session_key)}
    return blacklist.snapshot.reason(claims) is not None
