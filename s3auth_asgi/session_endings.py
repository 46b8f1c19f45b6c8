"""Ending one session: a logout, by its refresh token or by its own access token, and the
end of a session by its id (the sessions page, an administrator).

Each deletes the session first, then writes its revocation (its access tokens refused
before they expire), so that no failure leaves an ending that comes undone. The DELETE is
what ends a session for good: once it has landed, no refresh of it works on any host,
whatever its clock says. A revocation is held only an access token's lifetime and the skew
allowance (`blacklist`): written first, with the DELETE then failing, it would refuse the
session for that while, and then a copy of its refresh token would refresh again for the
rest of the session's life, unless a refresh, a listing or a sweep had deleted the object
meanwhile (`session_rules.ending_recorded`).

So a failure before the DELETE lands has ended nothing: the session is as it was, its
tokens accepted, and the answer (503) says so; the same request tried again ends it (the
refresh token, or the caller's access token, still authenticates it). A failure after it
(the DELETE's answer lost, the revocation's write failing) leaves no session to refresh,
and at worst the session's access tokens accepted for what is left of their lifetime; the
answer is 503 all the same. Tried again, a logout by the session's own access token writes
the revocation whether the session is there or not: its token is what finishes it. A
logout by refresh token finds no session and answers as for any token of an ended one
(False; 204 over HTTP), writing nothing: with the session gone, nothing tells the token
from a forged one. An ending by id finds none either (False; 404), as for a session ended
already.

A refresh on another host that read the session before the DELETE and writes its rotation
after it is refused: its If-Match, then its GET, find nothing. One whose rotation landed
first, or that answered the previous token within the grace, issued its access token as of
when it read the session, before the DELETE returned; the revocation, timed after that, is
held as long as such a token is accepted, by a host up to the skew allowance ahead too
(`blacklist`). So it is written once, however long the DELETE took (an ending that revokes
first must write it again when late: `late_deletes`).

An ending by id answers for the sessions the sessions page shows (`session_rules`): one
past its idle or absolute expiry, or ended by a reused refresh token, that the sweep has not
deleted yet is not there for it, as for a refresh. Its object is deleted on the way, as a
refresh of it deletes it: without a revocation when it expired, as no access token outlives
its session; with one when a reuse ended it, which is what that ending may have left undone
(the mark refuses it for good, so the revocation may come first there). Which sessions an
account change ended takes a LIST to tell, so those are ended as live; and so is one that
an ending which revokes first (an account change's, the cap's) left when a failure cut it
short before its DELETE, which the sessions page no longer shows: the same request tried
again finishes it, as it would have.

Request budgets: `revoke_refresh_token` and `revoke_session` 1 GET, 1 DELETE, 1 PUT (the
revocation), however long the DELETE took (an expired session's: 1 GET, 1 DELETE; none
there: 1 GET); `revoke_own_session` 1 DELETE and 1 PUT, whether the session is there or
not.
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
        await self._end(session.user_id, session.id)
        return True

    async def revoke_session(self, user_id: str, session_id: str) -> bool:
        """End one of a user's sessions by id (the sessions page's "sign out" button, an
        administrator); False when there is none that can be used (see the module), for
        a well-formed id; SessionNotFoundError (404) for ids that are not ids, which can
        name no session, before any request. For the session of the caller's own access
        token, `revoke_own_session`."""
        if not (is_id(user_id) and is_id(session_id)):
            raise SessionNotFoundError()
        key = keys.session(user_id, session_id)
        found = await get_or_none(self.store, key, Session)
        if found is None:
            return False
        session = self._held(found)
        if session.reused_at:  # ended already: what its ending left undone is finished
            await self._end_reused(session)
            return False
        if not self._usable(session, None, self._now()):
            await delete_quietly(self.store, key)
            return False
        await self._end(session.user_id, session.id)
        return True

    async def revoke_own_session(self, user_id: str, session_id: str) -> None:
        """Log out the session whose access token the caller presented (its `sub` and
        `sid`), as `_end` does, without reading it first. Done again when the session is
        gone: the same token, accepted until then, is what finishes a logout the store
        interrupted. SessionNotFoundError (404) for ids that are not ids, before any
        request."""
        if not (is_id(user_id) and is_id(session_id)):
            raise SessionNotFoundError()
        await self._end(user_id, session_id)

    async def _end(self, user_id: str, session_id: str) -> None:
        """The DELETE, then the revocation: a failure before the DELETE lands ends nothing,
        and one after it leaves no session to refresh (see the module)."""
        await self.store.delete(keys.session(user_id, session_id))
        await self.blacklist.revoke_session(session_id)
