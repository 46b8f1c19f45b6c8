"""The mails a change of address sends to addresses the caller chose: the link to the new
address, and the notice to the address the account has (which its registrant typed, and
need not have verified). Each spends the budgets of the inbox it goes to, as the reset and
verification mails do (`recovery_account`, `recovery_inbox`), kept in the store and so
shared by every instance: past them the request is 429 and nothing is written or mailed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import make_settings
from support import Clock, clock_fixture  # noqa: F401 (a fixture)
from test_app import PASSWORD, assert_problem, bearer, client_for, login, mounted, register

from s3auth_asgi import S3AuthService
from s3auth_asgi.app import DEFAULT_AUTH_LIMITS
from s3auth_asgi.mail import FileMailer
from s3auth_asgi.storage import ObjectStore

pytestmark = pytest.mark.anyio

PER_INBOX = DEFAULT_AUTH_LIMITS["recovery_inbox"].max_requests
PER_INBOX_AND_ADDRESS = DEFAULT_AUTH_LIMITS["recovery_account"].max_requests
STRANGER = "stranger@example.net"


class Fleet:
    """Two instances, each with its own outbox, on one store that keeps their limits: one
    memory:// store object, or (`on_disk`) two handles on one file:// directory, as two
    processes have."""

    def __init__(self, tmp_path: Path, clock: Clock, *, on_disk: bool = False) -> None:
        url = (tmp_path / "store").as_uri() if on_disk else "memory://"
        shared = None if on_disk else ObjectStore.from_url(url)
        self.services = [
            S3AuthService(
                make_settings(url, rate_limit_store="store"),
                store=shared if shared is not None else ObjectStore.from_url(url),
                clock=clock,
                mailer=FileMailer(tmp_path / f"outbox{i}"),
            )
            for i in range(2)
        ]
        self.apps = [mounted(service, rate_limit=True) for service in self.services]

    def client(self, i: int, ip: str) -> httpx.AsyncClient:
        return client_for(self.apps[i % 2], peer=(ip, 4000))

    async def mails(self, kind: str, to: str) -> int:
        """How many mails of `kind` both instances sent to `to`."""
        sent = 0
        for service in self.services:
            await service.mail.drain()
            assert isinstance(service.mail.mailer, FileMailer)
            sent += sum(
                1 for m in service.mail.mailer.messages(1000) if m.kind == kind and m.to == to
            )
        return sent


async def ask_for(
    fleet: Fleet, i: int, ip: str, tokens: dict[str, Any], address: str
) -> httpx.Response:
    async with fleet.client(i, ip) as client:
        body = {"email": address, "current_password": PASSWORD}
        return await client.patch("/auth/me", json=body, headers=bearer(tokens))


def assert_refused_quietly(response: httpx.Response) -> None:
    """A 429 that says when to try again, and nothing of how often others asked."""
    assert_problem(response, 429, "rate_limited")
    assert int(response.headers["retry-after"]) >= 1
    assert "recovery" not in response.headers.get("ratelimit", "")
    assert "recovery" not in response.headers.get("ratelimit-policy", "")


@pytest.mark.parametrize("on_disk", [False, True], ids=["memory", "file"])
async def test_a_strangers_inbox_gets_its_budget_from_any_number_of_accounts(
    tmp_path: Path, clock: Clock, on_disk: bool
) -> None:
    fleet = Fleet(tmp_path, clock, on_disk=on_disk)
    callers = []
    for i in range(PER_INBOX + 4):
        async with fleet.client(i, f"198.51.100.{i + 1}") as client:
            user = await register(client, f"user{i}")
            callers.append((user["id"], await login(client, f"user{i}")))
    answers = [
        await ask_for(fleet, i, f"198.51.100.{i + 1}", tokens, STRANGER)
        for i, (_, tokens) in enumerate(callers)
    ]
    assert [a.status_code for a in answers] == [200] * PER_INBOX + [429] * 4
    assert await fleet.mails("email_change", STRANGER) == PER_INBOX
    for (user_id, _), answer in list(zip(callers, answers, strict=True))[PER_INBOX:]:
        assert_refused_quietly(answer)
        user = await fleet.services[0].get_user_by_id(user_id)
        assert user is not None and (user.pending_email, user.email_requests) == ("", 0)
    # Each refused caller's own address was told nothing either: no request was made.
    for i in range(PER_INBOX, PER_INBOX + 4):
        assert await fleet.mails("email_change_notice", f"user{i}@example.com") == 0


async def test_the_address_an_account_has_gets_its_budget_of_notices(
    tmp_path: Path, clock: Clock
) -> None:
    """The account's address is whatever its registrant typed: each request for another
    address sends it a notice, counted against its inbox's budget on every instance."""
    fleet = Fleet(tmp_path, clock)
    async with fleet.client(0, "192.0.2.1") as client:
        user = await register(client, "alice")  # alice@example.com, not verified
        tokens = await login(client, "alice")
    answers = [
        await ask_for(fleet, i, f"198.51.100.{i + 1}", tokens, f"mine{i}@example.org")
        for i in range(PER_INBOX + 4)
    ]
    assert [a.status_code for a in answers] == [200] * PER_INBOX + [429] * 4
    for answer in answers[PER_INBOX:]:
        assert_refused_quietly(answer)
    assert await fleet.mails("email_change_notice", "alice@example.com") == PER_INBOX
    last = f"mine{PER_INBOX - 1}@example.org"
    alice = await fleet.services[1].get_user_by_id(user["id"])
    assert alice is not None and (alice.pending_email, alice.email_requests) == (last, PER_INBOX)
    for i in range(PER_INBOX, PER_INBOX + 4):
        assert await fleet.mails("email_change", f"mine{i}@example.org") == 0


async def test_one_client_address_sends_one_inbox_its_share(tmp_path: Path, clock: Clock) -> None:
    """From one client address, as for reset mails, an inbox gets `recovery_account`'s."""
    fleet = Fleet(tmp_path, clock)
    callers = []
    for i in range(PER_INBOX_AND_ADDRESS + 1):
        async with fleet.client(i, f"198.51.100.{i + 1}") as client:
            await register(client, f"user{i}")
            callers.append(await login(client, f"user{i}"))
    statuses = [
        (await ask_for(fleet, i, "203.0.113.7", tokens, STRANGER)).status_code
        for i, tokens in enumerate(callers)
    ]
    assert statuses == [200] * PER_INBOX_AND_ADDRESS + [429]
    assert await fleet.mails("email_change", STRANGER) == PER_INBOX_AND_ADDRESS
