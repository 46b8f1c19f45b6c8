"""Sessions: one object per login, `sessions/{user_id}/{session_id}.json`, holding a
refresh-token family; the token pairs issued from it, their rotation, logging out and the
sweep of expired sessions (opening one, a login's: `session_opening`).

Lifetimes (OWASP ASVS V7.3): a session ends when it has not been refreshed for the idle
lifetime (`S3AUTH_REFRESH_TOKEN_EXPIRE_DAYS`), and at the latest the absolute lifetime
(`S3AUTH_SESSION_ABSOLUTE_LIFETIME_DAYS`) after its login, however often it is refreshed:
each rotation moves the idle expiry to now plus the idle lifetime but never past the
absolute expiry, so no refresh token outlives it, nor any access token (`_pair`). Each is
the earlier of the expiry written in the session and the one today's setting gives
(`Session.idle_expiry`, `absolute_expiry`): a shortened lifetime ends existing sessions,
as the sweep, judging by today's settings, deletes them; a lengthened idle one applies
from a session's next refresh, a lengthened absolute one to new sessions. A session opened
before a change that ended the user's sessions, but written after they were listed, issues
no token (`session_opening`) and is refused at any refresh (`session_generation`). A
user's sessions are capped (`S3AUTH_MAX_SESSIONS_PER_USER`): only the newest that can be
used refresh; `session_rules` holds the one rule of what can be used, which a refresh, the
cap and the sessions page apply alike, and `session_cap` says how the cap is decided and why
it is enforced at refresh time.

Request budgets (object-store requests, asserted in the tests):
- create_token_pair: 2 (session create, user GET: `session_opening`), the cap included;
- refresh_access_token: 3 (session GET, LIST of the user's sessions — one per 1,000 —,
  conditional PUT), and once the token's MAC has matched, the revocation sync (1 LIST,
  1 GET) when this process's snapshot is overdue, as for a bearer token (`freshness`);
  when the LIST shows more live sessions than the cap, 1 GET per other
  one of them; when it finds sessions beyond the cap or, over it, unusable ones, or a
  generation marker newer than the session, 1 revocation create and 1 (batch) DELETE more
  end them; sessions listed that this host's revocations say have ended (an ending cut
  short before its DELETE): not read, 1 batch DELETE more (`session_rules`). When it
  holds a deletion's closing marker (and no `~generation.deleted`), 1 GET of the user
  record more; closed or gone, the revocation and the DELETE end every listed session,
  and the refresh is refused (`session_generation`). The previous token
  within the grace window: 1 GET. A session that a revocation this host has synced names,
  or opened before the end of every session it has read (`every_session`): 1 GET and
  1 DELETE (see "Interrupted endings"); an older token (a reuse): 1 GET, 1 conditional
  PUT (the mark), 1 revocation create and 1 DELETE, and a session marked already, 1 GET
  and those two ("Reuse");
- get_user_active_sessions: 1 LIST + 1 GET per session, the revocation sync first when
  overdue (as a refresh); 1 revocation create and 1 batch
  DELETE more when it ends sessions (beyond the cap, or unusable ones over it), and as for
  a refresh for those this host's revocations say have ended; with a
  deletion's closing marker listed, the record's GET first, and closed, no session's;
- ending all of a user's sessions (`_end_all_sessions`): 1 LIST + 1 batch DELETE per 1,000
  sessions + 1 revocation create; with a generation (an account change, a logout
  everywhere: `logout_everywhere`), 1 PUT more (the generation marker; the superseded one
  goes in the batch DELETE, which then happens even when there is no session).
Each ending that writes its revocation before its DELETE writes it once more when the two
took over a second (`late_deletes`).

Interrupted endings. An ending of several sessions (the cap's, an account change's, a
logout everywhere) writes its revocation before it deletes them (but a logout and an
ending by id delete first, so that they never come undone: `session_endings`; and a reuse
marks the session first: "Reuse"), so a failure between the two leaves sessions whose
access tokens are refused. Where the caller's own token is among them (a logout everywhere,
a password change by its owner), a retry over HTTP is refused too and cannot finish the
ending; a refresh of such a session (by whoever holds it) is refused and deletes it,
judged by this host's revocations, which it brings within their bound first, as the check
of an access token does (`freshness`).
Those are held an access token's lifetime only: what refuses such a session for good is the
generation marker a logout everywhere (and an owner's password change, which begins with
one: `password_changes`) writes before its revocation (`logout_everywhere`). Elsewhere the
same request tried again finds the sessions and ends them.

A session is a single object, rotated with If-Match, so a crash leaves either the old or the
new generation, never both.

Reuse. A refresh token older than the current one ends the session when it is read as
such: it was spent, and whoever presents it again holds a copy (but the previous one within
the grace window). The token family is compromised (RFC 9700 §4.14.2), and its current
token may be the thief's, whom no retry can be left to: so the ending first marks the
session as reused (`Session.reused_at`, If-Match on the rotation it read), which from then
on refuses every refresh of it on every host for good, then revokes its access tokens, then
deletes it. A failure before the mark lands ends nothing, and the token presented again is
read as a reuse again; one after it is finished by whichever refresh of the session comes
next, which answers the spent tokens `refresh_token_reused` as the first did, and the
current one `token_revoked`; a failed DELETE leaves only the mark, for that refresh or the
sweep to delete, and does not fail the answer.

A refresh that read its token current and then lost its write is concurrent with the
rotations that won: after one, it gets the winner's pair; after more (the holder's other
request won and the holder rotated again before this write was refused), it is refused
(`token_revoked`) and ends nothing, for whoever presented it did so while it was current,
and the session's current token may be in the holder's hands. If a thief made those
rotations, the refused client's next use of its token is read as old, and ends the session.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging

import msgspec

from .blacklist import TokenBlacklist
from .errors import (
    InvalidTokenError,
    RefreshTokenReuseError,
    RotatedMeanwhileError,
    S3AuthError,
    TokenExpiredError,
    TokenRevokedError,
)
from .hooks import Hooks
from .identifiers import require_user_id
from .keys.keyset import KeyEntry
from .last_modified import latest_written
from .late_deletes import revoke_then_delete
from .models import Session, TokenPair
from .privileges import granted_scopes, is_administrator
from .session_cap import listed_as_expired
from .session_generation import markers_older_than, opened_up_to, sessions_only, write_marker
from .session_rules import SessionRules
from .settings import S3AuthSettings
from .storage import Store, StoreConflict, keys
from .storage.access import delete_quietly, get_or_none
from .tokens import AccessTokenFields, TokenCodec
from .types import Clock

logger = logging.getLogger("s3auth_asgi")

_ROTATE_ATTEMPTS = 5


class SessionOperations(SessionRules):
    """Opens, rotates, lists and ends sessions; writes the revocations that make an ended
    session's access tokens refused before they expire. A half of `S3AuthService`, which
    sets the attributes below."""

    store: Store
    settings: S3AuthSettings
    clock: Clock
    tokens: TokenCodec
    blacklist: TokenBlacklist
    hooks: Hooks

    def _token_fields(
        self, session: Session, now: int, key: KeyEntry, expiry: int
    ) -> AccessTokenFields:
        """What `issue_access_token` makes a token of `session` from, `expiry` its end."""
        return AccessTokenFields(
            key=key,
            user_id=session.user_id,
            username=session.username,
            session_id=session.id,
            # Sessions opened before the admin rule (`privileges`) get it at their refresh.
            is_admin=is_administrator(session.is_admin, session.scopes),
            scopes=granted_scopes(session.is_admin, session.scopes),
            now=now,
            extra_claims=session.claims,
            # No access token outlives its session: once the session has ended, its object
            # may be gone, and then no logout could name the token to revoke it.
            not_after=expiry,
            auth_time=session.authenticated_at(),
            amr=session.amr,
        )

    def _check_token_fits(self, session: Session, now: int, key: KeyEntry) -> None:
        """TokenTooLargeError, before the session is written, when its tokens would not fit
        in what verifiers read: scopes given before they were bounded (`token_budget`)."""
        fields = self._token_fields(session, now, key, self._expiry(session))
        self.tokens.check_access_token_fits(**fields)

    async def _pair(self, session: Session, now: int, key: KeyEntry) -> TokenPair:
        expiry = self._expiry(session)
        access, claims = self.tokens.issue_access_token(
            **self._token_fields(session, now, key, expiry)
        )
        refresh = self.tokens.make_refresh_token(
            session.user_id, session.id, session.generation, session.secret
        )
        return TokenPair(
            access_token=access,
            refresh_token=refresh,
            expires_in=int(claims["exp"]) - now,
            refresh_expires_in=max(expiry - now, 0),
        )

    async def refresh_access_token(self, refresh_token: str) -> TokenPair:
        """Rotate: a new pair for the current refresh token, exactly once.

        The immediately previous token, within `refresh_grace_seconds` of the rotation,
        gets the current pair again (a client that lost the response stays logged in).
        Any older token revokes the whole session: it has been stolen or replayed; but not
        when it was current as this refresh read it (the module's "Reuse"). A
        session past its idle or absolute expiry is refused (TokenExpiredError), and so is
        one beyond the user's session cap (TokenRevokedError; see `session_cap`), and one
        opened before the account's last change (TokenRevokedError; `session_generation`).
        """
        token = self.tokens.parse_refresh_token(refresh_token)
        # The grace window is measured from when the token was presented: a request whose
        # reads (the stored keys', the session's) waited on the store is not late for that.
        presented = self.clock()
        # Before the rotation is written: one the client never hears of would make its next
        # try, after the grace, a reuse.
        signing = await self.tokens.signing_key()
        key = keys.session(token.user_id, token.session_id)
        # Found current (and its cap checked): rotations that beat this one's write are
        # concurrent with it, never a reuse. One answers it whatever the two hosts' clocks
        # say; after more it is refused, and the session goes on (the module's "Reuse").
        was_current = False
        for _ in range(_ROTATE_ATTEMPTS):
            found = await get_or_none(self.store, key, Session)
            if found is None:
                raise TokenRevokedError("The session has ended")
            session = self._held(found)
            now = self._now()
            if not self.tokens.refresh_mac_matches(token, session.secret):
                raise InvalidTokenError("The refresh token is not valid")
            # Judged by this process's revocations (an ending interrupted before its DELETE,
            # the end of every session) within their bound, as a bearer token is: not as
            # of whenever a request that verifies one last came by.
            await self.blacklist.ensure_fresh()
            if session.reused_at:  # ended by a reuse: finished here, answered alike
                await self._end_reused(session)
                if token.generation < session.generation:
                    raise RefreshTokenReuseError()
                raise TokenRevokedError("The session has ended")
            revoked = self._revoked(session)
            if revoked is not None:
                # An ending whose revocation landed and whose DELETE failed: its caller's
                # access token is refused, so no retry of theirs finishes it; this does.
                await delete_quietly(self.store, key)
                raise revoked
            if not self._usable(session, None, now):  # expired: the LIST cannot change that
                await delete_quietly(self.store, key)
                raise TokenExpiredError(
                    "The session has expired"
                    if self._idle(session) <= now
                    else "The session has reached its maximum lifetime; log in again"
                )
            self._check_token_fits(session, now, signing)
            absolute = self._absolute(session)
            if token.generation == session.generation:
                if not was_current:  # a rotation that lost a race has checked already
                    listing = await self._end_sessions_beyond_cap(session.user_id, now, session)
                    if key in listing.ended:
                        if not listing.account_closed and self._usable(
                            session, listing.newest_marker, now
                        ):
                            raise TokenRevokedError(
                                "The session has ended: newer sessions of the account took its "
                                "place"
                            )
                        logger.info("session %s predates its account's change; ended", session.id)
                        raise TokenRevokedError("The session has ended: the account changed")
                    was_current = True
                rotated = msgspec.structs.replace(
                    session,
                    generation=session.generation + 1,
                    rotated_at=self.clock(),
                    last_used_at=now,
                    expires_at=min(now + self.settings.refresh_token_seconds, absolute),
                    # Written down for objects from before the field, fixed from then on.
                    absolute_expires_at=absolute,
                )
                try:
                    await self.store.replace(key, rotated, found.etag)
                except StoreConflict:
                    continue  # another refresh won; read again to answer from its result
                return await self._pair(rotated, now, signing)
            if token.generation == session.generation - 1 and (
                was_current or self._within_grace(presented, session, found.last_modified)
            ):
                return await self._pair(session, now, signing)
            if was_current:  # rotated twice or more since it was read current
                logger.info("refresh of session %s lost to later rotations", session.id)
                raise RotatedMeanwhileError("The refresh token was rotated meanwhile")
            if token.generation < session.generation:
                ended = msgspec.structs.replace(session, reused_at=now)
                try:
                    await self.store.replace(key, ended, found.etag)
                except StoreConflict:
                    continue  # rotated meanwhile: the token is still old, read again
                logger.warning("refresh token reuse; session %s revoked", session.id)
                await self._end_reused(ended)
                raise RefreshTokenReuseError()
            raise InvalidTokenError("The refresh token is not valid")
        raise TokenRevokedError("The session changed concurrently; log in again")

    def _within_grace(self, presented: float, session: Session, written: dt.datetime) -> bool:
        """Whether the previous token, presented at `presented` by this host's clock, is
        within the grace of the rotation, timed by the rotating host's clock. This one may
        run up to the skew allowance ahead, which must not turn a client's prompt retry into
        a reuse that ends its session: so the window is widened by the allowance, but by no
        more than the grace itself, as it is also that much longer that a stolen previous
        token goes unnoticed. A host whose clock is behind lengthens it by as much; no grace
        stays none, where the rotation looks yet to come by a clock behind. A rotation's
        time counts at most the allowance past the store's Last-Modified of the session
        (`written`, whole seconds): one by a clock further ahead (a host booted ahead, set
        right since) would answer a stolen previous token on every host for that long."""
        grace = self.settings.refresh_grace_seconds
        skew = self.settings.revocation_skew_seconds
        allowance = min(skew, grace)
        rotated_at = min(session.rotated_at, latest_written(written, skew))
        return grace > 0 and presented - rotated_at < grace + allowance

    async def _end_reused(self, session: Session) -> None:
        """Finish the ending of a session marked as reused: its access tokens refused, then
        its object deleted. The mark refuses every refresh of it already, on every host and
        for good, so a failed DELETE leaves nothing that works (whoever refreshes it next
        tries again; the sweep deletes it at the latest): it does not fail the answer."""
        await self.blacklist.revoke_session(session.id)
        with contextlib.suppress(S3AuthError):
            await self.store.delete(keys.session(session.user_id, session.id))

    async def _end_all_sessions(
        self,
        user_id: str,
        *also_delete: str,
        generation: str | None = None,
        up_to: str | None = None,
    ) -> int:
        """List the user's sessions, revoke exactly those (one entry naming them, so no
        host's clock decides which sessions it covers, and a session opened afterwards is
        not among them), then delete them and `also_delete` (a deleted user's own objects,
        which then cost no extra request) in batch DELETEs. A failure after the revocation
        leaves the tokens refused, and a retry finds the sessions to delete.

        `generation`, after an account change that wrote it to the user record: its marker
        is written before the LIST, and the markers it supersedes are deleted with the
        sessions; for a deleted user (`keys.DELETED_GENERATION`) the marker is written
        after the DELETE (`session_generation` says why). `up_to`, for an account change:
        the generation of the record it decided on; only the sessions opened from that
        generation or an older one are ended (`session_generation.opened_up_to`)."""
        require_user_id(user_id)
        deleting = generation == keys.DELETED_GENERATION
        if generation is not None and not deleting:
            await write_marker(self.store, user_id, generation)
        listed = [info async for info in self.store.list(keys.user_sessions(user_id))]
        sessions = sessions_only(listed) if up_to is None else opened_up_to(listed, up_to)
        session_keys = [info.key for info in sessions]
        superseded = markers_older_than(listed, generation) if generation is not None else []
        ended = [keys.id_from_key(key) for key in session_keys]
        if session_keys or also_delete or superseded:
            await revoke_then_delete(
                self.clock,
                (lambda: self.blacklist.revoke_user(user_id, ended)) if ended else None,
                lambda: self.store.delete_many([*also_delete, *session_keys, *superseded]),
            )
        if deleting:
            await write_marker(self.store, user_id, keys.DELETED_GENERATION)
        now = self.clock()
        return sum(not listed_as_expired(info, self.settings, now) for info in sessions)
