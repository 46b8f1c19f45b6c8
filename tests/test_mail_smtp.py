"""Mail through a real SMTP server (aiosmtpd on 127.0.0.1): the auth app mails a reset link,
the test reads the message the server received and follows it to a new password; STARTTLS
with credentials; a server that refuses is logged and breaks nothing; the outbox mailer."""

from __future__ import annotations

import logging
import smtplib
import socket
import stat
import sys
from pathlib import Path

import aiosmtpd.smtp
import anyio
import pytest
from conftest import make_settings
from mail_support import link_in, mailing_settings, smtp_server, token_in
from test_app import PASSWORD, assert_problem, bearer, client_for, login, mounted, register

from s3auth_asgi import ConfigurationError, S3AuthService
from s3auth_asgi.identifiers import clean_email
from s3auth_asgi.mail import FileMailer, Mailer, Message, SMTPMailer
from s3auth_asgi.settings import S3AuthSettings

pytestmark = pytest.mark.anyio

NEW_PASSWORD = "Brand-new-pass-7"
FRONT_END = "https://app.example.com"


async def test_a_reset_link_mailed_over_smtp_sets_a_new_password() -> None:
    with smtp_server() as server:
        settings = mailing_settings(server, public_url=FRONT_END)
        service = S3AuthService(settings)
        async with client_for(mounted(service)) as client:
            await register(client, "alice")
            old = await login(client, "alice")
            forgot = await client.post("/auth/password/forgot", json={"username": "alice"})
            assert forgot.status_code == 202
            await service.mail.drain()
            # Each mail is sent from its own worker thread: they may arrive in either order.
            received = server.inbox.wait_for(3)
            (verification,) = [m for m in received if m["Subject"].startswith("Confirm")]
            (reset,) = [m for m in received if m["Subject"] == "Reset your password"]
            # The login, the client's first: a new device (`tests/test_login_notices.py`).
            (told,) = [m for m in received if m["Subject"] == "A new sign-in to your account"]
            assert told["To"] == "alice@example.com" and "#token=" not in told.get_content()

            # The verification link mailed at registration verifies the address.
            assert link_in(verification).startswith(f"{FRONT_END}/verify-email#token=ev1.")
            verified = await client.post(
                "/auth/email/verify", json={"token": token_in(verification)}
            )
            assert verified.status_code == 204, verified.text
            assert (await client.get("/auth/me", headers=bearer(old))).json()["email_verified"]

            assert reset["To"] == "alice@example.com"
            assert reset["From"] == "auth@example.com"
            assert reset["Subject"] == "Reset your password"
            assert reset["Auto-Submitted"] == "auto-generated"
            assert link_in(reset).startswith(f"{FRONT_END}/reset-password#token=pr1.")
            token = token_in(reset)
            done = await client.post(
                "/auth/password/reset", json={"token": token, "new_password": NEW_PASSWORD}
            )
            assert done.status_code == 204, done.text

            await login(client, "alice", NEW_PASSWORD)
            refused = await client.post(
                "/auth/login", data={"username": "alice", "password": PASSWORD}
            )
            assert_problem(refused, 401, "invalid_credentials")
            # Every session ended: the old refresh token and the old access token.
            stale = await client.post("/auth/refresh", json={"refresh_token": old["refresh_token"]})
            assert stale.status_code == 401
            assert (await client.get("/auth/me", headers=bearer(old))).status_code == 401
            again = await client.post(
                "/auth/password/reset", json={"token": token, "new_password": "Other-pass-77"}
            )
            assert_problem(again, 400, "invalid_account_token")


async def test_starttls_and_credentials(tmp_path: Path) -> None:
    with smtp_server(tls_directory=tmp_path, credentials=("mailer", "s3cret-pass")) as server:
        mailer = SMTPMailer(
            server.host,
            port=server.port,
            sender="auth@example.com",
            security="starttls",
            username="mailer",
            password="s3cret-pass",
            ssl_context=server.client_context,
        )
        await mailer.send(
            Message(to="bob@example.com", subject="Hi", text="body #token=x", kind="password_reset")
        )
        (received,) = server.inbox.wait_for(1)
        assert received["To"] == "bob@example.com"
        assert server.inbox.logins == ["mailer"]
        assert "s3cret-pass" not in repr(mailer)


