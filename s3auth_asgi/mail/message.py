"""A message, the protocol every mailer follows, and what decides whether mails to
addresses a caller chose may go."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar, Literal, Protocol, runtime_checkable

import msgspec

from ..hidden_fields import HidesSecrets
from ..mail_addresses import ascii_domain, reads_as_itself

MessageKind = Literal[
    "password_reset",
    "email_verification",
    "email_change",
    "email_change_notice",
    "email_change_confirmed_notice",
    "password_changed_notice",
    "email_changed_notice",
    "new_device_notice",
    "failed_logins_notice",
    "totp_enabled_notice",
    "totp_disabled_notice",
    "recovery_code_used_notice",
]

MailAdmit = Callable[[tuple[str, ...]], Awaitable[None]]
"""Asked, before an account's own request that mails addresses it chose writes anything
(a change of address, a new password: `email_changes`, `password_changes`), whether its
mails may go: given the inboxes they would reach (`NameLookup.owner_key`: the account's,
or an address no account has as normalised, as a reset asked for under it counts it), it
returns, or raises the error that refuses the request. The auth app's counts them against
the budgets of the mails asked for by name (`AuthRateLimits.check_mails`)."""


class MailFailure(Exception):
    """A send that failed for a reason worth logging as it is: its text names neither the
    message's address nor its token (other exceptions are logged by their type only)."""


class Message(HidesSecrets, msgspec.Struct, frozen=True, kw_only=True):
    """One plain-text message to one recipient. `kind` says which flow sent it, for a
    mailer that treats them apart (templates of its own, a provider's tags). Its text,
    which holds the mailed link's token, shows as `<hidden>` when it is printed."""

    secret_fields: ClassVar[frozenset[str]] = frozenset(("text",))

    to: str
    subject: str
    text: str
    kind: MessageKind

    def recipient(self) -> str:
        """The address to send to: `to`, its domain in ASCII. MailFailure when a mail
        header would read it as another (`mail_addresses`): an address stored before such
        addresses were refused, or one a host's code passed."""
        address = ascii_domain(self.to)
        if not reads_as_itself(address):
            raise MailFailure(
                "the address would not read as itself in a mail header (it holds an encoded "
                "word, say): nothing was sent"
            )
        return address


@runtime_checkable
class Mailer(Protocol):
    """Sends a message, or raises. Called in the background: a failure is logged (without
    the message, which holds a token) and does not reach the request that caused it."""

    async def send(self, message: Message) -> None: ...
