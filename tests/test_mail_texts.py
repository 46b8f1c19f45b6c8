"""What the mails say: the default texts carry nothing a registrant chose to an address no
one has verified, templates of one's own still get every value, and a link's path cannot
take it off the front end's host. Over SMTP, a subject holds what the template and its
values say, and no more: a client's words in it open no header of their own."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from conftest import make_settings
from mail_support import mailing_settings, smtp_server
from test_app import PASSWORD, client_for, login, mounted, register
from test_app_lifecycle import service_with

from s3auth_asgi import ConfigurationError, S3AuthService
from s3auth_asgi.mail import (
    FileMailer,
    MailDelivery,
    MailTemplate,
    MailTemplates,
    Message,
    set_subject_header,
)

pytestmark = pytest.mark.anyio

LURE = "Urgent.reset-at.www.acct-help.example"
"""A username that reads as a host in a mail reader, which links it."""


async def test_a_username_is_not_mailed_to_the_address_it_was_registered_with(
    tmp_path: Path,
) -> None:
    service = service_with(tmp_path)
    async with client_for(mounted(service)) as client:
        registered = await client.post(
            "/auth/register",
            json={"username": LURE, "email": "victim@example.org", "password": PASSWORD},
        )
        assert registered.status_code == 201, registered.text
        asked = await client.post("/auth/password/forgot", json={"username": LURE})
        assert asked.status_code == 202
    await service.mail.drain()
    assert isinstance(service.mail.mailer, FileMailer)
    messages = service.mail.mailer.messages()
    assert sorted(m.kind for m in messages) == ["email_verification", "password_reset"]
    for message in messages:
        assert message.to == "victim@example.org"
        assert "acct-help" not in message.subject + message.text.lower(), message.kind
        assert message.text.startswith("Hello,\n\n")


def test_a_template_of_ones_own_still_gets_the_username() -> None:
    own = MailTemplates(email_verification=MailTemplate("Hi $username", "$username: $link"))
    delivery = MailDelivery(None, own, "https://app.example.com")
    message = delivery.compose(
        "email_verification", to="a@example.com", username="alice", token="ev1.x.y",
        lifetime_seconds=60,
    )  # fmt: skip
    assert message.subject == "Hi alice"
    assert message.text == "alice: https://app.example.com/verify-email#token=ev1.x.y"


@pytest.mark.parametrize("field", ["reset_path", "verify_path"])
@pytest.mark.parametrize(
    "path",
    [
        ".evil.example/r",  # https://app.example.com.evil.example/r
        "@evil.example/r",  # https://app.example.com@evil.example/r
        ":8443/r",
        "reset",
        "",
        "//evil.example/r",  # another host wherever the public URL is empty
        "/\\evil.example/r",  # the same to a browser
        "/r#",  # a fragment before the token's
        "/r x",
        "/r\n",
    ],
)
def test_a_path_that_could_leave_the_front_end_is_refused(field: str, path: str) -> None:
    with pytest.raises(ConfigurationError, match=f"MailTemplates.{field}"):
        MailTemplates(**{field: path})  # type: ignore[arg-type]


def test_a_path_on_the_front_end_makes_the_link() -> None:
    templates = MailTemplates(reset_path="/account/new-password?step=2", verify_path="/v")
    delivery = MailDelivery(None, templates, "https://app.example.com/")
    assert delivery.link("password_reset", "pr1.x.y") == (
        "https://app.example.com/account/new-password?step=2#token=pr1.x.y"
    )
    assert delivery.link("email_verification", "ev1.x.y") == (
        "https://app.example.com/v#token=ev1.x.y"
    )


FORGED_AGENT = (
    "Mozilla/5.0 =?utf-8?q?=0D=0AReply-To:_help@evil.example=0D=0A=0D=0A"
    "It_was_a_routine_check:_nothing_to_do.?="
)
"""A User-Agent that is one RFC 2047 encoded word: decoded, a line break, a header, and a
blank line that ends the headers."""


async def test_a_user_agent_in_a_subject_is_mailed_as_it_reads() -> None:
    # Whoever signs in chooses the User-Agent, and the notice goes to the account's owner.
    # Python's email package decodes an encoded word in a header value it is given, and
    # writes what it decoded, line breaks and all: a header of the client's own, or a body.
    templates = MailTemplates(
        new_device_notice=MailTemplate("New sign-in: $device", "Signed in with $device.\n")
    )
    with smtp_server() as server:
        settings = mailing_settings(server, public_url="https://app.example.com")
        service = S3AuthService(settings, mail_templates=templates)
        async with client_for(mounted(service)) as client:
            await register(client, "alice")
            await login(client, "alice", user_agent=FORGED_AGENT)
            await service.mail.drain()
        received = server.inbox.wait_for(2)  # the verification, the notice
    (notice,) = [m for m in received if m["Subject"].startswith("New sign-in")]
    assert notice["Subject"] == f"New sign-in: {FORGED_AGENT}"
    assert notice["Reply-To"] is None
    assert notice.get_content() == f"Signed in with {FORGED_AGENT}.\r\n"


class OwnMailer:
    """A host's own mailer, building its mails with the standard library as the docs
    show: what it would hand its provider, written out."""

    def __init__(self) -> None:
        self.written: list[bytes] = []

    async def send(self, message: Message) -> None:
        mail = EmailMessage()
        mail["From"] = "auth@example.com"
        mail["To"] = message.recipient()
        set_subject_header(mail, message.subject)
        mail.set_content(message.text)
        self.written.append(mail.as_bytes())


async def test_a_mailer_of_ones_own_writes_the_subject_as_it_reads(tmp_path: Path) -> None:
    templates = MailTemplates(
        new_device_notice=MailTemplate("New sign-in: $device", "Signed in with $device.\n")
    )
    mailer = OwnMailer()
    service = S3AuthService(
        make_settings(public_url="https://app.example.com"),
        mailer=mailer,
        mail_templates=templates,
    )
    async with client_for(mounted(service)) as client:
        await register(client, "alice")
        await login(client, "alice", user_agent=FORGED_AGENT)
        await service.mail.drain()
    read = [email.message_from_bytes(m, policy=email.policy.default) for m in mailer.written]
    (notice,) = [m for m in read if m["Subject"].startswith("New sign-in")]
    assert notice["Subject"] == f"New sign-in: {FORGED_AGENT}"
    assert notice["Reply-To"] is None
    assert notice.get_body(("plain",)).get_content() == f"Signed in with {FORGED_AGENT}.\n"  # type: ignore[union-attr]
    # A subject that reads as itself is written as it is.
    (verification,) = [m for m in mailer.written if b"Subject: Confirm your email address" in m]
    assert b"=?" not in verification.split(b"\n\n", 1)[0]
