"""A user's own change of address: asked for with the password, confirmed by a link mailed
to the new address.

    request_email_change(user_id, email)  the new address waits; links to it and a notice
                                          to the address the account has
    confirm_email_change(token)           the account moves to the new address, and the
                                          address it had is told

Why it waits. An address applied at once would, on a typo, release the old address and
mail every later reset to one nobody reads, and with a verified address required lock the
owner out; and whoever holds a session and the password would move the account's mail,
and every reset with it, to an address of theirs without the owner hearing of it. So the
new address is kept beside the account's (`User.pending_email`), which stays the account's
for logins, resets and mail, verified or not, until a link mailed to the new address is
opened; and the address the account has is told of the request (a notice with no link),
so its owner can change the password, which withdraws the request. Once the link moves
the account, the address it had is told again (a notice with no link, naming the new
address as every notice of a change of address does), as soon as the record is written:
the first notice's advice, a reset from there, no longer reaches the account, and whoever
moved it knew the password. No link undoes the move: one mailed to the old address would
let whoever reads that inbox take the account back after its owner left it (often why an
owner moves), and would leave the password the mover knew. The owner asks the operators.

The new address waits only while its link works: the record keeps the link's times
(`User.pending_email_at`, `_expires_at`) and the store's Last-Modified of its token
(`_stored_at`, read back once the token is written), so that whoever shows it
(`public_user`) judges its expiry with the link's check's own rule and inputs
(`link_expiry.link_deadline`), at no request, and shows nothing waiting once no link can
confirm it, whatever the clock of the host that issued the link read.

The link is an account token (`account_tokens`, purpose `email-change`): an HMAC of it
stored, single use, expiring with the verification links. It works only while the record
is as it was issued for (`recovery.still_bound`): the same new address, by the latest
request (`User.email_requests`, counted by every request, so an address asked for again
does not revive the earlier link), the same address, the same session generation (a new
password ends it) and an active account.

Names. The request reserves nothing: a reservation would let anyone with an account hold
addresses that are not theirs, for as long as they like. It is told at once of an address
that is somebody else's (a look-up, which decides nothing), and the new address's index
entry is claimed when the link is opened, as an administrator's change of address claims
it (`accounts`, `name_claims`): the claim, the record's If-Match write, the old entry's
release. A claim that loses (the address was taken meanwhile, or a use of the same link
at once claimed it first) is 409 `email_taken` and writes nothing; the request still
waits, and its link works if the address is freed before it expires.

Mail. Both mails go to addresses the caller chose: the new one, and the one the account has,
which its registrant typed and need not have verified. So a request that mails asks its
`admit` (`MailAdmit`) first, with the inboxes it would mail, once the new address is known
to be nobody else's: one it refuses writes and mails nothing, and its error is the
request's. The auth app's counts them against the budgets of the reset and verification
mails, per inbox (`AuthRateLimits.check_mails`). The notice that the link moved the
account needs a link, and each link such a request: their budgets bound it too.

Without a mailer no link can be sent: the change applies at once, unverified, as an
administrator's does, unless a verified address is required (`require_verified_email`),
where that would lock the owner out: refused (`EmailChangeUnavailableError`).

Request budgets: request_email_change 5 (the record GET, the new address's index GET and,
when it is indexed, its user GET; the link's token PUT and its GET, which reads its
Last-Modified back; the record PUT), 2 for the address
the account has (the GET and the PUT), what `admit` makes, and without a mailer what
`update_user` costs;
confirm_email_change 8 (token GET, record GET, the old address's index GET, the new one's
create, the record PUT, the release's PUT and DELETE, the token DELETE). Both 1 PUT more
for a record that has a session generation (`user_records`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import msgspec

from .account_tokens import InvalidAccountTokenError
from .accounts import UNSET
from .errors import EmailChangeUnavailableError, EmailTakenError, UserNotFoundError
from .identifiers import clean_email
from .mail.message import MailAdmit
from .models import PublicUser, User
from .name_index import owner_account, parse_name
from .recovery import RecoveryOperations, still_bound
from .storage.access import delete_quietly

_BINDING = ("email", "email_changes", "email_requests", "session_generation")
"""What a link for a new address is bound to besides the address (`recovery.still_bound`):
a request writes only over the record its link was made for."""


@dataclass(frozen=True, slots=True)
class EmailChange:
    """The outcome of a change of address, asked for or confirmed."""

    user: User
    """The record as written."""
    previous_email: str
    """The account's address before the change."""

    @property
    def completed(self) -> bool:
        """Whether the account moved to another address (else the new one waits, or none
        was asked for)."""
        return self.user.email != self.previous_email


