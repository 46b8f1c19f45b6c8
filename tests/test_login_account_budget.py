"""An account's wrong passwords are counted in one budget, whichever of its names is typed,
and no password is checked unless every budget its failure would be charged to admits it:
a budget spent under one name, a charge refused or lost to a store fault, or a burst split
between the two names gets no answer that was not counted."""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import anyio
import pytest
from support import Clock, StoreWrapper
from test_app import PASSWORD, client_for, register
from test_hash_queue import wait_until
from test_login_burst import WRONG, gated_service

from s3auth_asgi.app import DEFAULT_AUTH_LIMITS, AuthApp, create_auth_app
from s3auth_asgi.app.attempts import HeldKeys
from s3auth_asgi.errors import StoreUnavailableError
from s3auth_asgi.ratelimit import FailureBudget
from s3auth_asgi.storage import ObjectStore, keys

pytestmark = pytest.mark.anyio

PER_ACCOUNT = DEFAULT_AUTH_LIMITS["login_account"].max_requests
ACCOUNT_INTERVAL = DEFAULT_AUTH_LIMITS["login_account"].emission_interval
ACCOUNT_BUDGETS = keys.ratelimit_budget("login.account", "any").rsplit("/", 1)[0] + "/"
"""Where the account budgets' states are kept."""


class BudgetWritesFail(StoreWrapper):
    """Fails writes of the account budgets' states: all of them while `failing`, else the
    next ones as `outcomes` says (True: fails)."""

    failing = False
    outcomes: ClassVar[list[bool]] = []

    def _fail(self, key: str) -> None:
        if not key.startswith(ACCOUNT_BUDGETS):
            return
        if self.failing or (self.outcomes and self.outcomes.pop(0)):
            raise StoreUnavailableError("injected: the budget's write failed")

    async def create(self, key: str, value: Any) -> str:
        self._fail(key)
        return await super().create(key, value)

    async def replace(self, key: str, value: Any, etag: str) -> str:
        self._fail(key)
        return await super().replace(key, value, etag)


async def guess(app: AuthApp, name: str, password: str, ip: str) -> int:
    async with client_for(app, peer=(ip, 4000)) as client:
        data = {"username": name, "password": password}
        return (await client.post("/login", data=data)).status_code


async def test_a_budget_spent_on_an_email_before_it_was_registered_gives_no_free_guesses() -> None:
    service, hasher = gated_service()
    app = create_auth_app(service)
    # Failures under an email that is nobody's yet spend that name's own budget...
    spent = [await guess(app, "victim@example.com", WRONG, f"198.51.100.{i}") for i in range(6)]
    assert spent == [401] * PER_ACCOUNT + [429]
    async with client_for(app, peer=("192.0.2.1", 4000)) as client:
        await register(client, "victim", prefix="")
    # ...and the account that takes it later has its own, whichever name is typed.
    before = hasher.entered
    statuses = [await guess(app, "victim", WRONG, f"203.0.113.{i}") for i in range(8)]
    assert statuses == [401] * PER_ACCOUNT + [429] * 3
    assert await guess(app, "victim@example.com", PASSWORD, "203.0.113.99") == 429
    assert await guess(app, "victim", PASSWORD, "203.0.113.98") == 429
    assert hasher.entered - before == PER_ACCOUNT


async def test_a_charge_refused_by_one_budget_is_still_made_to_the_others() -> None:
    """Two processes on one store: one checks a wrong password while the other spends the
    account's budget; its failure is refused by the account and still counted against
    the address."""
    store = ObjectStore.from_url("memory://")
    clock = Clock()
    (first, hasher), (second, _) = (
        gated_service(store, clock=clock),
        gated_service(store, clock=clock),
    )
    apps = [create_auth_app(first), create_auth_app(second)]
    async with client_for(apps[0], peer=("192.0.2.1", 4000)) as client:
        await register(client, "alice", prefix="")
    answers: list[int] = []

    async def held_guess() -> None:
        answers.append(await guess(apps[0], "alice", WRONG, "203.0.113.5"))

    hasher.gate = gate = threading.Event()
    async with anyio.create_task_group() as tasks:
        try:
            tasks.start_soon(held_guess)
            await wait_until(lambda: hasher.asking == 1, "the held guess")
            flood = [await guess(apps[1], "alice", WRONG, f"198.51.100.{i}") for i in range(5)]
            assert flood == [401] * PER_ACCOUNT
        finally:
            gate.set()
    assert answers == [429]
    async with client_for(apps[0], peer=("203.0.113.5", 4000)) as client:
        other = await client.post("/login", data={"username": "bob", "password": WRONG})
    assert other.status_code == 401
    assert other.headers["ratelimit"].startswith('"login";r=18;')  # both failures counted


