"""SMTPMailer: sends through an SMTP server with the standard library's `smtplib`, in a
worker thread of its own (`MailThreads`: at most 4 at once), so that a slow server never
holds up the event loop nor the host's threads. One connection per message: resets and
verifications are rare, and a connection kept open would need keeping alive.

`timeout` bounds the whole exchange, not only each read: a server that trickles its
answers a byte at a time would hold a thread for as long as it liked under smtplib's
per-read timeout. Past it, the event loop shuts the connection's socket down, which wakes
the thread from any read or write at once, and the send fails. The server's name is looked
up first, on the event loop and within the same deadline: a lookup cannot be interrupted,
and a resolver that stalls (seconds a try, several tries) would hold a thread past it.
Each of the name's addresses is tried in turn, as a client connecting by name would, each
connection attempt given its share of the time left.

The host is the server's name or address alone, as it is looked up (`check_smtp_host`):
`[::1]` or `mail.example.com:587` would fail every send, and is refused when the mailer
is made; what the warning below judges to be this machine is what is connected to.

Security (S3AUTH_SMTP_SECURITY): `starttls` (port 587 by default) upgrades the connection
before anything else is said, and fails if the server cannot; `tls` (465) speaks TLS from
the first byte; `none` is for a relay on the same host. Certificates are verified against
the system's trust store unless a `ssl_context` is given. Credentials are refused over
`none`. `none` to another host is allowed, with a warning: a relay on a private network is
a setup of its own, which refusing would break, but the links cross it in clear text. Any
other security than these three is refused, never read as plain text.

Addresses: a domain that is not ASCII (`bücher.de`) is sent in its ASCII form
(`xn--bcher-kva.de`), which every server takes; the sender's too, with a name or without.
A local part that is not ASCII (`jörg@`) has no such form: it needs a server that offers
SMTPUTF8, and without one the send fails saying so (`MailFailure`). The envelope's
recipient is the message's address, never what the To header is read as, and a message
whose To header would read as another address is not sent (`Message.recipient`); the
envelope's sender is the one address the sender names (`Name <auth@example.com>` is
`auth@example.com`), which must be exactly one.

The subject is sent as it reads, whatever a template filled into it (`subject`): an
encoded word in it is written so that it stays text, never a header or a body.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
import socket
import ssl
import time
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Literal

import anyio

from ..errors import ConfigurationError
from ..hosts import is_loopback
from ..lifecycle_settings import check_smtp_credentials, check_smtp_host
from ..mail_addresses import ascii_domain, header_addresses
from ..settings import S3AuthSettings
from ..settings_ranges import check_argument
from ..settings_text import choice_refused
from .message import MailFailure, Message
from .subject import set_subject_header
from .threads import MailThreads

Security = Literal["starttls", "tls", "none"]
DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "tls": 465, "none": 25}

logger = logging.getLogger("s3auth_asgi.mail")


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
        # What is connected to, and judged by the warning below to be this machine or not.
        check_smtp_host(host, _argument_name)
        # As the settings check them: any other security would be read as no TLS at all
        # (credentials and links in clear text), and no timeout as no bound on a send.
        if not isinstance(security, str) or security not in DEFAULT_PORTS:
            raise choice_refused("SMTPMailer's security", DEFAULT_PORTS, security)
        check_argument("smtp_timeout_seconds", timeout, "SMTPMailer timeout")
        check_argument("smtp_port", port, "SMTPMailer port")
        check_smtp_credentials(security, username, password, _argument_name)
        self.host = host
        self.port = port or DEFAULT_PORTS[security]
        named = header_addresses(sender)
        if len(named) != 1 or "@" not in named[0]:  # a header reads no address as `<>`
            raise ConfigurationError(
                "SMTPMailer's sender must name one address (auth@example.com, or "
                "Name <auth@example.com>), as a mail header reads it"
            )
        self.envelope_sender = ascii_domain(named[0])
        """The address the sender names, its domain in ASCII: the envelope's sender (MAIL
        FROM)."""
        self.sender = _naming(sender, self.envelope_sender)
        """The From header: the sender, its name kept, naming that address."""
        self.security = security
        self.username = username
        self._password = password
        self.timeout = timeout
        """Seconds the whole exchange with the server may take, and each read within it."""
        self.ssl_context = ssl_context
        self.threads = MailThreads()
        self._ehlo_name: str | None = None
        """This machine's name as the first client looked it up, for every client after:
        smtplib looks it up for each (reverse DNS, seconds where that answers slowly),
        before there is a connection the deadline could cut."""
        if security == "none" and not is_loopback(host):
            logger.warning(
                "SMTP to %s:%d is not encrypted (security none, meant for a relay on this "
                "machine): the mails, and the links in them, cross the network in clear text",
                host,
                self.port,
            )

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
        """The mail for `message`; MailFailure when its To header would name another
        address than the message's (`Message.recipient`)."""
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.recipient()
        set_subject_header(mail, message.subject)
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid(domain=self.envelope_sender.rpartition("@")[2])
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
        mail.set_content(message.text)
        return mail

    async def send(self, message: Message) -> None:
        mail = self.email(message)
        recipient = message.recipient()
        connection = _Connection()
        started = anyio.current_time()
        addresses: list[str] = []
        try:
            with anyio.move_on_after(self.timeout):
                addresses = await self._addresses()
            left = self.timeout - (anyio.current_time() - started)
            if left <= 0:
                connection.cut_off()
                raise TimeoutError(f"looking up {self.host} took the whole deadline")
            await self.threads.run(
                lambda: self._send(mail, recipient, addresses, connection, left),
                deadline=left,
                abort=connection.cut_off,
            )
        except Exception as error:
            if connection.was_cut_off:
                raise MailFailure(
                    f"the SMTP exchange took longer than {self.timeout:g} s"
                ) from error
            raise

    async def _addresses(self) -> list[str]:
        """The server's addresses, in the resolver's order, each once."""
        found = await anyio.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in found))

    def _send(
        self,
        mail: EmailMessage,
        recipient: str,
        addresses: list[str],
        connection: _Connection,
        left: float,
    ) -> None:
        ends = time.monotonic() + left
        context = self.ssl_context or ssl.create_default_context()
        client: _Client
        name = self._ehlo_name
        if self.security == "tls":
            client = _TLSClient(local_hostname=name, timeout=self.timeout, context=context)
        else:
            client = _Client(local_hostname=name, timeout=self.timeout)
        self._ehlo_name = client.local_hostname
        # Connected here rather than by the constructor, which would read the greeting
        # before the client could be cut off; the TLS layer checks the certificate against
        # `_host`, which only the constructor sets.
        client._host = self.host  # type: ignore[attr-defined]
        connection.client = client
        try:
            _connect(client, addresses, self.port, connection, ends)
            if self.security == "starttls":
                client.starttls(context=context)
                connection.check()  # the handshake runs on a socket being replaced
            if self.username:
                client.login(self.username, self._password)
            try:
                # Told both: left to itself, it reads them from the headers.
                client.send_message(mail, self.envelope_sender, [recipient])
            except smtplib.SMTPNotSupportedError as error:  # what send_message says of it
                raise MailFailure(
                    "the mail server does not offer SMTPUTF8, which an address that is not "
                    "ASCII before its @ needs"
                ) from error
        except BaseException:
            # No QUIT: a server that failed once would be waited for once more.
            client.close()
            raise
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client.quit()  # the message is accepted: how the goodbye goes does not matter
        client.close()


