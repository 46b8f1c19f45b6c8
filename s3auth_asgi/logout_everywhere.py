"""Logging out everywhere: a new session generation, then the end of every session opened
from an older one.

Why a generation. The sessions are ended as any ending does: their revocation written, then
their objects deleted. A failure between the two leaves sessions whose access tokens are
refused, the caller's among them, so the caller cannot try again over HTTP; and the
revocation is held only as long as an access token is accepted (`blacklist`). A refresh
judged by revocations alone would refuse such a session for that long, then let it go on,
for all that its owner asked for it to end. The generation is what stays: the change
writes a new one in the user record (If-Match, as any change: `user_records`), then its
marker, and only then lists and ends the sessions, so that a session the ending leaves
behind, whenever it is refreshed and on whichever host, is of a generation older than the
marker its refresh lists anyway, and is refused and ended there (`session_generation`):
no request more on a login or a refresh. So is a login that read the record before the
change and wrote its session after the listing.

Unlike a new password or a disabling (`user_records`), nothing here is checked that a retry
could find gone, and no session is ended before the record's write: a failure before the
marker lands has revoked nothing, the caller's access token still works, and the retry
(or the next change of the account, as `user_records` says) writes the marker. The
links mailed for a reset or a new address are bound to the generation and die with it, as
at a new password (`recovery.still_bound`); so does the address waiting for such a link,
and a remembered device's standing (`app.devices`).

A password change by the account's owner begins with one, for the same reason
(`password_changes`).

Request budget: 1 GET of the user record (and its generation's marker create, when it has
one: `user_records`), 1 conditional PUT, 1 marker create, 1 LIST of the sessions, and when
there are any, 1 revocation create and 1 batch DELETE per 1,000 (the superseded marker goes
in it, which then happens even when there is no session). Of an id with no user record, or
one being deleted: 1 GET, then the LIST, revocation and DELETE alone.
"""

from __future__ import annotations

import msgspec

from .errors import UserNotFoundError
from .models import User
from .session_generation import next_generation
from .storage import Versioned
from .user_records import Change, UserRecords


def renewed(user: User) -> User:
    # The address waiting for its link waits no more: the link died with the generation.
    return msgspec.structs.replace(
        user, session_generation=next_generation(user.session_generation), pending_email=""
    )


class LogoutEverywhere(UserRecords):
    """Ending every session of a user. A part of `S3AuthService`."""

    async def revoke_all_user_tokens(self, user_id: str) -> int:
        """Log out everywhere: every session and every access token issued before now
        (see the module). Returns how many sessions were ended: not those the listing shows
        had expired already, which are deleted all the same."""
        try:
            current = await self._load_user(user_id)
        except UserNotFoundError:
            # Nothing to renew: a deletion's marker outranks every generation once written.
            return await self._end_all_sessions(user_id)
        ended, _ = await self._renew_and_end(user_id, renewed, current)
        return ended

    async def _renew_and_end(
        self, user_id: str, renew: Change, current: Versioned[User]
    ) -> tuple[int, Versioned[User]]:
        """Write `renew` (a change that writes a new generation), its marker, then end the
        sessions of the generation it replaced and older ones (see the module). Returns
        how many sessions were ended, and the record as written."""
        previous, updated = await self._write_change(user_id, renew, current)
        ended = await self._end_all_sessions(
            user_id,
            generation=updated.value.session_generation,
            up_to=previous.session_generation,
        )
        return ended, updated