async def test_a_failure_that_could_not_be_counted_holds_the_account_in_this_process() -> None:
    """While the budgets can be read but not written, a wrong password is answered 503 and
    not counted: the process then refuses the account until the budget would have admitted
    one more failure, so the right password answered 200 cannot tell the guesses apart."""
    clock = Clock()
    store = BudgetWritesFail(ObjectStore.from_url("memory://"))
    service, hasher = gated_service(store, clock=clock)
    app = create_auth_app(service)
    async with client_for(app, peer=("192.0.2.1", 4000)) as client:
        await register(client, "alice", prefix="")
    store.failing = True
    before = hasher.entered
    assert await guess(app, "alice", WRONG, "198.51.100.1") == 503
    statuses = []
    for i in range(10):
        service.store.reset_counts()
        name = "alice@example.com" if i % 2 else "alice"
        statuses.append(await guess(app, name, PASSWORD if i == 9 else WRONG, "198.51.100.2"))
        assert dict(service.store.requests) == {"get": 1}  # the name's index entry alone
    assert statuses == [429] * 10
    assert hasher.entered - before == 1
    clock.advance(ACCOUNT_INTERVAL)
    assert await guess(app, "alice", WRONG, "198.51.100.3") == 503
    assert await guess(app, "alice", PASSWORD, "198.51.100.3") == 429
    clock.advance(ACCOUNT_INTERVAL)
    store.failing = False
    assert await guess(app, "alice", PASSWORD, "198.51.100.4") == 200
    assert hasher.entered - before == 3


async def test_one_lost_charge_does_not_open_the_account_to_guessing() -> None:
    clock = Clock()
    store = BudgetWritesFail(ObjectStore.from_url("memory://"))
    service, hasher = gated_service(store, clock=clock)
    app = create_auth_app(service)
    async with client_for(app, peer=("192.0.2.1", 4000)) as client:
        await register(client, "alice", prefix="")
    first = [await guess(app, "alice", WRONG, f"198.51.100.{i}") for i in range(4)]
    assert first == [401] * (PER_ACCOUNT - 1)
    # The next failure's charge to one of the account's budgets is lost.
    store.outcomes = [False, True]
    before, counts = hasher.entered, {}
    for minute in range(30):
        for i in range(20):  # as many a minute as one address is allowed
            status = await guess(app, "alice", f"G{minute}x{i}Yz!", "203.0.113.66")
            counts[status] = counts.get(status, 0) + 1
        clock.advance(60)
    # The budget's fifth failure at once, then one an emission interval (180 s) whether its
    # charge is lost (503) or not: 11 in 30 minutes, as if none had been lost.
    assert counts == {401: 10, 503: 1, 429: 589}
    assert hasher.entered - before == 11


async def test_a_burst_split_between_the_two_names_is_held_to_the_limit() -> None:
    service, hasher = gated_service()
    app = create_auth_app(service)
    async with client_for(app, peer=("192.0.2.1", 4000)) as client:
        await register(client, "alice", prefix="")
    answers: dict[int, int] = {}
    n = 2 * PER_ACCOUNT

    async def one(i: int) -> None:
        name = "alice" if i % 2 == 0 else "alice@example.com"
        password = PASSWORD if i == n - 1 else WRONG
        answers[i] = await guess(app, name, password, f"198.51.100.{i + 1}")

    hasher.gate = gate = threading.Event()
    async with anyio.create_task_group() as tasks:
        try:
            for i in range(PER_ACCOUNT):
                tasks.start_soon(one, i)
            await wait_until(lambda: hasher.asking == PER_ACCOUNT, "the first guesses")
            # The account's room is all being checked, under either name: the rest of the
            # burst, the right password last, is refused before it hashes.
            for i in range(PER_ACCOUNT, n):
                tasks.start_soon(one, i)
                await wait_until(lambda i=i: i in answers or hasher.asking > PER_ACCOUNT, "")
                assert answers.get(i) == 429, f"guess {i} was hashed"
        finally:
            gate.set()
    assert [answers[i] for i in range(n)] == [401] * PER_ACCOUNT + [429] * PER_ACCOUNT
    assert app.routes.limits.attempts.checking == {}


def test_held_keys_are_bounded_and_expire() -> None:
    clock = Clock()
    held = HeldKeys(clock, max_keys=2)
    limits = {n: DEFAULT_AUTH_LIMITS[n] for n in ("login_account", "login_account_daily")}
    budget = FailureBudget("login.account", limits)
    for key in ("a", "b", "c"):
        held.hold(budget, key)
    assert [held.left(budget, key) for key in "abc"] == [0.0, ACCOUNT_INTERVAL, ACCOUNT_INTERVAL]
    clock.advance(ACCOUNT_INTERVAL)
    assert [held.left(budget, key) for key in "bc"] == [0.0, 0.0]
