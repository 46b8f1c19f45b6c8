"""The SMTP server's host is what the mailer connects to, as it is written: a name or an
address alone. A spelling that no send could reach (an IPv6 address in brackets, as URLs
write it; a port written into the host) is refused when the settings are read, or the
mailer made, saying what to write instead, rather than failing every send later."""

from __future__ import annotations

import logging
import socket

import pytest
from conftest import make_settings
from mail_support import smtp_server

from s3auth_asgi import ConfigurationError, S3AuthSettings
from s3auth_asgi.mail import Message, SMTPMailer, mailer_from_settings

pytestmark = pytest.mark.anyio

FRONT_END = "https://app.example.com"
ALONE = "must be the server's name or address alone, without brackets or a port"
NOT_A_HOST = (
    "must be the server's host name or IP address alone (mail.example.com, 192.0.2.25 or "
    "::1): no URL, user name, port or whitespace"
)


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def smtp_settings(host: str, **overrides: object) -> S3AuthSettings:
    return make_settings(
        smtp_host=host, mail_from="auth@example.com", public_url=FRONT_END, **overrides
    )


@pytest.mark.parametrize(
    ("host", "instead"),
    [
        ("[::1]", "S3AUTH_SMTP_HOST=::1"),
        ("[::1]:2525", "S3AUTH_SMTP_HOST=::1 and S3AUTH_SMTP_PORT=2525"),
        ("mail.example.com:587", "S3AUTH_SMTP_HOST=mail.example.com and S3AUTH_SMTP_PORT=587"),
        ("127.0.0.1:25", "S3AUTH_SMTP_HOST=127.0.0.1 and S3AUTH_SMTP_PORT=25"),
        # A relay as Postfix's relayhost writes one.
        ("[mail.example.com]:587", "S3AUTH_SMTP_HOST=mail.example.com and S3AUTH_SMTP_PORT=587"),
        ("[192.0.2.25]", "S3AUTH_SMTP_HOST=192.0.2.25"),
    ],
)
def test_brackets_or_a_port_in_the_host_are_refused_saying_what_to_write(
    host: str, instead: str
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        smtp_settings(host)
    assert str(refused.value) == f"S3AUTH_SMTP_HOST {ALONE}: write {instead}"


@pytest.mark.parametrize(
    "host",
    [
        "smtp://mail.example.com",
        "user@mail.example.com",
        "mail.example.com:smtp",
        " mail.example.com",
        "mail.example.com\n",
        "mail example.com",
        "[]",
        "[mail.example.com:587]",
    ],
)
def test_what_is_no_host_at_all_is_refused_without_showing_it(host: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        smtp_settings(host)
    assert str(refused.value) == f"S3AUTH_SMTP_HOST {NOT_A_HOST}"


def test_the_mailer_made_in_code_refuses_them_alike() -> None:
    with pytest.raises(ConfigurationError) as refused:
        SMTPMailer("[::1]:2525", sender="auth@example.com", security="none")
    assert str(refused.value) == f"host {ALONE}: write host=::1 and port=2525"
    with pytest.raises(ConfigurationError) as refused:
        SMTPMailer("smtp://mail.example.com", sender="auth@example.com")
    assert str(refused.value) == f"host {NOT_A_HOST}"


@pytest.mark.parametrize(
    "host",
    ["::1", "127.0.0.1", "localhost", "mail.example.com", "bücher.example", "fe80::1%eth0",
     "relay_1.internal", "mail.example.com."],
)  # fmt: skip
def test_a_name_or_an_address_alone_is_taken(host: str) -> None:
    assert smtp_settings(host).smtp_host == host
    assert SMTPMailer(host, sender="auth@example.com").host == host


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_an_ipv6_address_written_alone_is_this_machine_and_is_sent_to(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with smtp_server(host="::1") as server:
        settings = smtp_settings("::1", smtp_port=server.port, smtp_security="none")
        with caplog.at_level(logging.INFO):
            mailer = mailer_from_settings(settings)
            assert isinstance(mailer, SMTPMailer)
            await mailer.send(
                Message(to="alice@example.com", subject="Hi", text="t", kind="password_reset")
            )
        (received,) = server.inbox.wait_for(1)
    assert server.inbox.recipients == [["alice@example.com"]]
    assert received["Subject"] == "Hi"
    # This machine, as the warning about security none judges it: no warning.
    assert [r.getMessage() for r in caplog.records if r.name == "s3auth_asgi.mail"] == []
