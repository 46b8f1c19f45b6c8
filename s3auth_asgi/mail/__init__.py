"""Mail: what the account lifecycle sends (password-reset and email-verification links,
the link that confirms a new address and the notices of it to the old one, asked for and
confirmed, the notices of new passwords and logins: `app.login_notices`), and how.

A `Mailer` is anything with `async def send(self, message: Message) -> None`. Two are
built in: `SMTPMailer` (S3AUTH_SMTP_*: STARTTLS or TLS, credentials; sending runs on a few
worker threads of its own, never on the event loop nor on the host's threads) and
`FileMailer` (S3AUTH_MAIL_OUTBOX: each message written to a directory, for development).
`mailer_from_settings` picks one from the settings; pass your own to
`S3AuthService(mailer=...)`.

The texts are `MailTemplates`, replaceable; their links start with S3AUTH_PUBLIC_URL,
which every mailer but `FileMailer` requires, whether chosen by the settings or passed.
`MailDelivery` composes messages and sends them in the background, so that an answer never
waits for, or tells anything by, a mail server; the auth app's endpoints start them once
their answer is sent (`held_mail`). It hands no mailer a message whose address a
mail header would read as another (`Message.recipient`, `s3auth_asgi.mail_addresses`).
A mailer of your own that builds an `email.message.EmailMessage` sets its Subject with
`set_subject_header`, as `SMTPMailer` does, so that a subject holding an encoded word (a
User-Agent a template filled in) is sent as it reads, never as a header or a body.
"""

from __future__ import annotations

from .delivery import MailDelivery, held_mail, mailer_from_settings
from .message import Mailer, MailFailure, Message
from .outbox import FileMailer
from .smtp import SMTPMailer
from .subject import set_subject_header
from .templates import MailTemplate, MailTemplates

__all__ = [
    "FileMailer",
    "MailDelivery",
    "MailFailure",
    "MailTemplate",
    "MailTemplates",
    "Mailer",
    "Message",
    "SMTPMailer",
    "held_mail",
    "mailer_from_settings",
    "set_subject_header",
]
