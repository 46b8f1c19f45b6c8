"""A message, and the protocol every mailer follows."""

from __future__ import annotations

from typing import ClassVar, Literal, Protocol, runtime_checkable

import msgspec

from ..hidden_fields import HidesSecrets

MessageKind = Literal[
    "password_reset",
    "email_verification",
    "email_change",
    "email_change_notice",
    "password_changed_notice",
    "email_changed_notice",
]


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


@runtime_checkable
class Mailer(Protocol):
    """Sends a message, or raises. Called in the background: a failure is logged (without
    the message, which holds a token) and does not reach the request that caused it."""

    async def send(self, message: Message) -> None: ...