class _Client(smtplib.SMTP):
    """An SMTP client whose TCP connection is attempted for `connect_timeout` at most;
    the connection's reads, the greeting's first, wait for `timeout` as ever."""

    connect_timeout: float | None = None

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        attempt = timeout if self.connect_timeout is None else min(timeout, self.connect_timeout)
        # Private, and absent from the standard library's stubs, but where SMTP_SSL too
        # makes its socket before it wraps it.
        sock: socket.socket = super()._get_socket(host, port, attempt)  # type: ignore[misc]
        sock.settimeout(timeout)
        return sock


class _TLSClient(smtplib.SMTP_SSL, _Client):
    """`_Client` with TLS from the first byte: SMTP_SSL wraps the socket `_Client` made,
    and its handshake waits for `timeout`."""


def _connect(
    client: _Client, addresses: list[str], port: int, connection: _Connection, ends: float
) -> None:
    """Connects to the first of `addresses` that answers, and reads its greeting. Each
    attempt is given its share of the time left until `ends` (`time.monotonic`): an
    address whose packets are dropped answers nothing and refuses nothing, and would
    otherwise take the whole deadline from the addresses after it."""
    failure = OSError("the name has no address")
    for number, address in enumerate(addresses):
        share = (ends - time.monotonic()) / (len(addresses) - number)
        client.connect_timeout = max(share, 0.01)  # 0 would make the socket non-blocking
        try:
            client.connect(address, port)
        except OSError as error:
            failure = error
        else:
            connection.check()  # cut off while it connected, before it had a socket
            return
        connection.check()
    raise failure


def _naming(sender: str, address: str) -> str:
    """`sender`, which names one address as a header reads it, naming `address` instead,
    its display name kept: `Name <auth@bücher.example>` as `Name
    <auth@xn--bcher-kva.example>`."""
    mail = EmailMessage()
    mail["From"] = sender
    (mailbox,) = mail["From"].addresses
    if mailbox.addr_spec == address:
        return sender
    return str(Address(display_name=mailbox.display_name, addr_spec=address))


def _argument_name(field: str) -> str:
    return field.removeprefix("smtp_")


class _Connection:
    """One send's SMTP client, seen from both sides: the worker thread talks through it,
    the event loop cuts it off at the deadline. Shutting a socket down wakes a thread
    blocked on it; a client that has no socket yet (connecting) or is swapping it (the
    STARTTLS handshake) finds `was_cut_off` set at its next `check`."""

    def __init__(self) -> None:
        self.client: smtplib.SMTP | None = None
        self.was_cut_off = False

    def cut_off(self) -> None:
        self.was_cut_off = True  # before the socket is read: see `check`
        sock = getattr(self.client, "sock", None)
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):  # closed already, or never connected
                # socket.socket's own: an SSLSocket's would unwrap the TLS layer under
                # the thread's feet instead of ending the connection.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def check(self) -> None:
        if self.was_cut_off:
            raise TimeoutError("cut off at the deadline")
