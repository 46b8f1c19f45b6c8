"""How the SMTP mailer protects the connection (RFC 8314, RFC 3207), against aiosmtpd on
127.0.0.1 with a self-signed certificate: a certificate the client does not trust, or one
for another name, fails the send; a server that does not offer STARTTLS is sent nothing,
credentials least of all; and a security, timeout or port the settings would refuse is
refused when the mailer is made in code, rather than read as clear text or no bound."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from conftest import make_settings
from mail_support import HOST, smtp_server

from s3auth_asgi import ConfigurationError, S3AuthService
from s3auth_asgi.mail import Message, SMTPMailer
from s3auth_asgi.mail.smtp import Security

pytestmark = [
    pytest.mark.anyio,
    # aiosmtpd's, of the servers made to take credentials in clear text on purpose.
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS"),
]

SENDER = "auth@example.com"
LOGIN = ("mailer", "s3cret-pass")
CREDENTIALS = {"username": LOGIN[0], "password": LOGIN[1]}
UNTRUSTED = "sending a password_reset message failed: SSLCertVerificationError"


def reset() -> Message:
    return Message(to="bob@example.com", subject="s", text="t #token=pr1.x", kind="password_reset")


async def send_logged(mailer: SMTPMailer, caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the mail log says of sending one message through `mailer`."""
    service = S3AuthService(make_settings(public_url="https://app.example.com"), mailer=mailer)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        service.mail.send_later(reset())
        await service.mail.drain()
    return [r.getMessage() for r in caplog.records if r.name == "s3auth_asgi.mail"]


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_a_certificate_not_trusted_or_for_another_name_fails_the_send(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, security: Security
) -> None:
    implicit = security == "tls"
    with smtp_server(tls_directory=tmp_path, credentials=LOGIN, implicit_tls=implicit) as server:
        # Trusted by no one: the system's trust store does not know it.
        untrusted = SMTPMailer(HOST, port=server.port, sender=SENDER, security=security,
                               **CREDENTIALS)  # fmt: skip
        assert await send_logged(untrusted, caplog) == [UNTRUSTED]
        # Trusted, but the certificate names 127.0.0.1 alone: `localhost` is another name.
        misnamed = SMTPMailer("localhost", port=server.port, sender=SENDER, security=security,
                              ssl_context=server.client_context, **CREDENTIALS)  # fmt: skip
        assert await send_logged(misnamed, caplog) == [UNTRUSTED]
        assert server.inbox.messages == [] and server.inbox.logins == []
        # Trusted under its own name: the mail goes.
        trusted = SMTPMailer(HOST, port=server.port, sender=SENDER, security=security,
                             ssl_context=server.client_context, **CREDENTIALS)  # fmt: skip
        assert await send_logged(trusted, caplog) == []
        assert len(server.inbox.messages) == 1 and server.inbox.logins == ["mailer"]


async def test_a_server_that_does_not_offer_starttls_is_sent_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # It would take the credentials in clear text, as a server whose STARTTLS someone on
    # the path stripped would.
    with smtp_server(credentials=LOGIN, auth_in_clear=True) as server:
        mailer = SMTPMailer(HOST, port=server.port, sender=SENDER, **CREDENTIALS)
        logged = await send_logged(mailer, caplog)
        assert logged == ["sending a password_reset message failed: SMTPNotSupportedError"]
        assert server.inbox.logins == [] and server.inbox.messages == []
        assert "s3cret-pass" not in caplog.text


@pytest.mark.parametrize("security", ["STARTTLS", "ssl", "TLS", "starttls ", ""])
async def test_a_security_the_settings_would_refuse_is_refused_in_code(security: str) -> None:
    # Read as neither `starttls` nor `tls`, it sent the mail, and the password, in clear
    # text to a server that took them so.
    with smtp_server(credentials=LOGIN, auth_in_clear=True) as server:
        with pytest.raises(ConfigurationError) as refused:
            mailer = SMTPMailer(HOST, port=server.port, sender=SENDER,
                                security=security, **CREDENTIALS)  # type: ignore[arg-type]  # fmt: skip
            await mailer.send(reset())
        assert str(refused.value) == (
            f"SMTPMailer's security must be one of: starttls, tls, none, not {security!r}"
        )
        assert server.inbox.logins == [] and server.inbox.messages == []


@pytest.mark.parametrize(
    ("argument", "value", "refusal"),
    [
        ("timeout", None, "a number more than 0 and at most 600 (10 minutes), not None"),
        ("timeout", 0, "a number more than 0 and at most 600 (10 minutes), not 0"),
        ("timeout", -1.0, "a number more than 0 and at most 600 (10 minutes), not -1.0"),
        ("timeout", float("inf"), "a number more than 0 and at most 600 (10 minutes), not inf"),
        ("timeout", float("nan"), "a number more than 0 and at most 600 (10 minutes), not nan"),
        ("port", -1, "a whole number from 0 to 65535, not -1"),
        ("port", 70000, "a whole number from 0 to 65535, not 70000"),
        ("port", "587", "a whole number from 0 to 65535, not '587'"),
    ],
)
def test_a_timeout_or_port_the_settings_would_refuse_is_refused_in_code(
    argument: str, value: object, refusal: str
) -> None:
    # With no timeout, a server that never answers would hold a mail thread for good.
    with pytest.raises(ConfigurationError) as refused:
        SMTPMailer("mail.example.com", sender=SENDER, **{argument: value})  # type: ignore[arg-type]
    assert str(refused.value) == f"SMTPMailer {argument} must be {refusal}"
