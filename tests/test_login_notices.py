"""The account's address is told of a login from a device it has not been seen on (no valid
device cookie of the account, in the cookie or the `S3Auth-Device` header), and of its
failure budget spent by wrong passwords, once per time it is spent. A notice holds no link
and no token, goes in the background once the answer is sent, is counted against a budget
of its own per account (`login_notice`), and changes nothing of the login's answer or of
the store requests made before it."""

from __future__ import annotations

import logging
import re
from typing import Any

import httpx
import pytest
from conftest import make_settings
from starlette.applications import Starlette
from starlette.routing import Mount
from support import Clock, StoreWrapper
from test_app import PASSWORD, client_for, register

from s3auth_asgi import S3AuthService, S3AuthSettings
from s3auth_asgi.app import DEFAULT_AUTH_LIMITS, create_auth_app
from s3auth_asgi.app.devices import DEVICE_COOKIE, DEVICE_HEADER
from s3auth_asgi.events import AuthEvent
from s3auth_asgi.mail import Message
from s3auth_asgi.storage import ObjectStore, Store, keys

pytestmark = pytest.mark.anyio

WRONG = "Wrong-pass-99"
ALICE = "alice@example.com"
AGENT = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"
PEER = ("198.51.100.7", 4000)
NOTICE_BUDGET = keys.ratelimit("login_notice", "any").rsplit("/", 1)[0] + "/"


class Outbox:
    """A mailer that keeps what it is given."""

    def __init__(self) -> None:
        self.sent: list[Message] = []

    async def send(self, message: Message) -> None:
        self.sent.append(message)


class Logged(StoreWrapper):
    """Logs each request (its kind and key) in `log`, beside the app's `answered` mark."""

    def __init__(self, inner: Store, log: list[tuple[str, str]]) -> None:
        super().__init__(inner)
        self.log = log

    async def get(self, key: str, type_: type[Any]) -> Any:
        self.log.append(("get", key))
        return await super().get(key, type_)

    async def create(self, key: str, value: Any) -> str:
        self.log.append(("create", key))
        return await super().create(key, value)

    async def replace(self, key: str, value: Any, etag: str) -> str:
        self.log.append(("replace", key))
        return await super().replace(key, value, etag)


class Setup:
    def __init__(self, *, mailer: bool = True, **settings: Any) -> None:
        self.log: list[tuple[str, str]] = []
        self.clock = Clock()
        self.outbox = Outbox()
        values = {"public_url": "https://app.example.com", "rate_limit_store": "store"}
        self.service = S3AuthService(
            make_settings(**{**values, **settings}),
            store=Logged(ObjectStore.from_url("memory://"), self.log),
            mailer=self.outbox if mailer else None,
            clock=self.clock,
        )
        auth = create_auth_app(self.service)

        async def marking(scope: Any, receive: Any, send: Any) -> None:
            async def sending(message: Any) -> None:
                if message["type"] == "http.response.start":
                    self.log.append(("answered", ""))
                await send(message)

            await auth(scope, receive, sending)

        self.app = Starlette(routes=[Mount("/auth", app=marking)])

    def client(self) -> httpx.AsyncClient:
        return client_for(self.app, base_url="https://testserver", peer=PEER)

    async def sent(self) -> list[Message]:
        await self.service.mail.drain()
        return [m for m in self.outbox.sent if m.kind.endswith("_notice")]


async def post_login(
    client: httpx.AsyncClient, name: str, password: str, **headers: str
) -> httpx.Response:
    data = {"username": name, "password": password}
    return await client.post("/auth/login", data=data, headers={"User-Agent": AGENT, **headers})


def login_events(caplog: pytest.LogCaptureFixture) -> list[AuthEvent]:
    found = [r.auth_event for r in caplog.records if r.name == "s3auth_asgi.events"]
    return [e for e in found if e.name.endswith("_notice")]


def assert_plain(message: Message) -> None:
    """A notice: nothing in it opens anything, and it says what to do."""
    assert "#token=" not in message.text and "https://" not in message.text
    assert "reset" in message.text and "log out everywhere" in message.text


