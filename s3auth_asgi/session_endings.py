"""Ending one session: a logout, by its refresh token or by its own access token, and the
end of a session by its id (the sessions page, an administrator).

Two orders, by who can try again. Whoever names a session by its refresh token or by its
id (another of the user's sessions, an administrator) is not refused by the ending: it
writes the session's revocation, then deletes the session, and a failure between the two
leaves the session there for the same request tried again to find and end; meanwhile its
access tokens are refused, and a refresh of it, on a host that has synced the revocation,
deletes it (`sessions`). Nor does it count against the cap or show on the sessions page:
a host that holds the revocation and lists the session (a refresh of any of the user's
sessions, the sessions page, its sweep) deletes it (`session_rules`). The revocation is
held an access token's lifetime: a session still left after it, which none of those
found, refreshes again until the request is tried again.

A logout by the session's own access token (`revoke_own_session`: `POST /logout` without a
refresh token, `DELETE /sessions/{its id}`) is another matter: once the revocation lands,
that token is refused, so the caller's retry is a 401 and could never delete what a
failure left; and the revocation is held only an access token's lifetime (`blacklist`),
after which a copy of the refresh token would refresh again. So it deletes the session
first, then writes the revocation. A failure before the DELETE lands leaves the logout
undone and the token accepted; one after it leaves no session to refresh on any host,
whatever its clock says, and the token accepted (for at most its lifetime) until the retry,
which that token still makes, writes the revocation: the session being gone already is no
reason to skip it. A refresh that read the session before the DELETE and writes after it is
refused (its If-Match finds nothing), and an access token issued before it is of the
session the revocation names.

An ending by id answers for the sessions the sessions page shows (`session_rules`): one
past its idle or absolute expiry, or ended by a reused refresh token, that the sweep has not
deleted yet is not there for it, as for a refresh. Its object is deleted on the way, as a
refresh of it deletes it: without a revocation when it expired, as no access token outlives
its session; with one when a reuse ended it, which is what that ending may have left undone.
Which sessions an account change ended takes a LIST to tell, so those are ended as live;
and so is one whose ending by id a failure cut short before its DELETE, which the sessions
page no longer shows: the same request tried again finishes it, as it would have.

Request budgets: `revoke_refresh_token` and `revoke_session` 1 GET, 1 PUT (the revocation),
1 DELETE, and 1 PUT more when the two took over a second (`late_deletes`; an expired
session's: 1 GET, 1 DELETE); `revoke_own_session` 1 DELETE and 1 PUT, whether the session
is there or not.
"""

from __future__ import annotations

from .errors import InvalidTokenError, SessionNotFoundError
from .identifiers import is_id
from .models import Session
from .sessions import SessionOperations
from .storage import keys
from .storage.access import delete_quietly, get_or_none


class SessionEndings(SessionOperations):
    """Ending one session. A part of `S3AuthService`."""

    async def revoke_refresh_token(self, refresh_token: str) -> bool:
        """Log out one session (its access tokens too); False when it had already ended."""
        token = self.tokens.parse_refresh_token(refresh_token)
        key = keys.session(token.user_id, token.session_id)
        found = await get_or_none(self.store, key, Session)
        if found is None:
            return False
        session = found.value
        if token.generation > session.generation or not self.tokens.refresh_mac_matches(
            token, session.secret
        ):
            raise InvalidTokenError("The refresh token is not valid")
        await self._end(session)
        return True

    async def revoke_session(self, user_id: str, session_id: str) -> bool:
        """End one of a user's sessions by id (the sessions page's "sign out" button, an
        administrator); False when there is none that can be used (see the module). For
        the session of the caller's own access token, `revoke_own_session`."""
        if not (is_id(user_id) and is_id(session_id)):
            raise SessionNotFoundError()
        key = keys.session(user_id, session_id)
        found = await get_or_none(self.store, key, Session)
        if found is None:
            return False
        session = found.value
        if session.reused_at:  # ended already: what its ending left undone is finished
            await self._end_reused(session)
            return False
        if not self._usable(session, None, self._now()):
            await delete_quietly(self.store, key)
            return False
        await self._end(session)
        return True

    async def revoke_own_session(self, user_id: str, session_id: str) -> None:
        """Log out the session whose access token the caller presented (its `sub` and
        `sid`): the session deleted, then its access tokens revoked (see the module). Done
        again when the session is gone: the same token, accepted until then, is what
        finishes a logout the store interrupted."""
        if not (is_id(user_id) and is_id(session_id)):
            raise SessionNotFoundError()
        await self.store.delete(keys.session(user_id, session_id))
        await self.blacklist.revoke_session(session_id)
