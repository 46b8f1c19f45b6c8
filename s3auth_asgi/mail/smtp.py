"""SMTPMailer: sends through an SMTP server with the standard library's `smtplib`, in a
worker thread (`anyio.to_thread`), so that a slow server never holds up the event loop.
One connection per message: resets and verifications are rare, and a connection kept
open would need keeping alive.

Security (S3AUTH_SMTP_SECURITY): `starttls` (port 587 by default) upgrades the connection
before anything else is said, and fails if the server cannot; `tls` (465) speaks TLS from
the first byte; `none` is for a relay on the same host. Certificates are verified against
the system's trust store unless a `ssl_context` is given.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Literal

import anyio

from ..errors import ConfigurationError
from ..settings import S3AuthSettings
from .message import Message

Security = Literal["starttls", "tls", "none"]
DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "tls": 465, "none": 25}


class SMTPMailer:
    def __init__(
        self,
        host: str,
        *,
        sender: str,
        port: int = 0,
        security: Security = "starttls",
        username: str = "",
        password: str = "",
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not host or "@" not in sender:
            raise ConfigurationError("SMTPMailer needs a host and a sender address")
        self.host = host
        self.port = port or DEFAULT_PORTS[security]
        self.sender = sender
        self.security = security
        self.username = username
        self._password = password
        self.timeout = timeout
        self.ssl_context = ssl_context

    @classmethod
    def from_settings(cls, settings: S3AuthSettings) -> SMTPMailer:
        return cls(
            settings.smtp_host,
            sender=settings.mail_from,
            port=settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=settings.smtp_password,
            timeout=settings.smtp_timeout_seconds,
        )

    def __repr__(self) -> str:  # never the password
        return f"SMTPMailer({self.host}:{self.port}, {self.security}, sender={self.sender!r})"

    def email(self, message: Message) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2])
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
        mail.set_content(message.text)
        return mail

    async def send(self, message: Message) -> None:
        mail = self.email(message)
        await anyio.to_thread.run_sync(self._send, mail)

    def _send(self, mail: EmailMessage) -> None:
        context = self.ssl_context or ssl.create_default_context()
        client: smtplib.SMTP
        if self.security == "tls":
            client = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with client:
            if self.security == "starttls":
                client.starttls(context=context)
            if self.username:
                client.login(self.username, self._password)
            client.send_message(mail)