async def test_a_login_from_a_new_device_is_told_once_and_a_known_device_is_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "s3auth_asgi.events")
    setup = Setup()
    async with setup.client() as client:
        alice = await register(client, "alice")
        first = await post_login(client, "alice", PASSWORD)
        assert first.status_code == 200, first.text
        (notice,) = await setup.sent()
        assert notice.kind == "new_device_notice" and notice.to == ALICE
        assert_plain(notice)
        assert PEER[0] in notice.text and AGENT in notice.text
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", notice.text)
        # The browser shows its cookie now: a known device.
        assert client.cookies.get(DEVICE_COOKIE)
        again = await post_login(client, "alice", PASSWORD)
        assert again.status_code == 200
        # A client without cookies that keeps the value and sends it back is known too.
        device = again.cookies[DEVICE_COOKIE]
        client.cookies.clear()
        by_header = await post_login(client, "alice", PASSWORD, **{DEVICE_HEADER: device})
        assert by_header.status_code == 200
        assert len(await setup.sent()) == 1
        # One that shows none is new again.
        client.cookies.clear()
        assert (await post_login(client, "alice", PASSWORD)).status_code == 200
        assert [m.kind for m in await setup.sent()] == ["new_device_notice"] * 2
    told = login_events(caplog)
    assert [(e.name, e.outcome, e.user_id, e.client) for e in told] == [
        ("new_device_notice", "success", alice["id"], PEER[0])
    ] * 2


async def test_the_answer_and_the_requests_before_it_are_those_of_a_login_told_nothing() -> None:
    """Notices on or off, the answer is the same and so are the store requests made before
    it; the notice's budget is read and written only once the answer is sent."""
    seen = []
    for notices in (True, False):
        setup = Setup(new_device_notices=notices)
        async with setup.client() as client:
            await register(client, "alice")
            setup.log.clear()
            answer = await post_login(client, "alice", PASSWORD)
        told = await setup.sent()
        assert len(told) == notices
        answered = setup.log.index(("answered", ""))
        before = [(kind, keys.ratelimit_limit_name(key)) for kind, key in setup.log[:answered]]
        after = [(kind, key) for kind, key in setup.log[answered:] if NOTICE_BUDGET in key]
        assert len(after) == (2 if notices else 0)  # the budget's GET and PUT
        headers = {k: v for k, v in answer.headers.items() if k not in ("set-cookie",)}
        seen.append((answer.status_code, sorted(answer.json()), headers, before))
    assert seen[0] == seen[1]


async def test_notices_past_the_accounts_budget_are_dropped_and_the_login_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "s3auth_asgi.events")
    setup = Setup(rate_limits="login_notice=2/86400")
    async with setup.client() as client:
        await register(client, "alice")
        for _ in range(4):
            client.cookies.clear()
            assert (await post_login(client, "alice", PASSWORD)).status_code == 200
        assert len(await setup.sent()) == 2
    assert [e.outcome for e in login_events(caplog)] == ["success"] * 2 + ["refused"] * 2
    assert {e.reason for e in login_events(caplog)[2:]} == {"rate_limited"}


async def test_without_a_mailer_or_with_the_setting_off_nothing_is_told_nor_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "s3auth_asgi.events")
    for setup in (Setup(mailer=False), Setup(new_device_notices=False)):
        async with setup.client() as client:
            await register(client, "alice")
            assert (await post_login(client, "alice", PASSWORD)).status_code == 200
        assert await setup.sent() == []
        assert not [key for _, key in setup.log if NOTICE_BUDGET in key]
    assert login_events(caplog) == []


