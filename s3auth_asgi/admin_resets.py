"""An administrator's start of a user's password reset: the owner is mailed the link that
`/password/forgot` mails (`recovery`, the one maker of reset links), and chooses the new
password; the administrator never knows it (OWASP ASVS 5.0 6.4.6).

Unlike the public request, the caller is told what happened: an administrator can list
every account, so saying that there is none, or that it is disabled, or that no mailer is
configured, hides nothing, and a link that did not go must not be taken for one that did.
A disabled account gets no link, as `/password/forgot` mails it none: a link would not
work on it (`recovery.still_bound`).

The mails are bounded by the owner's inbox budgets for reset mails, the very ones the
public request spends (`admit`, the auth app's `check_mails`): an administrator cannot
mail-bomb an inbox, and a stranger's asks and an administrator's share one bound.

Request budget: 1 GET of the record and the token's PUT, and what `admit` makes; with
`end_sessions`, what a logout everywhere costs (`logout_everywhere`) and 1 GET more: the
link is issued after it, for the new session generation, which the links mailed before
die with.
"""

from __future__ import annotations

from .errors import ConflictError, S3ValidationError, UserNotFoundError
from .mail.message import MailAdmit
from .models import User
from .name_index import owner_account
from .recovery import RecoveryOperations


class NoMailerError(S3ValidationError):
    """A mail asked for where no mailer is configured (neither S3AUTH_SMTP_HOST nor
    S3AUTH_MAIL_OUTBOX): nothing was written or sent. A 403 as `email_change_unavailable`,
    the other request no mailer can serve: retrying does not help, configuring one does."""

    status = 403
    code = "no_mailer"
    title = "No mailer is configured: no link can be sent"


class AccountDisabledError(ConflictError):
    """A link asked for a disabled account, on which it would not work: enable it first.
    Nothing was written or sent."""

    code = "account_disabled"
    title = "The account is disabled: no link would work on it"


class AdminResets(RecoveryOperations):
    """A part of `S3AuthService`."""

    async def send_password_reset(
        self, user_id: str, *, end_sessions: bool = False, admit: MailAdmit | None = None
    ) -> int:
        """Mail the account's owner a reset link (see the module); returns how many
        sessions ended. `end_sessions`: end every session of the account first, as
        `revoke_all_user_tokens` does. `admit`: asked about the owner's inbox before
        anything is written; what it raises refuses the request. NoMailerError,
        UserNotFoundError, AccountDisabledError; nothing is written on any of them."""
        if not self.mail.enabled:
            raise NoMailerError()
        user = await self._active_user(user_id)
        if admit is not None:
            await admit((owner_account(user.id),))
        ended = 0
        if end_sessions:
            ended = await self.revoke_all_user_tokens(user.id)
            # Read again: the link is bound to the session generation the ending wrote.
            user = await self._active_user(user.id)
        await self._mail_token("password-reset", user)
        return ended

    async def _active_user(self, user_id: str) -> User:
        user = await self.get_user_by_id(user_id)
        if user is None:
            raise UserNotFoundError()
        if not user.is_active:
            raise AccountDisabledError()
        return user
