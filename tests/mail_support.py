"""A real SMTP server for the mail tests: aiosmtpd on a free 127.0.0.1 port, in its own
thread, keeping every message it accepts; optionally with STARTTLS (a self-signed
certificate made here) and AUTH. Also the recipients' side: reading a message and
following the token in its link.

Test modules import from here as they do from conftest: `from mail_support import ...`.
"""

from __future__ import annotations

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

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST = "127.0.0.1"
_LINK_TOKEN = re.compile(r"#token=([A-Za-z0-9._-]+)")


@dataclass
class Inbox:
    """What the server accepted, in order, and who logged in."""

    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.arrived:
            self.messages.append(message)
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
    """Trusts the server's certificate (STARTTLS servers only)."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
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
    *, tls_directory: Path | None = None, credentials: tuple[str, str] | None = None
) -> Iterator[SMTPServer]:
    """A running server; with `tls_directory`, STARTTLS is required (a certificate is made
    there); with `credentials`, AUTH is too and only those pass."""
    inbox = Inbox()
    options: dict[str, Any] = {}
    client_context = None
    if tls_directory is not None:
        server_context, client_context = self_signed(tls_directory)
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

        options.update(authenticator=authenticator, auth_required=True)
    controller = Controller(inbox, hostname=HOST, port=_free_port(), **options)
    controller.start()
    try:
        yield SMTPServer(HOST, controller.port, inbox, client_context)
    finally:
        controller.stop()


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
