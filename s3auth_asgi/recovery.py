"""Password reset and email verification: the flows that reach a user through the mail.

    request_password_reset(name)     mail a reset link to the account, if there is one
    reset_password(token, password)  set the password, end every session, spend the token
    send_email_verification(user)    mail a verification link to the user's address
    request_email_verification(name) the same, by name, for a user who is not logged in
    verify_email(token)              mark the address verified, spend the token

No enumeration: the two `request_*` answer nothing, and make the same requests whether the
name is an account's, nobody's, a disabled account's or (for a verification) an already
verified one's: the index GET, a user GET (of a user that does not exist, for a name that
is nobody's) and one token PUT (a decoy, where nothing is mailed: `account_tokens`). The
mail is sent in the background (`mail.delivery`), so it adds no time either. Not quite the
same time: a found object is read whole and a missing one is not, so an account's name
(two objects found) takes a fraction of a millisecond longer; the per-account rate limits
leave few tries to measure that with. A caller's `admit` (`Admit`), its limits per
account, is asked about whoever the name leads to, an account or not.

Request budgets: request_password_reset and request_email_verification 3 (fewer for a
name that cannot be one), and what `admit` makes; send_email_verification 1; reset_password
7: token GET, user GET, LIST of the sessions (with a revocation create and a batch DELETE
when there are any: they end before the new password is written, `user_records`), user PUT
(If-Match: the write that spends the token), generation-marker PUT, LIST of the sessions
again, batch DELETE (the token, superseded markers, and the sessions a login wrote
meanwhile, with a revocation create for those); verify_email 4: token GET, user GET, user
PUT, DELETE. Both 1 PUT more for a record that has a session generation (once its password
has changed, or it has been disabled or had its privileges changed): the read of the record
writes that generation's marker if it is missing (`user_records`). So a reset costs 7 to
10 (a revocation more for sessions written meanwhile), a verification 4 or 5.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec

from .account_tokens import AccountTokens, InvalidAccountTokenError, Purpose
from .errors import UserNotFoundError
from .identifiers import fold
from .mail import MailDelivery
from .mail.message import MessageKind
from .models import AccountToken, User
from .name_index import parse_name
from .session_generation import next_generation
from .storage.access import delete_quietly, get_or_none
from .user_directory import UserDirectory

Admit = Callable[[str], Awaitable[bool]]
"""Asked, once the name is resolved, whether a mail to the account it leads to may go
(`NameLookup.owner_key`: the owner's whichever name was asked about, or for a name that is
nobody's, that name's own); when not, nothing is mailed and a decoy token is issued, as for
a name that is nobody's. The caller's limits per account (the auth app's `recovery_account`
and `recovery_inbox`)."""

_KINDS: dict[Purpose, MessageKind] = {
    "password-reset": "password_reset",
    "email-verification": "email_verification",
}


def still_bound(record: AccountToken, user: User, purpose: Purpose) -> None:
    """InvalidAccountTokenError unless the account is as the token was issued for: still
    active; the same address, never changed since (not even to another and back); for a
    change of address, the same new address asked for, by the latest request; for a reset
    or a change of address, the same session generation (no new password since); for a
    verification, not yet verified, and never verified since, even if marked unverified
    again (`User.verified_changes`)."""
    changing = purpose == "email-change"
    address = user.pending_email if changing else user.email
    if not user.is_active:
        raise InvalidAccountTokenError()
    if fold(address) != record.email or user.email_changes != record.email_changes:
        raise InvalidAccountTokenError()
    if changing and (not address or user.email_requests != record.email_request):
        raise InvalidAccountTokenError()
    if purpose != "email-verification" and user.session_generation != record.user_generation:
        raise InvalidAccountTokenError()
    if purpose == "email-verification" and (
        user.email_verified or user.verified_changes != record.verified_changes
    ):
        raise InvalidAccountTokenError()


class RecoveryOperations(UserDirectory):
    """A part of `S3AuthService`, which sets the attributes below."""

    account_tokens: AccountTokens
    mail: MailDelivery

    async def _account_named(self, name: object) -> tuple[str | None, User | None]:
        """The account `name` (a username or an email) leads to (`NameLookup.owner_key`)
        and its user, when it is active: the index GET and a user GET, whether or not there
        is one (see the module)."""
        if not isinstance(name, str):
            return None, None
        login = await self.resolve_login(parse_name(name))
        if login.index is None and login.normalised is not None:
            await get_or_none(self.store, login.decoy_user_key, User)
            return login.owner_key, None
        found = await self.names.owner(login)
        user = found.value if found is not None else None
        return login.owner_key, user if user is not None and user.is_active else None

    @staticmethod
    async def _admitted(user: User | None, account: str | None, admit: Admit | None) -> User | None:
        """`user`, unless `admit` refuses a mail to `account`. It is asked whether or not
        there is a user to mail, so that what it costs tells nothing either."""
        if admit is None or account is None:
            return user
        return user if await admit(account) else None

    async def _mail_token(self, purpose: Purpose, user: User | None) -> None:
        """Issue a token (a decoy for None) and, for a user, mail it in the background."""
        token = await self.account_tokens.issue(purpose, user)
        if user is not None:
            message = self.mail.compose(
                _KINDS[purpose],
                to=user.email,
                username=user.username,
                token=token,
                lifetime_seconds=self.account_tokens.lifetime(purpose),
            )
            self.mail.send_later(message)

    async def request_password_reset(self, name: object, *, admit: Admit | None = None) -> None:
        """Mail a reset link to the active account `name` names; nothing otherwise, at
        the same cost. `admit`: see `Admit`."""
        account, user = await self._account_named(name)
        await self._mail_token("password-reset", await self._admitted(user, account, admit))

    async def reset_password(self, token: object, new_password: str) -> User:
        """Set the password of the token's account (the policy applies: a refused
        password leaves the token unspent), end all its sessions and spend the token (and
        every other reset token of the account). The address is verified by it, too, and
        a new address waiting for its link is withdrawn (`email_changes`).
        InvalidAccountTokenError for a token that cannot be used. The sessions end first:
        a failure before the password is written leaves the token unspent, to try again.
        As soon as it is written, the account's address is told, whatever fails after
        (`password_changes`)."""
        key, record = await self.account_tokens.redeem("password-reset", token)
        try:
            current = await self._load_user(record.user_id)
        except UserNotFoundError:
            raise InvalidAccountTokenError() from None
        user = current.value
        still_bound(record, user, "password-reset")
        hashed = await self._hash_new_password(new_password, user.username, user.email)

        def change(stored: User) -> User:
            # Checked again on every attempt: a concurrent use of this token, or of
            # another of the account, made the write this one lost to.
            still_bound(record, stored, "password-reset")
            return msgspec.structs.replace(
                stored,
                hashed_password=hashed,
                session_generation=next_generation(stored.session_generation),
                email_verified=True,
                pending_email="",  # its link died with the old password: see `email_changes`
            )

        try:
            return await self._update_ending_sessions(
                user.id, change, current, key, written=self._told_password_changed
            )
        except UserNotFoundError:
            raise InvalidAccountTokenError() from None

    async def send_email_verification(self, user: User) -> bool:
        """Mail a verification link to the user's address (1 PUT); False, and nothing
        done, when it is verified already or no mailer is configured."""
        if user.email_verified or not self.mail.enabled:
            return False
        await self._mail_token("email-verification", user)
        return True

    async def request_email_verification(self, name: object, *, admit: Admit | None = None) -> None:
        """Mail a verification link to the account `name` names, unless it is verified
        already; nothing otherwise, at the same cost. `admit`: see `Admit`."""
        account, user = await self._account_named(name)
        pending = user if user is not None and not user.email_verified else None
        await self._mail_token("email-verification", await self._admitted(pending, account, admit))

    async def verify_email(self, token: object) -> User:
        """Mark the token's address verified, if it is still the account's, and spend the
        token. InvalidAccountTokenError for a token that cannot be used."""
        key, record = await self.account_tokens.redeem("email-verification", token)

        def change(stored: User) -> User:
            still_bound(record, stored, "email-verification")
            return msgspec.structs.replace(stored, email_verified=True)

        try:
            _, updated = await self._update(record.user_id, change)
        except UserNotFoundError:
            raise InvalidAccountTokenError() from None
        await delete_quietly(self.store, key)
        return updated