async def test_a_failed_delivery_is_logged_without_the_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with smtp_server() as server:
        port = server.port  # a port where nothing listens once the server has stopped
    mailer = SMTPMailer("127.0.0.1", port=port, sender="auth@example.com", security="none")
    service = S3AuthService(make_settings(public_url=FRONT_END), mailer=mailer)
    await service.create_user("carol", "carol@example.com", PASSWORD)
    with caplog.at_level(logging.INFO):
        await service.request_password_reset("carol")  # answers although sending fails
        await service.mail.drain()
    failures = [r for r in caplog.records if r.name == "s3auth_asgi.mail"]
    assert len(failures) == 1
    assert failures[0].getMessage() == (
        "sending a password_reset message failed: ConnectionRefusedError"
    )
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "carol@example.com" not in logged and "pr1." not in logged


async def test_the_outbox_mailer_keeps_private_files(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    settings = S3AuthSettings(
        **{**_plain(make_settings()), "mail_outbox": str(outbox), "mail_from": "a@example.com"}
    )
    service = S3AuthService(settings)
    assert isinstance(service.mail.mailer, FileMailer)
    await service.create_user("dave", "dave@example.com", PASSWORD)
    await service.request_password_reset("dave@example.com")
    await service.mail.drain()
    (message,) = service.mail.mailer.messages()
    assert message.to == "dave@example.com" and message.kind == "password_reset"
    assert stat.S_IMODE(outbox.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in outbox.iterdir())
    await anyio.sleep(0)


def _plain(settings: S3AuthSettings) -> dict[str, object]:
    return {name: getattr(settings, name) for name in settings.__struct_fields__}


@pytest.mark.parametrize(("security", "port"), [("starttls", 587), ("tls", 465), ("none", 25)])
def test_port_zero_is_the_securitys_own_port(security: str, port: int) -> None:
    settings = make_settings(smtp_host="mail.example.com", smtp_security=security,
                             mail_from="auth@example.com", public_url=FRONT_END)  # fmt: skip
    assert SMTPMailer.from_settings(settings).port == port
    chosen = make_settings(smtp_host="mail.example.com", smtp_port=2525, smtp_security=security,
                           mail_from="auth@example.com", public_url=FRONT_END)  # fmt: skip
    assert SMTPMailer.from_settings(chosen).port == 2525


def test_smtp_without_the_public_url_is_refused_naming_it(tmp_path: Path) -> None:
    # The links would be relative (`/reset-password#token=...`): no mail reader opens them.
    with pytest.raises(ConfigurationError) as refused:
        make_settings(smtp_host="mail.example.com", mail_from="auth@example.com")
    assert str(refused.value) == (
        "S3AUTH_PUBLIC_URL must be set when S3AUTH_SMTP_HOST is: the links in the mails start "
        "with it (https://app.example.com)"
    )
    environ = {
        "S3AUTH_SECRET_KEY": make_settings().secret_key,
        "S3AUTH_SMTP_HOST": "mail.example.com",
        "S3AUTH_MAIL_FROM": "auth@example.com",
    }
    with pytest.raises(ConfigurationError, match=r"^S3AUTH_PUBLIC_URL must be set"):
        S3AuthSettings.from_env(environ)
    # The development outbox keeps relative links, which the page showing them opens.
    outbox = make_settings(mail_outbox=str(tmp_path), mail_from="auth@example.com")
    assert outbox.public_url == ""


class Courier:
    """A mailer of the host's own (a provider's API, say): its mails reach inboxes."""

    async def send(self, message: Message) -> None:
        raise AssertionError("nothing is sent here")


@pytest.mark.parametrize("mailer", [SMTPMailer("mail.example.com", sender="auth@example.com"),
                                    Courier()], ids=["smtp", "own"])  # fmt: skip
def test_a_mailer_given_in_code_without_the_public_url_is_refused(mailer: Mailer) -> None:
    # The same rule as for S3AUTH_SMTP_HOST: the links would be relative, and dead.
    with pytest.raises(ConfigurationError) as refused:
        S3AuthService(make_settings(), mailer=mailer)
    assert str(refused.value) == (
        f"S3AUTH_PUBLIC_URL (public_url in the settings) must be set when a mailer is given "
        f"({type(mailer).__name__}): the links in the mails start with it "
        "(https://app.example.com)"
    )
    service = S3AuthService(make_settings(public_url=FRONT_END), mailer=mailer)
    link = service.mail.link("password_reset", "pr1.x")
    assert link == f"{FRONT_END}/reset-password#token=pr1.x"


def test_the_outbox_given_in_code_may_do_without_the_public_url(tmp_path: Path) -> None:
    # As with S3AUTH_MAIL_OUTBOX: the page that shows the outbox opens relative links.
    service = S3AuthService(make_settings(), mailer=FileMailer(tmp_path))
    assert service.mail.link("password_reset", "pr1.x") == "/reset-password#token=pr1.x"


@pytest.mark.parametrize(
    "credentials",
    [{"username": "mailer", "password": "s3cret-pass"}, {"username": "mailer"}],
)
def test_credentials_never_go_over_security_none(credentials: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError) as refused:
        SMTPMailer("127.0.0.1", sender="auth@example.com", security="none", **credentials)
    assert str(refused.value) == (
        "the credentials (username, password) would travel in clear text over security=none: "
        "use starttls or tls"
    )
    with pytest.raises(ConfigurationError) as refused:
        make_settings(smtp_host="127.0.0.1", smtp_security="none", smtp_username="mailer",
                      smtp_password="s3cret-pass", mail_from="auth@example.com",
                      public_url=FRONT_END)  # fmt: skip
    assert str(refused.value) == (
        "the credentials (S3AUTH_SMTP_USERNAME, S3AUTH_SMTP_PASSWORD) would travel in clear "
        "text over S3AUTH_SMTP_SECURITY=none: use starttls or tls"
    )


def test_security_none_to_another_machine_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    # Allowed, for a relay on a private network; but the links cross it in clear text.
    with caplog.at_level(logging.INFO):
        for host in ("127.0.0.1", "localhost", "::1"):
            SMTPMailer(host, sender="auth@example.com", security="none")
        SMTPMailer("mail.example.com", sender="auth@example.com", security="starttls")
        SMTPMailer("relay.internal", sender="auth@example.com", security="none")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            logging.WARNING,
            "SMTP to relay.internal:25 is not encrypted (security none, meant for a relay on "
            "this machine): the mails, and the links in them, cross the network in clear text",
        )
    ]