async def test_a_spent_failure_budget_is_told_once_per_time_it_is_spent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "s3auth_asgi.events")
    setup = Setup()
    async with setup.client() as client:
        alice = await register(client, "alice")
        statuses = [(await post_login(client, "alice", WRONG)).status_code for _ in range(5)]
        assert statuses == [401] * 4 + [401]
        (notice,) = await setup.sent()
        assert notice.kind == "failed_logins_notice" and notice.to == ALICE
        assert_plain(notice)
        assert PEER[0] in notice.text and AGENT not in notice.text
        # Refused without a check from then on: nothing more is told.
        refused = [(await post_login(client, "alice", WRONG)).status_code for _ in range(3)]
        assert refused == [429] * 3
        assert len(await setup.sent()) == 1
        # Once it admits one more, that one spends it again, and is told.
        setup.clock.advance(DEFAULT_AUTH_LIMITS["login_account"].emission_interval)
        assert (await post_login(client, "alice", WRONG)).status_code == 401
        assert (await post_login(client, "alice", WRONG)).status_code == 429
        assert [m.kind for m in await setup.sent()] == ["failed_logins_notice"] * 2
        # A name that is nobody's spends its own budget; nobody is mailed.
        for _ in range(5):
            await post_login(client, "nobody", WRONG)
        assert len(await setup.sent()) == 2
    told = login_events(caplog)
    assert [(e.name, e.outcome, e.user_id) for e in told] == [
        ("failed_logins_notice", "success", alice["id"])
    ] * 2


async def test_wrong_current_passwords_that_spend_the_budget_are_told_too() -> None:
    setup = Setup(new_device_notices=False)
    async with setup.client() as client:
        await register(client, "alice")
        tokens = (await post_login(client, "alice", PASSWORD)).json()
        change = {"current_password": WRONG, "new_password": "Brand-new-pass-7"}
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        statuses = [
            (await client.post("/auth/password", json=change, headers=auth)).status_code
            for _ in range(6)
        ]
        assert statuses == [403] * 5 + [429]
    assert [m.kind for m in await setup.sent()] == ["failed_logins_notice"]


async def test_a_spent_budget_of_a_name_that_is_nobodys_costs_what_an_accounts_does() -> None:
    counts = []
    for name in ("alice", "nobody"):
        setup = Setup()
        async with setup.client() as client:
            await register(client, "alice")
            for _ in range(4):
                await post_login(client, name, WRONG)
            await setup.service.mail.drain()
            setup.log.clear()
            assert (await post_login(client, name, WRONG)).status_code == 401
            await setup.service.mail.drain()
        answered = setup.log.index(("answered", ""))
        counts.append(sorted(kind for kind, _ in setup.log[answered + 1 :]))
    assert counts[0] == counts[1]


def test_each_notice_can_be_turned_off_by_its_variable() -> None:
    settings = S3AuthSettings.from_env(
        {
            "S3AUTH_SECRET_KEY": make_settings().secret_key,
            "S3AUTH_NEW_DEVICE_NOTICES": "false",
            "S3AUTH_FAILED_LOGIN_NOTICES": "false",
        }
    )
    assert settings.new_device_notices is False and settings.failed_login_notices is False
    assert make_settings().new_device_notices and make_settings().failed_login_notices


async def test_each_notice_event_names_the_user_agent_of_the_login_that_made_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Which device an account was told of is the notice event's to say, as a login's
    event says it: cleaned and cut by the one function both take it through. The mail of
    failures still quotes none (`test_a_spent_failure_budget_is_told_once_per_time_it_is_spent`)."""
    caplog.set_level(logging.INFO, "s3auth_asgi.events")
    setup = Setup()
    hostile = AGENT + "\x1b[31m\r\nauth event login success" + "x" * 5_000
    cleaned = (AGENT + "[31mauth event login success" + "x" * 5_000)[:256]
    async with setup.client() as client:
        alice = await register(client, "alice")
        assert (await post_login(client, "alice", PASSWORD)).status_code == 200
        client.cookies.clear()
        assert (
            await post_login(client, "alice", PASSWORD, **{"User-Agent": hostile})
        ).status_code == 200
        client.cookies.clear()
        assert [(await post_login(client, "alice", WRONG)).status_code for _ in range(5)] == [
            401
        ] * 5
        await setup.sent()
    told = login_events(caplog)
    assert [(e.name, e.user_id, e.user_agent) for e in told] == [
        ("new_device_notice", alice["id"], AGENT),
        ("new_device_notice", alice["id"], cleaned),
        ("failed_logins_notice", alice["id"], AGENT),
    ]
    records = [r for r in caplog.records if getattr(r, "event", "").endswith("_notice")]
    assert [r.user_agent for r in records] == [AGENT, cleaned, AGENT]  # type: ignore[attr-defined]
