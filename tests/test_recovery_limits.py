"""The limits on mails asked for by name (`/password/forgot`, `/email/verify/resend`). Only
the caller's own address is answered 429. Past an account's budgets (per account and
address, and per account from any address, whichever of its names is asked about) the
answer is the same 202 and no mail goes. Nothing in an answer tells whether a name is an
account's, or how often others asked about it."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from conftest import make_settings
from support import Clock, clock_fixture  # noqa: F401 (a fixture)
from test_app import assert_problem, client_for, mounted, register

from s3auth_asgi import S3AuthService
from s3auth_asgi.app import DEFAULT_AUTH_LIMITS
from s3auth_asgi.mail import FileMailer
from s3auth_asgi.storage import ObjectStore

pytestmark = pytest.mark.anyio

PER_ADDRESS = DEFAULT_AUTH_LIMITS["recovery"].max_requests
PER_ACCOUNT_AND_ADDRESS = DEFAULT_AUTH_LIMITS["recovery_account"].max_requests
PER_INBOX = DEFAULT_AUTH_LIMITS["recovery_inbox"].max_requests
FORGOT = "/auth/password/forgot"
RESEND = "/auth/email/verify/resend"
ALICE = ("alice", "alice@example.com", "ALICE", "Alice@Example.com")
"""Ways to name alice's account."""


def shared_service(tmp_path: Path, clock: Clock, store_url: str = "memory://") -> S3AuthService:
    """A service whose limits are in its store, as on a fleet, that mails to an outbox."""
    return S3AuthService(
        make_settings(store_url, rate_limit_store="store"),
        store=ObjectStore.from_url(store_url),
        clock=clock,
        mailer=FileMailer(tmp_path / "outbox"),
    )


def from_address(service: S3AuthService, ip: str) -> httpx.AsyncClient:
    return client_for(mounted(service, rate_limit=True), peer=(ip, 4000))


async def ask(service: S3AuthService, ip: str, name: str, path: str = FORGOT) -> httpx.Response:
    async with from_address(service, ip) as client:
        return await client.post(path, json={"username": name})


async def with_alice(service: S3AuthService) -> None:
    async with from_address(service, "192.0.2.1") as client:
        await register(client, "alice")


async def mails_to_alice(service: S3AuthService, kind: str = "password_reset") -> list[str]:
    """The tokens mailed to alice of that kind, newest first."""
    await service.mail.drain()
    assert isinstance(service.mail.mailer, FileMailer)
    return [
        re.findall(r"#token=(\S+)", message.text)[0]
        for message in service.mail.mailer.messages(1000)
        if message.kind == kind and message.to == "alice@example.com"
    ]


async def test_others_asking_do_not_keep_the_owners_link_away(tmp_path: Path, clock: Clock) -> None:
    service = shared_service(tmp_path, clock)
    await with_alice(service)
    # Strangers ask for alice's link from three addresses, one of them over and over.
    statuses = [(await ask(service, f"203.0.113.{i}", "alice")).status_code for i in (1, 2, 3)]
    statuses += [(await ask(service, "203.0.113.1", "alice")).status_code for _ in range(5)]
    assert statuses == [202] * 8
    # Each address has had its own budget of alice's mails: 3 + 1 + 1.
    assert len(await mails_to_alice(service)) == PER_ACCOUNT_AND_ADDRESS + 2
    # The owner, from an address of their own, is not refused for what others asked.
    owner = await ask(service, "198.51.100.7", "alice")
    assert owner.status_code == 202
    assert len(await mails_to_alice(service)) == PER_ACCOUNT_AND_ADDRESS + 3


async def test_a_username_and_its_email_are_one_budget(tmp_path: Path, clock: Clock) -> None:
    service = shared_service(tmp_path, clock)
    await with_alice(service)
    statuses = [(await ask(service, "203.0.113.1", name)).status_code for name in ALICE * 2]
    assert statuses == [202] * 8
    assert len(await mails_to_alice(service)) == PER_ACCOUNT_AND_ADDRESS


