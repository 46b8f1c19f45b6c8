"""What the mails say: the default texts carry nothing a registrant chose to an address no
one has verified, templates of one's own still get every value, and a link's path cannot
take it off the front end's host."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_app import PASSWORD, client_for, mounted
from test_app_lifecycle import service_with

from s3auth_asgi import ConfigurationError
from s3auth_asgi.mail import FileMailer, MailDelivery, MailTemplate, MailTemplates

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
