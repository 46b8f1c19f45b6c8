"""A mail server that stalls costs the host nothing but the mail: sends run on at most 4
threads of their own (never anyio's default limiter, which the host's sync endpoints and
the local store share), each send ends at the SMTP timeout however the server trickles,
an address that drops connections leaves time for the next, at most 100 messages wait,
and at shutdown the ones still in flight get a few seconds, then are logged: the auth app
served alone, the FastAPI and Litestar integrations and the demo each see to it in their
lifespan. Against real sockets on 127.0.0.1 and 127.0.0.2: a server that never answers,
one that trickles its greeting, one that drops connection attempts, aiosmtpd."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from conftest import make_settings
from fastapi import FastAPI
from litestar import Litestar
from mail_support import dropping_listener, silent_server, smtp_server, trickling_server
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from support import run_lifespan
from test_app import PASSWORD, client_for, mounted

from s3auth_asgi import S3AuthService
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.app.fastapi import include_auth
from s3auth_asgi.app.litestar import S3AuthPlugin
from s3auth_asgi.demo.app import create_demo_app
from s3auth_asgi.mail import MailFailure, Message, SMTPMailer, delivery

pytestmark = pytest.mark.anyio

FRONT_END = "https://app.example.com"
SENDER = "auth@example.com"
STARTED_AND_STOPPED = ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def sync_page(request: Any) -> PlainTextResponse:
    """A host's ordinary sync endpoint: Starlette runs it on anyio's default limiter."""
    return PlainTextResponse("ok")


def reset(to: str = "alice@example.com") -> Message:
    return Message(to=to, subject="s", text="t #token=pr1.secret", kind="password_reset")


def mail_logs(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "s3auth_asgi.mail"]


async def test_a_silent_mail_server_leaves_the_hosts_threads_alone(tmp_path: Path) -> None:
    with silent_server() as dead:
        settings = make_settings(
            f"file://{tmp_path}",  # whose writes run on anyio's default threads
            smtp_host=dead.host,
            smtp_port=dead.port,
            smtp_security="none",
            smtp_timeout_seconds=60,
            mail_from=SENDER,
            public_url=FRONT_END,
        )
        service = S3AuthService(settings)
        await service.create_user("alice", "alice@example.com", PASSWORD, email_verified=True)
        auth = create_auth_app(service, rate_limit=False)
        host = Starlette(routes=[Route("/page", sync_page), Mount("/auth", app=auth)])
        for number in range(45):  # more than anyio's 40 default threads
            service.mail.send_later(reset(f"user{number}@example.com"))
        await dead.wait_for(4)
        # 45 mails in flight and the server says nothing: 4 of them hold a thread each,
        # none of them one of anyio's default threads.
        assert anyio.to_thread.current_default_thread_limiter().borrowed_tokens == 0
        async with client_for(host) as client:
            page = await client.get("/page")
            assert (page.status_code, page.text) == (200, "ok")
            logged_in = await client.post(
                "/auth/login",
                data={"grant_type": "password", "username": "alice", "password": PASSWORD},
            )
            assert logged_in.status_code == 200, logged_in.text
            forgot = await client.post("/auth/password/forgot", json={"username": "alice"})
            assert forgot.status_code == 202
        assert len(dead.connections) == 4
        dead.close()  # every send fails at once now: refused, or cut off
        await service.mail.drain()


async def test_a_trickling_server_is_cut_off_at_the_timeout() -> None:
    # A byte every 0.1 s is within any per-read timeout: only a deadline for the whole
    # exchange stops it before the 10 s the greeting takes.
    with trickling_server(every=0.1, count=100) as slow:
        mailer = SMTPMailer(slow.host, port=slow.port, sender=SENDER, security="none", timeout=1)
        with pytest.raises(Exception) as raised:
            await mailer.send(reset())
        assert str(raised.value) == "the SMTP exchange took longer than 1 s"
        assert slow.cut_off.wait(5)


def fake_name(
    monkeypatch: pytest.MonkeyPatch, name: str, addresses: list[str], *, after: float = 0.0
) -> None:
    """`name` resolves to `addresses`, in that order, `after` seconds (a DNS server that
    stalls); every other name as the machine resolves it."""
    resolve = socket.getaddrinfo

    def answer(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in (name, name.encode()):  # anyio asks in the name's ASCII form
            return resolve(host, port, *args, **kwargs)
        time.sleep(after)
        return [info for address in addresses for info in resolve(address, port, *args, **kwargs)]

    monkeypatch.setattr(socket, "getaddrinfo", answer)


async def test_a_stalled_name_lookup_is_within_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    # Looked up by the worker thread, the name would hold the send for the resolver's own
    # timeouts (5 s a try, several tries), which the deadline cannot cut.
    with smtp_server() as server:
        # Stalled past the bound asserted below: a lookup the deadline did not cut fails it.
        fake_name(monkeypatch, "mail.stalled.test", ["127.0.0.1"], after=3)
        mailer = SMTPMailer(
            "mail.stalled.test", port=server.port, sender=SENDER, security="none", timeout=1
        )
        started = time.monotonic()
        with pytest.raises(MailFailure) as raised:
            await mailer.send(reset())
        assert time.monotonic() - started < 2.5
        assert str(raised.value) == "the SMTP exchange took longer than 1 s"
        assert server.inbox.messages == []


async def test_a_host_name_is_tried_at_each_of_its_addresses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Nothing listens on 127.0.0.2: refused there, the send goes on to the next address.
    with smtp_server() as server:
        fake_name(monkeypatch, "mail.two.test", ["127.0.0.2", "127.0.0.1"])
        mailer = SMTPMailer("mail.two.test", port=server.port, sender=SENDER, security="none")
        await mailer.send(reset())
        assert [mail["To"] for mail in server.inbox.messages] == ["alice@example.com"]


async def test_an_address_that_drops_connections_leaves_time_for_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A firewall that drops packets (an AAAA record where IPv6 is filtered, say) answers no
    # connection, and refuses none either: given the whole timeout, the first address
    # would leave nothing for the second, which answers.
    with smtp_server() as server, dropping_listener("127.0.0.2", server.port):
        fake_name(monkeypatch, "mail.dropped.test", ["127.0.0.2", "127.0.0.1"])
        mailer = SMTPMailer(
            "mail.dropped.test", port=server.port, sender=SENDER, security="none", timeout=2
        )
        await mailer.send(reset())
        assert [mail["To"] for mail in server.inbox.messages] == ["alice@example.com"]


async def test_past_100_waiting_messages_one_is_dropped_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with silent_server() as dead:
        mailer = SMTPMailer(dead.host, port=dead.port, sender=SENDER, security="none")
        service = S3AuthService(make_settings(public_url=FRONT_END), mailer=mailer)
        await service.create_user("alice", "alice@example.com", PASSWORD, email_verified=True)
        for _ in range(100):
            service.mail.send_later(reset())
        with caplog.at_level(logging.INFO):
            async with client_for(mounted(service)) as client:
                known = await client.post("/auth/password/forgot", json={"username": "alice"})
                unknown = await client.post("/auth/password/forgot", json={"username": "nobody"})
        # The same answer as for a name with no account: nothing tells the mail was lost.
        assert (known.status_code, known.content) == (unknown.status_code, unknown.content)
        assert known.status_code == 202
        assert mail_logs(caplog) == [
            (
                logging.WARNING,
                "100 messages are waiting to be sent already: a password_reset message was dropped",
            )
        ]
        assert "alice@example.com" not in caplog.text and "pr1." not in caplog.text
        dead.close()
        await service.mail.drain()


def fastapi_host(service: S3AuthService) -> Any:
    app = FastAPI()
    include_auth(app, service)
    return app


HOSTS: dict[str, Callable[[S3AuthService], Any]] = {
    "alone": create_auth_app,
    "fastapi": fastapi_host,
    "litestar": lambda service: Litestar([], plugins=[S3AuthPlugin(service)]),
    "demo": create_demo_app,
}


@pytest.mark.parametrize("host", HOSTS)
async def test_at_shutdown_the_mail_in_flight_is_waited_for(host: str) -> None:
    # The server takes half a second to accept: a shutdown that did not wait would have
    # ended long before.
    with smtp_server(delay=0.5) as server:
        mailer = SMTPMailer(server.host, port=server.port, sender=SENDER, security="none")
        service = S3AuthService(make_settings(public_url=FRONT_END), mailer=mailer)
        app = HOSTS[host](service)
        await service.create_user("alice", "alice@example.com", PASSWORD)
        await service.request_password_reset("alice")
        assert [m["type"] for m in await run_lifespan(app)] == STARTED_AND_STOPPED
        assert len(server.inbox.messages) == 1
        assert service.mail.pending == 0


async def test_the_hosts_own_lifespan_still_runs_around_it() -> None:
    ran: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ran.append("startup")
        yield
        ran.append("shutdown")

    with smtp_server(delay=0.5) as server:
        mailer = SMTPMailer(server.host, port=server.port, sender=SENDER, security="none")
        service = S3AuthService(make_settings(public_url=FRONT_END), mailer=mailer)
        app = FastAPI(lifespan=lifespan)
        include_auth(app, service)
        await service.create_user("alice", "alice@example.com", PASSWORD)
        await service.request_password_reset("alice")
        assert [m["type"] for m in await run_lifespan(app)] == STARTED_AND_STOPPED
        assert ran == ["startup", "shutdown"]
        assert len(server.inbox.messages) == 1


async def test_at_shutdown_mail_still_in_flight_is_logged_as_lost(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A shutdown's wait made short: past it the mail is lost however long it is, and
    # `test_at_shutdown_the_mail_in_flight_is_waited_for` shows that it is waited.
    monkeypatch.setattr(delivery, "CLOSE_SECONDS", 0.5)
    with silent_server() as dead:
        mailer = SMTPMailer(dead.host, port=dead.port, sender=SENDER, security="none", timeout=60)
        service = S3AuthService(make_settings(public_url=FRONT_END), mailer=mailer)
        alice = await service.create_user("alice", "alice@example.com", PASSWORD)
        await service.request_password_reset("alice")
        await service.request_password_reset("alice")
        await service.send_email_verification(alice)
        with caplog.at_level(logging.INFO):
            sent = await run_lifespan(create_auth_app(service))
        assert [m["type"] for m in sent] == STARTED_AND_STOPPED
        assert mail_logs(caplog) == [
            (
                logging.WARNING,
                "3 messages were still being sent at shutdown and are lost: "
                "2 password_reset, 1 email_verification",
            )
        ]
        assert "alice@example.com" not in caplog.text
        assert service.mail.pending == 0  # cancelled, each cutting its connection


def test_mail_cancelled_as_the_event_loop_ends_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # No lifespan waited for it: the loop's end cancels the sending task.
    with silent_server() as dead:

        async def serve_and_stop() -> None:
            mailer = SMTPMailer(dead.host, port=dead.port, sender=SENDER, security="none")
            service = S3AuthService(make_settings(public_url=FRONT_END), mailer=mailer)
            service.mail.send_later(reset())
            await dead.wait_for(1)

        with caplog.at_level(logging.INFO):
            asyncio.run(serve_and_stop())
    assert mail_logs(caplog) == [
        (logging.WARNING, "a password_reset message was not sent: its sending was cancelled")
    ]