def unicode_reset(to: str) -> Message:
    return Message(to=clean_email(to), subject="Hi", text="t #token=pr1.x", kind="password_reset")


@pytest.mark.parametrize(
    ("sender", "shown"),
    [
        ("auth@bücher.example", "auth@xn--bcher-kva.example"),
        # The domain within a name's angle brackets as well.
        ("Bücher Auth <auth@bücher.example>", "Bücher Auth <auth@xn--bcher-kva.example>"),
    ],
)
async def test_a_unicode_domain_goes_as_punycode_where_smtputf8_is_not_offered(
    sender: str, shown: str
) -> None:
    with smtp_server() as server:  # offers no SMTPUTF8
        mailer = SMTPMailer(server.host, port=server.port, sender=sender, security="none")
        await mailer.send(unicode_reset("user@Bücher.de"))
        (received,) = server.inbox.wait_for(1)
        assert server.inbox.recipients == [["user@xn--bcher-kva.de"]]
        assert server.inbox.senders == ["auth@xn--bcher-kva.example"]
        assert received["To"] == "user@xn--bcher-kva.de"
        assert received["From"] == shown
        assert received["Message-ID"].endswith("@xn--bcher-kva.example>")


async def test_a_unicode_local_part_needs_smtputf8_and_the_log_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with smtp_server() as plain, smtp_server(smtputf8=True) as international:
        for server in (plain, international):
            mailer = SMTPMailer(server.host, port=server.port, sender="auth@example.com",
                                security="none")  # fmt: skip
            service = S3AuthService(make_settings(public_url=FRONT_END), mailer=mailer)
            with caplog.at_level(logging.INFO):
                service.mail.send_later(unicode_reset("jörg@bücher.de"))
                await service.mail.drain()
        assert international.inbox.recipients == [["jörg@bücher.de"]]
        assert plain.inbox.messages == []
    assert [r.getMessage() for r in caplog.records if r.name == "s3auth_asgi.mail"] == [
        "sending a password_reset message failed: the mail server does not offer SMTPUTF8, "
        "which an address that is not ASCII before its @ needs"
    ]


async def test_the_ehlo_name_is_looked_up_once_a_mailer_not_once_a_mail(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # smtplib looks up the machine's own name (socket.getfqdn, a reverse DNS lookup that
    # takes seconds where reverse DNS answers slowly) for every client it makes, before
    # the connection exists, where the send's deadline cannot cut it short.
    lookups: list[str] = []
    real_getfqdn = socket.getfqdn

    def getfqdn(name: str = "") -> str:
        caller = sys._getframe(1).f_code.co_filename
        lookups.append(caller)
        return real_getfqdn(name)

    monkeypatch.setattr(socket, "getfqdn", getfqdn)
    with smtp_server() as server:
        mailer = SMTPMailer(server.host, port=server.port, sender="auth@example.com",
                            security="none")  # fmt: skip
        for number in range(3):
            await mailer.send(unicode_reset(f"user{number}@example.com"))
        assert len(server.inbox.wait_for(3)) == 3
    # The server, in this process too, looks up its own name for each connection.
    assert [caller for caller in lookups if caller != aiosmtpd.smtp.__file__] == [smtplib.__file__]