async def test_an_inbox_gets_its_budget_from_any_number_of_addresses(
    tmp_path: Path, clock: Clock
) -> None:
    service = shared_service(tmp_path, clock)
    await with_alice(service)
    statuses = [(await ask(service, f"203.0.113.{i}", ALICE[i % 4])).status_code for i in range(15)]
    assert statuses == [202] * 15
    mailed = await mails_to_alice(service)
    assert len(mailed) == PER_INBOX
    # The owner asking now gets no mail more, and the same answer...
    owner = await ask(service, "198.51.100.7", "alice")
    assert owner.status_code == 202
    assert len(await mails_to_alice(service)) == PER_INBOX
    # ...but what the strangers spent the budget on went to the owner's inbox, and works.
    async with from_address(service, "198.51.100.7") as client:
        reset = await client.post(
            "/auth/password/reset", json={"token": mailed[0], "new_password": "Newer-pass-77"}
        )
    assert reset.status_code == 204
    # A mail more as soon as the budget admits one.
    clock.advance(DEFAULT_AUTH_LIMITS["recovery_inbox"].emission_interval)
    assert (await ask(service, "198.51.100.7", "alice")).status_code == 202
    assert len(await mails_to_alice(service)) == PER_INBOX + 1


async def test_verification_requests_spend_no_reset_budget(tmp_path: Path, clock: Clock) -> None:
    service = shared_service(tmp_path, clock)
    await with_alice(service)
    statuses = [
        (await ask(service, f"203.0.113.{i}", "alice", RESEND)).status_code for i in range(15)
    ]
    assert statuses == [202] * 15
    # One link at registration, then the verification budget.
    assert len(await mails_to_alice(service, "email_verification")) == 1 + PER_INBOX
    assert (await ask(service, "198.51.100.7", "alice")).status_code == 202
    assert len(await mails_to_alice(service)) == 1


async def test_the_answers_show_the_callers_own_count_alone(tmp_path: Path, clock: Clock) -> None:
    service = shared_service(tmp_path, clock)
    await with_alice(service)
    for i in range(5):
        await ask(service, f"203.0.113.{i}", "alice")
    async with from_address(service, "198.51.100.7") as client:
        answers = [await client.post(FORGOT, json={"username": "alice"}) for _ in range(2)]
    for answer, left in zip(answers, (PER_ADDRESS - 1, PER_ADDRESS - 2), strict=True):
        assert answer.headers["ratelimit-policy"] == '"recovery";q=10;w=900'
        assert answer.headers["ratelimit"].startswith(f'"recovery";r={left};')


async def test_the_callers_own_address_is_refused_with_a_429(tmp_path: Path, clock: Clock) -> None:
    service = shared_service(tmp_path, clock)
    async with from_address(service, "203.0.113.1") as client:
        for i in range(PER_ADDRESS):
            asked = await client.post(FORGOT, json={"username": f"name{i}"})
            assert asked.status_code == 202
        refused = await client.post(RESEND, json={"username": "another"})
    assert_problem(refused, 429, "rate_limited")
    assert refused.headers["ratelimit-policy"] == '"recovery";q=10;w=900'
    assert int(refused.headers["retry-after"]) >= 1


async def test_known_and_unknown_names_are_answered_alike(tmp_path: Path, clock: Clock) -> None:
    service = shared_service(tmp_path, clock)
    await with_alice(service)
    async with from_address(service, "192.0.2.1") as client:
        off = await register(client, "off")
    await service.update_user(off["id"], is_active=False)
    names = ("alice", "alice@example.com", "nobody", "nobody@example.com", "off")
    answers = set()
    for i, name in enumerate(names):
        service.store.reset_counts()
        response = await ask(service, f"203.0.113.{i}", name)
        headers = sorted(response.headers.items())
        answers.add(
            (
                response.status_code,
                response.content,
                repr(headers),
                repr(dict(service.store.requests)),
            )
        )
    # The address's limit, the index, the user (or one that does not exist), the two budgets
    # of the account (or of the name, for a name that is nobody's), and the token (a decoy
    # where nothing is mailed).
    assert len(answers) == 1
    ((status, _, _, requests),) = answers
    assert (status, requests) == (202, repr({"get": 5, "put": 4}))


