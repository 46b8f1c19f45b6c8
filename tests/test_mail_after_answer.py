"""Nothing of a mail runs before the answer of the request that asked for it is sent: not
the message's building, not a mailer's first step. The mail is sent in the background so
that an answer tells nothing by it, but a task started during the request runs at the
first await that yields, and the server's or a middleware's `send` of the answer may well
be one: its work (a millisecond of building for SMTPMailer) would then delay the answer
for an account that gets mail, and not for a name that is nobody's."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest
from conftest import make_settings
from test_app import PASSWORD, bearer, client_for, login

from s3auth_asgi import S3AuthService
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.mail import Message, held_mail
from s3auth_asgi.types import ASGIApp, Receive, Scope, Send

pytestmark = pytest.mark.anyio


class Recorder:
    """A mailer that notes when it is called, beside the answers in `log`."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def send(self, message: Message) -> None:
        self.log.append(f"mail {message.kind}")


def yielding(app: ASGIApp, log: list[str]) -> ASGIApp:
    """`app` behind a middleware whose `send` yields to the event loop before it passes a
    message on, as one built on a memory stream does, and that notes each answer."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        async def passed_on(message: Any) -> None:
            await anyio.lowlevel.checkpoint()
            if message["type"] == "http.response.start":
                log.append(f"answer {message['status']}")
            await send(message)

        await app(scope, receive, passed_on)

    return middleware


async def test_no_mail_work_runs_before_the_answer_is_sent() -> None:
    log: list[str] = []
    settings = make_settings(public_url="https://app.example.com")
    service = S3AuthService(settings, mailer=Recorder(log))
    app = yielding(create_auth_app(service, rate_limit=False), log)
    async with client_for(app) as client:
        registered = await client.post(
            "/register",
            json={"username": "alice", "email": "alice@example.com", "password": PASSWORD},
        )
        assert registered.status_code == 201
        await service.mail.drain()
        assert log == ["answer 201", "mail email_verification"]
        tokens = await login(client, "alice", prefix="")
        log.clear()
        for path in ("/password/forgot", "/email/verify/resend"):
            asked = await client.post(path, json={"username": "alice"})
            assert asked.status_code == 202
            await service.mail.drain()
        changed = await client.patch(
            "/me",
            json={"email": "alice2@example.com", "current_password": PASSWORD},
            headers=bearer(tokens),
        )
        assert changed.status_code == 200, changed.text
        await service.mail.drain()
    assert log == [
        "answer 202",
        "mail password_reset",
        "answer 202",
        "mail email_verification",
        "answer 200",
        "mail email_change",
        "mail email_change_notice",
    ]


async def test_the_mail_still_goes_when_the_answer_cannot_be_sent() -> None:
    # The link was issued: a client gone before its answer still gets its mail.
    log: list[str] = []
    service = S3AuthService(
        make_settings(public_url="https://app.example.com"), mailer=Recorder(log)
    )
    await service.create_user("alice", "alice@example.com", PASSWORD, email_verified=True)
    app = create_auth_app(service, rate_limit=False)
    body = b'{"username": "alice"}'
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/password/forgot",
        "raw_path": b"/password/forgot",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Any) -> None:
        raise OSError("the client is gone")

    with pytest.raises(OSError, match="the client is gone"):
        await app(scope, receive, send)
    await service.mail.drain()
    assert log == ["mail password_reset"]


async def test_a_task_started_within_a_hold_mails_at_once_after_it() -> None:
    log: list[str] = []
    service = S3AuthService(
        make_settings(public_url="https://app.example.com"), mailer=Recorder(log)
    )
    message = Message(to="a@example.com", subject="s", text="t", kind="password_changed_notice")
    later = anyio.Event()

    async def outliving() -> None:  # started within, with a copy of its context
        await later.wait()
        service.mail.send_later(message)

    async with anyio.create_task_group() as tasks:
        with held_mail():
            tasks.start_soon(outliving)
            service.mail.send_later(message)
            await anyio.sleep(0)
            assert log == []
        await service.mail.drain()
        assert log == ["mail password_changed_notice"]
        later.set()
    await service.mail.drain()
    assert log == ["mail password_changed_notice"] * 2
