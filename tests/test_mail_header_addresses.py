"""Addresses as a mail header reads them. Python's email package decodes an RFC 2047
encoded word wherever it finds one, in the local part of an address too, and a mailer that
takes its recipients from the To header (as `smtplib.send_message` does unless told them)
would mail another address than the one stored. So such an address is refused wherever one
is taken, a mailer sends to the address it was given, and an account stored with one
before keeps signing in but is mailed nothing, which the log says (without the message)."""

from __future__ import annotations

import logging

import pytest
from mail_support import SMTPServer, mailing_settings, smtp_server
from test_app import PASSWORD, assert_problem, bearer, client_for, login, mounted, register

from s3auth_asgi import ConfigurationError, InvalidEmailError, S3AuthService, User
from s3auth_asgi.identifiers import fold, new_id
from s3auth_asgi.mail import MailFailure, Message, SMTPMailer
from s3auth_asgi.models import IndexEntry
from s3auth_asgi.storage import keys

pytestmark = pytest.mark.anyio

FRONT_END = "https://app.example.com"
# An address at victim.example, which the header parser reads as attacker@evil.example.
SMUGGLED = "=?utf-8?q?attacker=40evil.example=3E?=foo@victim.example"
NOT_SENT = (
    "the address would not read as itself in a mail header (it holds an encoded word, say): "
    "nothing was sent"
)


def mailing(server: SMTPServer) -> S3AuthService:
    return S3AuthService(mailing_settings(server, public_url=FRONT_END))


def reset(to: str) -> Message:
    return Message(to=to, subject="Hi", text="t #token=pr1.x", kind="password_reset")


async def test_an_address_a_header_reads_as_another_cannot_register() -> None:
    with smtp_server() as server:
        service = mailing(server)
        async with client_for(mounted(service)) as client:
            refused = await client.post(
                "/auth/register",
                json={"username": "mallory", "email": SMUGGLED, "password": PASSWORD},
            )
            assert_problem(refused, 422, "invalid_email")
        await service.mail.drain()
        assert await service.get_user_by_username("mallory") is None
        assert server.inbox.messages == []


async def test_nor_be_asked_for_as_a_new_address() -> None:
    with smtp_server() as server:
        service = mailing(server)
        async with client_for(mounted(service)) as client:
            mallory = await register(client, "mallory")
            tokens = await login(client, "mallory")
            asked = await client.patch(
                "/auth/me",
                json={"email": SMUGGLED, "current_password": PASSWORD},
                headers=bearer(tokens),
            )
            assert_problem(asked, 422, "invalid_email")
        # Nor given by an administrator or a host.
        with pytest.raises(InvalidEmailError):
            await service.update_user(mallory["id"], email=SMUGGLED)
        await service.mail.drain()
        user = await service.get_user_by_username("mallory")
        assert user is not None and (user.email, user.pending_email) == ("mallory@example.com", "")
        # The registration's verification link and the notice of the login, the client's
        # first (`tests/test_login_notices.py`): both to the account's own address alone.
        assert server.inbox.recipients == [["mallory@example.com"]] * 2
        subjects = sorted(m["Subject"] for m in server.inbox.messages)
        assert subjects[0] == "A new sign-in to your account" and subjects[1].startswith("Confirm")


async def test_an_account_stored_with_one_before_signs_in_but_is_mailed_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with smtp_server() as server:
        service = mailing(server)
        model = await service.create_user("model", "model@example.com", PASSWORD)
        await service.delete_user(model.id)
        old = User(
            id=new_id(), username="mallory", email=SMUGGLED, hashed_password=model.hashed_password
        )
        await service.store.create(keys.username_index("mallory"), IndexEntry(old.id))
        await service.store.create(keys.email_index(fold(SMUGGLED)), IndexEntry(old.id))
        await service.store.create(keys.user(old.id), old)
        for name in ("mallory", SMUGGLED):
            found = await service.authenticate_user(name, PASSWORD)
            assert found is not None and found.id == old.id
        with caplog.at_level(logging.INFO):
            await service.request_password_reset("mallory")
            await service.send_email_verification(old)
            await service.mail.drain()
        assert server.inbox.messages == []
        failures = sorted(r.getMessage() for r in caplog.records if r.name == "s3auth_asgi.mail")
        assert failures == [
            f"sending a email_verification message failed: {NOT_SENT}",
            f"sending a password_reset message failed: {NOT_SENT}",
        ]
        logged = " ".join(r.getMessage() + repr(r.args) for r in caplog.records)
        for secret_or_address in ("pr1.", "ev1.", "attacker", "victim"):
            assert secret_or_address not in logged


async def test_the_smtp_mailer_sends_to_the_address_it_was_given_or_to_none() -> None:
    # Given a message by code that bypasses every check on the address, as a host's may.
    with smtp_server() as server:
        mailer = SMTPMailer(
            server.host, port=server.port, sender="Auth <auth@example.com>", security="none"
        )
        with pytest.raises(MailFailure) as refused:
            await mailer.send(reset(SMUGGLED))
        assert str(refused.value) == NOT_SENT
        await mailer.send(reset("bob@example.com"))
        (received,) = server.inbox.wait_for(1)
        assert server.inbox.recipients == [["bob@example.com"]]
        assert server.inbox.senders == ["auth@example.com"]
        assert (received["To"], received["From"]) == ("bob@example.com", "Auth <auth@example.com>")
        assert received["Message-ID"].endswith("@example.com>")


@pytest.mark.parametrize(
    "sender",
    ["auth@example.com, other@example.com", "Team: a@example.com, b@example.com;", "a@b@c.example"],
)
def test_a_sender_that_names_no_one_address_is_refused(sender: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        SMTPMailer("127.0.0.1", sender=sender, security="none")
    assert str(refused.value) == (
        "SMTPMailer's sender must name one address (auth@example.com, or "
        "Name <auth@example.com>), as a mail header reads it"
    )
