"""Password changes: the user's own, which checks the current password first, and an
administrator's, which does not. Either writes a new session generation with the new hash
and ends every session of the user (`session_generation`), withdraws a new address
waiting for its link (`email_changes`) and, as soon as the record is written, mails the
account's address a notice (no link) in the background, so that its owner hears of a change
that was not theirs: a failure after the write leaves the password changed, and a retry
finds nothing to change (the reset link spent, the current password the new one), so the
failed request is the one to tell.
That address is whatever the registrant typed, verified or not, so the owner's change asks
its `admit` (`MailAdmit`) first, once the new password is found acceptable: one it refuses
changes and mails nothing.

An administrator's new password ends the sessions before it writes the record
(`user_records`), and a failure between their revocation and their DELETE leaves them for
the administrator's retry to end. The owner's own cannot be left so: the caller's access
token is revoked with the others, so the caller's retry is refused, and the revocation is
held only an access token's lifetime. So the owner's change logs out everywhere first (a
new generation and its marker, then the sessions ended: `logout_everywhere`), each step
refused where the change would be (the password checked no longer the record's,
`require`), then writes the password with another generation, that generation's marker,
and lists the sessions again for a login with the old password that wrote its session
meanwhile. A failure up to the revocation leaves the caller's token working for the retry;
one after it leaves the old password in place and every earlier session refused at
refresh, for good, by the marker: the owner logs in with the old password and changes it
again. Request budget: that of an administrator's change, and 1 conditional PUT of the
record, 1 marker PUT and 1 DELETE (the first marker, superseded) more; then the caller's
new pair (`session_opening`: the session create and the record read back).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import msgspec

from .errors import InvalidCredentialsError, TokenRevokedError
from .logout_everywhere import LogoutEverywhere, renewed
from .mail import MailDelivery
from .mail.message import MailAdmit
from .models import TokenPair, User
from .name_index import owner_account
from .new_passwords import NewPasswords
from .session_generation import next_generation
from .storage import Versioned
from .user_records import Change, if_fields_are, password_of


class PasswordChanges(NewPasswords, LogoutEverywhere):
    """Changing and confirming a user's password. A part of `S3AuthService`, which sets the
    attributes below."""

    mail: MailDelivery

    async def change_password(
        self,
        user_id: str,
        current_password: str,
        new_password: str,
        *,
        device_info: str | None = None,
        ip_address: str | None = None,
        require: Callable[[User], object] | None = None,
        admit: MailAdmit | None = None,
    ) -> TokenPair:
        """Check the current password, set the new one, revoke every session (this one
        included) and return a fresh token pair for the caller. `require`: as
        `update_user`'s; a change that went ahead on a disabled account would open a
        session of the newest generation, which outlives the disabling. `admit`: asked
        about the notice (see the module), where a mailer would send it. TokenRevokedError
        when, once the password was written, the account was disabled, deleted or given
        another password before the new pair was opened (`session_opening`)."""
        current = await self._load_user(user_id)
        if not isinstance(current_password, str):
            raise InvalidCredentialsError()
        matches, _ = await self.passwords.verify(current_password, current.value.hashed_password)
        if not matches:
            raise InvalidCredentialsError("The current password is wrong")
        user = await self._replace_password(
            current, new_password, checked=True, require=require, admit=admit
        )
        try:
            return await self.create_token_pair(
                user, device_info=device_info, ip_address=ip_address
            )
        except InvalidCredentialsError:
            # The account was disabled, deleted or given another password once this change
            # landed: the caller's session has ended with the change, and opens no other.
            raise TokenRevokedError("The session has ended: the account changed") from None

    async def confirm_password(self, user: User, password: str) -> User:
        """`user`, once `password` is found to be its (one verification);
        InvalidCredentialsError otherwise."""
        matches, _ = await self.passwords.verify(password, user.hashed_password)
        if not matches:
            raise InvalidCredentialsError("The current password is wrong")
        return user

    async def set_password(self, user_id: str, new_password: str) -> None:
        """Set a password without the old one (an administrator's reset); revokes every
        session of the user."""
        await self._replace_password(await self._load_user(user_id), new_password)

    async def _replace_password(
        self,
        current: Versioned[User],
        new_password: str,
        *,
        checked: bool = False,
        require: Callable[[User], object] | None = None,
        admit: MailAdmit | None = None,
    ) -> User:
        """Set the password and end every session; `checked`: the current password was
        verified on `current`, and must still be the record's; `require`: as
        `update_user`'s; `admit`: see the module."""
        user = current.value
        admitted = None
        if admit is not None and self.mail.enabled:
            admitted = partial(admit, (owner_account(user.id),))
        hashed = await self._hash_new_password(
            new_password, user.username, user.email, admit=admitted
        )

        def change(stored: User) -> User:
            if require is not None:
                require(stored)
            generation = next_generation(stored.session_generation)
            # A new address asked for waits no more: its link, bound to the generation,
            # died with the old password (`email_changes`).
            return msgspec.structs.replace(
                stored, hashed_password=hashed, session_generation=generation, pending_email=""
            )

        if checked:
            return await self._replace_own_password(
                current, if_fields_are(password_of(user), change)
            )
        return await self._update_ending_sessions(
            user.id, change, current, written=self._told_password_changed
        )

    async def _replace_own_password(self, current: Versioned[User], change: Change) -> User:
        """`change`, the owner's new password, made after a logout everywhere (see the
        module): a new generation, its marker, the sessions of the record read and older
        ones ended; then the password, with another generation and its marker, and the
        sessions a login opened meanwhile from the first write's generation ended."""
        user_id = current.value.id

        def renewing(stored: User) -> User:
            change(stored)  # refused where the change would be: no session is ended then
            return renewed(stored)

        _, renewal = await self._renew_and_end(user_id, renewing, current)
        previous, updated = await self._update(user_id, change, renewal)
        await self._told_password_changed(previous, updated)
        await self._end_all_sessions(
            user_id, generation=updated.session_generation, up_to=previous.session_generation
        )
        return updated

    async def _told_password_changed(self, before: User, after: User) -> None:
        """Tell the address of `after`, the record as written with its new password, as
        soon as it is written: what fails after it leaves the password changed, and the
        retry, which finds the change made (the reset link spent, the current password the
        new one), has nothing to tell."""
        self.mail.notify("password_changed_notice", to=after.email, username=after.username)