@pytest.mark.parametrize("path", [FORGOT, RESEND])
async def test_past_a_budget_known_and_unknown_names_are_answered_alike(
    tmp_path: Path, clock: Clock, path: str
) -> None:
    service = shared_service(tmp_path, clock)
    await with_alice(service)
    seen = {}
    for name, ip in (("alice", "203.0.113.1"), ("nobody", "203.0.113.2")):
        async with from_address(service, ip) as client:
            for _ in range(PER_ACCOUNT_AND_ADDRESS):
                assert (await client.post(path, json={"username": name})).status_code == 202
            service.store.reset_counts()
            past = await client.post(path, json={"username": name})
            seen[name] = (past.status_code, past.content, sorted(past.headers.items()))
            seen[name] += (dict(service.store.requests),)
    assert seen["alice"] == seen["nobody"]
    assert seen["alice"][0] == 202
    # As for any ask (`EVERY_ASK`): the account's budget refuses at the cost of an admission.
    assert seen["alice"][3] == EVERY_ASK


NAMES = {
    "known account": "alice",
    "known email": "alice@example.com",
    "unknown name": "nobody",
    "unknown email": "nobody@example.com",
}
EVERY_ASK = {"get": 5, "put": 4}
"""What asking costs, whatever the name and whatever the budgets say: the address's limit
(GET, PUT), the index GET, the user GET, each of the account's two budgets (GET, PUT,
whether it admits, refuses, or counts nothing past the other's refusal) and the token PUT
(a decoy where nothing is mailed)."""


class OneProcess:
    """One auth app over `service`, asked from any address: its limiter remembers the
    refusals it made, as a server's does."""

    def __init__(self, service: S3AuthService) -> None:
        self.service = service
        self.app = mounted(service, rate_limit=True)

    async def ask(self, ip: str, name: str) -> httpx.Response:
        async with client_for(self.app, peer=(ip, 4000)) as client:
            return await client.post(FORGOT, json={"username": name})

    async def costs(self, ip: str) -> dict[str, dict[str, int]]:
        """What asking about each of NAMES from `ip` costs, in that order."""
        seen = {}
        for label, name in NAMES.items():
            self.service.store.reset_counts()
            assert (await self.ask(ip, name)).status_code == 202
            seen[label] = dict(self.service.store.requests)
        return seen


@pytest.mark.parametrize("store_url", ["memory", "file"], indirect=True)
async def test_every_ask_costs_the_same_before_and_past_each_budget(
    tmp_path: Path, clock: Clock, store_url: str
) -> None:
    """Whoever spends a budget under one of an account's names learns nothing by asking
    under another: neither from the answer nor from the requests it costs (so nor from the
    time it takes), refused the first time or refused from the process's memory."""
    service = shared_service(tmp_path, clock, store_url)
    await with_alice(service)
    server = OneProcess(service)
    every = dict.fromkeys(NAMES, EVERY_ASK)
    # Nothing spent: alice's budgets admit both of her names (2 mails).
    assert await server.costs("203.0.113.1") == every
    # Her budget per account and address spent from one address (3 mails), then asked
    # about under both names from there: refused, the second time from memory.
    for _ in range(PER_ACCOUNT_AND_ADDRESS):
        await server.ask("203.0.113.2", "alice")
    assert await server.costs("203.0.113.2") == every
    assert len(await mails_to_alice(service)) == 2 + PER_ACCOUNT_AND_ADDRESS
    # Her inbox's budget spent from other addresses: refused for every address.
    for i in range(PER_INBOX - 2 - PER_ACCOUNT_AND_ADDRESS):
        await server.ask(f"198.51.100.{i}", "alice")
    assert len(await mails_to_alice(service)) == PER_INBOX
    assert await server.costs("203.0.113.3") == every
    # And both: the address's budget spent too (its third ask), the inbox's still spent.
    await server.ask("203.0.113.3", "alice")
    assert await server.costs("203.0.113.3") == every
    assert len(await mails_to_alice(service)) == PER_INBOX


async def test_asks_refused_per_address_spend_nothing_of_the_inbox(
    tmp_path: Path, clock: Clock
) -> None:
    """Past its budget for an account, an address's asks still read and write the inbox's
    budget (`EVERY_ASK`), but count nothing there: its owner's own ask is mailed."""
    service = shared_service(tmp_path, clock)
    await with_alice(service)
    for _ in range(PER_ADDRESS):
        assert (await ask(service, "203.0.113.1", "alice")).status_code == 202
    assert len(await mails_to_alice(service)) == PER_ACCOUNT_AND_ADDRESS
    assert PER_ADDRESS >= PER_INBOX  # so many would have spent the inbox, had they counted
    assert (await ask(service, "198.51.100.7", "alice")).status_code == 202
    assert len(await mails_to_alice(service)) == PER_ACCOUNT_AND_ADDRESS + 1