class EmailChanges(RecoveryOperations):
    """A part of `S3AuthService`."""

    async def request_email_change(
        self,
        user_id: str,
        email: str,
        *,
        full_name: str | None = UNSET,
        profile: dict[str, Any] = UNSET,
        expect: Mapping[str, Any] | None = None,
        require: Callable[[User], object] | None = None,
        admit: MailAdmit | None = None,
    ) -> EmailChange:
        """Ask for `email` as the user's address (see the module): a link is mailed to it
        and a notice to the address the account keeps meanwhile. The address it has, as
        `clean_email` stores it, withdraws a request; one equal to it only once folded
        (another case before the @, `ss` for `ß`) waits as any other. `full_name`,
        `profile`: changed in the same write, as by `update_user`; `expect`, `require`: as
        `update_user`'s; `admit`: see `MailAdmit`, asked only where a mail would go.
        EmailTakenError for an address that is somebody else's."""
        address = clean_email(email)
        changes = self._checked_changes(full_name=full_name, profile=profile)
        current = await self._load_user(user_id)
        kept = current.value.email
        # The address it has is the one it stores: another that folds alike (`strasse@`
        # for `straße@`) shares its index entry, but may be another mailbox.
        if address == kept or not self.mail.enabled:
            if address != kept and self.settings.require_verified_email:
                raise EmailChangeUnavailableError()
            # At once: the address it has, or with no link to send, a new one, unverified,
            # as an administrator's change.
            changes["pending_email"] = ""
            before, after = await self._change_user(
                user_id, changes, address, expect=expect, require=require, current=current
            )
            return EmailChange(after, before.email)
        holder = await self.get_user_by_email(address)
        if holder is not None and holder.id != user_id:
            raise EmailTakenError()
        if admit is not None:
            # An address that folds to the account's own is its inbox (or shares its key).
            new = owner_account(user_id) if holder is not None else parse_name(address).account_key
            await admit(tuple(dict.fromkeys((owner_account(user_id), new))))
        user = current.value
        # The link first, for the record as this request will write it; the write then
        # lands only on the record the link was made for. A link the store fails to keep
        # fails the request with nothing written, and one whose record write is refused
        # works for nobody: its secret was never mailed.
        asked = msgspec.structs.replace(
            user, pending_email=address, email_requests=user.email_requests + 1
        )
        token, link, stored_at = await self.account_tokens.issue_with_record("email-change", asked)
        changes.update(
            pending_email=address,
            pending_email_at=link.created_at,
            pending_email_expires_at=link.expires_at,
            pending_email_stored_at=stored_at,
        )
        expected = {**(expect or {}), **{name: getattr(user, name) for name in _BINDING}}
        before, after = await self._change_user(
            user_id, changes, expect=expected, require=require, current=current
        )
        lifetime = self.account_tokens.lifetime("email-change")
        name = after.username
        mail = self.mail
        mail.send_later(
            mail.compose(
                "email_change", to=address, username=name, token=token, lifetime_seconds=lifetime
            )
        )
        mail.notify("email_change_notice", to=before.email, username=name, new_email=address)
        return EmailChange(after, before.email)

    def public_user(self, user: User) -> PublicUser:
        """`user` as shown to clients: its new address waits while the link mailed to it
        works, by this service's clock, lifetime and allowance, with the link's own check's
        rule (`User.waiting_email`); none waits once it has expired."""
        tokens = self.account_tokens
        skew = self.settings.revocation_skew_seconds
        return user.public(tokens.clock(), tokens.lifetime("email-change"), skew)

    async def confirm_email_change(self, token: object) -> EmailChange:
        """Move the token's account to the new address it was mailed to, now verified,
        tell the address it had, and spend the token (see the module).
        InvalidAccountTokenError for a token that cannot be used; EmailTakenError, with
        nothing written, when the address is somebody else's by now."""
        key, record = await self.account_tokens.redeem("email-change", token)
        try:
            current = await self._load_user(record.user_id)
        except UserNotFoundError:
            raise InvalidAccountTokenError() from None
        still_bound(record, current.value, "email-change")
        try:
            before, after = await self._change_user(
                record.user_id,
                {"email_verified": True},
                current.value.pending_email,
                # Checked again on every attempt: a concurrent use of the link, a newer
                # request or a new password made the write this one lost to.
                require=partial(still_bound, record, purpose="email-change"),
                current=current,
                told=self._tell_moved,
            )
        except UserNotFoundError:
            raise InvalidAccountTokenError() from None
        await delete_quietly(self.store, key)
        return EmailChange(after, before.email)

    def _tell_moved(self, before: User, after: User) -> None:
        """Tell the address the account had that it is at another now, as soon as the
        record says so: the request's notice told it to reset the password from there,
        which no longer reaches the account."""
        if after.email != before.email:
            self.mail.notify(
                "email_change_confirmed_notice",
                to=before.email,
                username=after.username,
                new_email=after.email,
            )
