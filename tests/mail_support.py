"""A real SMTP server for the mail tests: aiosmtpd on a free 127.0.0.1 port, in its own
thread, keeping every message it accepts; optionally with STARTTLS (a self-signed
certificate made here), AUTH, SMTPUTF8, or slow to accept a message. Servers that do not
work: one that accepts connections and never says a word (`silent_server`), one that
trickles its greeting a byte at a time (`trickling_server`), an address that drops every
connection attempt (`dropping_listener`). Also the recipients' side:
reading a message and following the token in its link.

Test modules import from here as they do from conftest: `from mail_support import ...`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email
import email.policy
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import anyio
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from conftest import make_settings
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from s3auth_asgi import S3AuthSettings

HOST = "127.0.0.1"
_LINK_TOKEN = re.compile(r"#token=([A-Za-z0-9._-]+)")


@dataclass
class Inbox:
    """What the server accepted, in order, and who logged in."""

    messages: list[EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    """The envelope's recipients (RCPT TO) of each message."""
    senders: list[str] = field(default_factory=list)
    """The envelope's sender (MAIL FROM) of each message."""
    logins: list[str] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    delay: float = 0.0
    """Seconds the server takes before it accepts a message."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.arrived:
            self.messages.append(message)
            self.recipients.append(list(envelope.rcpt_tos))
            self.senders.append(envelope.mail_from)
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(self.messages)} message(s) arrived, {count} expected"
                self.arrived.wait(left)
            return list(self.messages)


@dataclass
class SMTPServer:
    host: str
    port: int
    inbox: Inbox
    client_context: ssl.SSLContext | None = None
    """Trusts the server's certificate (servers with a `tls_directory` only)."""


def _free_port(host: str = HOST) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def self_signed(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a new certificate for 127.0.0.1, and a client context that
    trusts exactly that certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp.crt", directory / "smtp.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return server, client


@contextmanager
def smtp_server(
    *,
    tls_directory: Path | None = None,
    credentials: tuple[str, str] | None = None,
    smtputf8: bool = False,
    delay: float = 0.0,
    implicit_tls: bool = False,
    auth_in_clear: bool = False,
    host: str = HOST,
) -> Iterator[SMTPServer]:
    """A running server; with `tls_directory`, STARTTLS is required (a certificate is made
    there), or with `implicit_tls` TLS from the first byte; with `credentials`, AUTH is too
    and only those pass, offered before any TLS with `auth_in_clear` (what a server whose
    STARTTLS someone on the path stripped looks like); `smtputf8` offers SMTPUTF8 (addresses
    that are not ASCII); `delay`: seconds it takes to accept each message; `host`: the
    address it listens on (`::1`, say)."""
    inbox = Inbox(delay=delay)
    options: dict[str, Any] = {"enable_SMTPUTF8": smtputf8}
    client_context = None
    if tls_directory is not None:
        server_context, client_context = self_signed(tls_directory)
        if implicit_tls:
            options.update(ssl_context=server_context)
        else:
            options.update(tls_context=server_context, require_starttls=True)
    if credentials is not None:

        def authenticator(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> AuthResult:
            ok = (
                isinstance(data, LoginPassword)
                and (
                    data.login.decode(),
                    data.password.decode(),
                )
                == credentials
            )
            if ok:
                inbox.logins.append(data.login.decode())
            return AuthResult(success=ok)

        # aiosmtpd counts only a STARTTLS upgrade as TLS: with implicit TLS, every
        # connection is.
        in_clear = auth_in_clear or implicit_tls
        options.update(
            authenticator=authenticator, auth_required=True, auth_require_tls=not in_clear
        )
    controller = Controller(inbox, hostname=host, port=_free_port(host), **options)
    controller.start()
    try:
        yield SMTPServer(host, controller.port, inbox, client_context)
    finally:
        controller.stop()


def mailing_settings(server: SMTPServer, **overrides: object) -> S3AuthSettings:
    """Settings that mail from auth@example.com through `server`, in clear (it is local)."""
    return make_settings(
        smtp_host=server.host,
        smtp_port=server.port,
        smtp_security="none",
        mail_from="auth@example.com",
        **overrides,
    )


class SilentServer:
    """Accepts connections on 127.0.0.1 and never answers: a dead relay, a tarpit. Closing
    it closes every connection it holds, which ends the clients' waits at once."""

    def __init__(self) -> None:
        self.host = HOST
        self._listener = socket.create_server((HOST, 0), backlog=512)
        self.port = int(self._listener.getsockname()[1])
        self.connections: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                self.connections.append(connection)

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        """Until `count` clients have connected. Polls: waiting in a thread would take one
        from the limiter whose use the tests count."""
        with anyio.fail_after(timeout):
            while len(self.connections) < count:
                await anyio.sleep(0.01)

    def close(self) -> None:
        _stop_listening(self._listener)
        with self._lock:
            for connection in self.connections:
                connection.close()


@contextmanager
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()


@dataclass
class TricklingServer:
    host: str
    port: int
    cut_off: threading.Event
    """Set when the client ended the connection before the greeting was complete."""


@contextmanager
def trickling_server(*, every: float = 0.1, count: int = 100) -> Iterator[TricklingServer]:
    """A server that sends its greeting one byte every `every` seconds, `count` bytes
    before the end of the line: each byte comes well within any per-read timeout, the
    whole line takes `every * count` seconds."""
    listener = socket.create_server((HOST, 0))
    cut_off = threading.Event()

    def serve() -> None:
        with contextlib.suppress(OSError):
            connection, _ = listener.accept()
            with connection:
                try:
                    for _ in range(count):
                        time.sleep(every)
                        connection.sendall(b"2")
                    connection.sendall(b"20 late\r\n")
                except OSError:
                    cut_off.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield TricklingServer(HOST, int(listener.getsockname()[1]), cut_off)
    finally:
        _stop_listening(listener)


@contextmanager
def dropping_listener(host: str, port: int) -> Iterator[None]:
    """`host:port` drops every connection attempt, as a firewall that drops packets does:
    a listener whose one-place queue is full and that accepts nothing, so that the kernel
    ignores each new SYN and the client waits until its own timeout."""
    listener = socket.create_server((host, port), backlog=0)
    filler = socket.create_connection((host, port), timeout=1)
    try:
        yield
    finally:
        filler.close()
        listener.close()


def _stop_listening(listener: socket.socket) -> None:
    """Close a listening socket whose accept() another thread is blocked in: a plain close
    would leave it listening, held by that call, until the next connection."""
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)
    listener.close()


def token_in(message: EmailMessage) -> str:
    """The token of the link in a received message."""
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    found = _LINK_TOKEN.search(body.get_content())
    assert found is not None, body.get_content()
    return found[1]


def link_in(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    found = re.search(r"https?://\S+", body.get_content())
    assert found is not None
    return found[0]
