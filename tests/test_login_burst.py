"""Password guesses sent at once are checked no faster than the login limits allow: while
the attempts already being checked could spend what is left of a budget, the next attempt
on it is refused (429) before it reads the user or hashes, so a burst cannot learn the
answer to more guesses than the limit admits, right password included.

The hashes are real and held at a gate the test opens, so every attempt of a burst is in
flight at once, whatever the machine's speed.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import Clock, make_clocked_service
from test_app import PASSWORD, assert_problem, bearer, client_for, login, register
from test_faults import FaultyStore
from test_hash_queue import GatedHasher, wait_until

from s3auth_asgi import S3AuthService
from s3auth_asgi.app import DEFAULT_AUTH_LIMITS, AuthApp, create_auth_app
from s3auth_asgi.app.attempts import PasswordAttempts
from s3auth_asgi.errors import RateLimitedError
from s3auth_asgi.ratelimit import RateLimit, RateLimiter
from s3auth_asgi.storage import ObjectStore, Store

pytestmark = pytest.mark.anyio

PER_ACCOUNT = DEFAULT_AUTH_LIMITS["login_account"].max_requests
WRONG = "Wrong123!"


def gated_service(
    store: Store | None = None, *, clock: Clock | None = None, **overrides: Any
) -> tuple[S3AuthService, GatedHasher]:
    """A service with its limits in its store, as on a fleet, and (unless `overrides` say
    otherwise) room in the hash queue for every attempt of a burst."""
    settings = {"hash_concurrency": 1, "hash_queue": 64, **overrides}
    service = make_clocked_service(
        clock=clock or Clock(),
        store=store or ObjectStore.from_url("memory://"),
        rate_limit_store="store",
        **settings,
    )
    hasher = GatedHasher.from_settings(service.settings)
    assert isinstance(hasher, GatedHasher)
    service.passwords = hasher
    return service, hasher


async def test_a_burst_of_guesses_gets_no_more_answers_than_the_limit() -> None:
    service, hasher = gated_service()
    app = create_auth_app(service)
    async with client_for(app, peer=("192.0.2.1", 4000)) as client:
        await register(client, "alice", prefix="")
    answers: dict[int, httpx.Response] = {}

    async def guess(i: int, password: str) -> None:
        async with client_for(app, peer=(f"198.51.100.{i + 1}", 4000)) as client:
            data = {"username": "alice", "password": password}
            answers[i] = await client.post("/login", data=data)

    hasher.gate = gate = threading.Event()
    async with anyio.create_task_group() as tasks:
        try:
            for i in range(PER_ACCOUNT):
                tasks.start_soon(guess, i, WRONG)
            await wait_until(lambda: hasher.asking == PER_ACCOUNT, "the first guesses")
            # The budget's remaining failures are all being checked: the next guesses,
            # the right password among them, are refused before they hash.
            for i in range(PER_ACCOUNT, PER_ACCOUNT + 3):
                tasks.start_soon(guess, i, PASSWORD if i == PER_ACCOUNT + 1 else WRONG)
                await wait_until(
                    lambda n=i: n in answers or hasher.asking > PER_ACCOUNT, f"guess {i}"
                )
                assert hasher.asking == PER_ACCOUNT, "a guess beyond the limit was hashed"
                assert_problem(answers[i], 429, "rate_limited")
                assert answers[i].headers["retry-after"] == "1"
            assert hasher.asking == PER_ACCOUNT
        finally:
            gate.set()
    assert [answers[i].status_code for i in range(PER_ACCOUNT)] == [401] * PER_ACCOUNT
    # The budget is spent now, in the store: the right password waits for the window.
    await guess(99, PASSWORD)
    assert_problem(answers[99], 429, "rate_limited")
    assert attempts_of(app).checking == {}


def attempts_of(app: AuthApp) -> PasswordAttempts:
    return app.routes.limits.attempts


async def test_on_two_processes_a_burst_gets_at_most_twice_the_limit_answered() -> None:
    """What is being checked is known to its own process only: two instances on one store
    each admit what is left of the budget, and no more; the charges then hold the wrong
    answers to the limit. The two read one clock: see the next test for clocks that
    disagree."""
    clock = Clock()
    statuses = await two_process_burst([clock, clock])
    assert statuses.count(401) == PER_ACCOUNT
    assert statuses.count(429) == len(statuses) - PER_ACCOUNT


@pytest.mark.parametrize("ahead", [0, 1])
async def test_with_clocks_a_second_apart_a_burst_still_gets_no_more_than_the_limit(
    ahead: int,
) -> None:
    """A process whose clock is behind sees the charges written by the other as that much
    further ahead, so the last failure of the budget may be refused to it (429, nothing
    learnt): never one more answered."""
    clocks = [Clock(), Clock()]
    clocks[ahead].now = clocks[1 - ahead].now + 1.0
    statuses = await two_process_burst(clocks)
    assert PER_ACCOUNT - 1 <= statuses.count(401) <= PER_ACCOUNT
    assert statuses.count(401) + statuses.count(429) == len(statuses)


async def two_process_burst(clocks: list[Clock]) -> list[int]:
    """Three budgets' worth of wrong guesses at once, alternating between two instances on
    one store (one per clock), their hashes held until every guess is hashing or refused;
    the statuses of every guess."""
    store = ObjectStore.from_url("memory://")
    fleet = [gated_service(store, clock=clock) for clock in clocks]
    apps = [create_auth_app(service) for service, _ in fleet]
    hashers = [hasher for _, hasher in fleet]
    async with client_for(apps[0]) as client:
        await register(client, "alice", prefix="")
    answers: dict[int, int] = {}

    async def guess(i: int) -> None:
        async with client_for(apps[i % 2], peer=(f"198.51.100.{i + 1}", 4000)) as client:
            data = {"username": "alice", "password": WRONG}
            answers[i] = (await client.post("/login", data=data)).status_code

    burst = PER_ACCOUNT * 3
    for hasher in hashers:
        hasher.gate = threading.Event()
    async with anyio.create_task_group() as tasks:
        try:
            for i in range(burst):
                tasks.start_soon(guess, i)
            await wait_until(
                lambda: len(answers) + sum(hasher.asking for hasher in hashers) == burst,
                "every guess answered or hashing",
            )
            assert [hasher.asking for hasher in hashers] == [PER_ACCOUNT, PER_ACCOUNT]
            assert sorted(answers.values()) == [429] * (burst - 2 * PER_ACCOUNT)
        finally:
            for hasher in hashers:
                assert hasher.gate is not None
                hasher.gate.set()
    assert [attempts_of(app).checking for app in apps] == [{}, {}]
    return list(answers.values())


async def test_the_attempts_on_two_accounts_are_held_apart() -> None:
    """Room held by a burst on one account is not taken from another account."""
    service, hasher = gated_service()
    app = create_auth_app(service)
    async with client_for(app) as client:
        for name in ("alice", "bob"):
            await register(client, name, prefix="")
    hasher.gate = gate = threading.Event()
    answers: list[int] = []

    async def guess(name: str, i: int) -> None:
        async with client_for(app, peer=(f"198.51.100.{i + 1}", 4000)) as client:
            data = {"username": name, "password": WRONG}
            answers.append((await client.post("/login", data=data)).status_code)

    async with anyio.create_task_group() as tasks:
        try:
            for i in range(PER_ACCOUNT):
                tasks.start_soon(guess, "alice", i)
            await wait_until(lambda: hasher.asking == PER_ACCOUNT, "alice's guesses")
            tasks.start_soon(guess, "bob", 50)
            await wait_until(lambda: hasher.asking == PER_ACCOUNT + 1, "bob's guess")
        finally:
            gate.set()
    assert answers == [401] * (PER_ACCOUNT + 1)
    assert attempts_of(app).checking == {}


async def test_more_logins_at_once_from_one_address_than_its_budget_wait_a_second() -> None:
    """The address's budget counts what is being checked too: one address (a classroom
    behind one NAT) logging in to more accounts at once than it has wrong tries left gets
    429 for the extra ones, which then succeed once the others are answered."""
    per_address = DEFAULT_AUTH_LIMITS["login"].max_requests
    service, hasher = gated_service()
    app = create_auth_app(service)
    names = [f"pupil{i}" for i in range(per_address + 1)]
    for i, name in enumerate(names):
        async with client_for(app, peer=(f"192.0.2.{i + 1}", 4000)) as client:
            await register(client, name, prefix="")
    answers: dict[str, httpx.Response] = {}

    async def log_in(name: str) -> None:
        async with client_for(app, peer=("203.0.113.7", 4000)) as client:
            data = {"username": name, "password": PASSWORD}
            answers[name] = await client.post("/login", data=data)

    hasher.gate = gate = threading.Event()
    async with anyio.create_task_group() as tasks:
        try:
            for name in names[:-1]:
                tasks.start_soon(log_in, name)
            await wait_until(lambda: hasher.asking == per_address, "the class")
            await log_in(names[-1])
            assert_problem(answers[names[-1]], 429, "rate_limited")
            assert answers[names[-1]].headers["retry-after"] == "1"
        finally:
            gate.set()
    assert [answers[name].status_code for name in names[:-1]] == [200] * per_address
    await log_in(names[-1])
    assert answers[names[-1]].status_code == 200, answers[names[-1]].text
    assert attempts_of(app).checking == {}


async def test_a_refusal_for_a_busy_hash_queue_gives_back_its_room() -> None:
    service, hasher = gated_service(hash_queue=1)
    app = create_auth_app(service)
    async with client_for(app) as client:
        await register(client, "alice", prefix="")
    hasher.gate = gate = threading.Event()
    answers: dict[str, httpx.Response] = {}

    async def guess(label: str, name: str, ip: str) -> None:
        async with client_for(app, peer=(ip, 4000)) as client:
            data = {"username": name, "password": WRONG}
            answers[label] = await client.post("/login", data=data)

    async with anyio.create_task_group() as tasks:
        try:
            for i in range(2):  # they fill the hash queue
                tasks.start_soon(guess, f"flood {i}", f"flood{i}", f"198.51.100.{i + 1}")
            await wait_until(lambda: hasher.asking == 2, "the flood")
            held = dict(attempts_of(app).checking)
            await guess("alice", "alice", "203.0.113.5")
            assert_problem(answers["alice"], 503, "server_busy")
            assert attempts_of(app).checking == held
        finally:
            gate.set()
    assert attempts_of(app).checking == {}


@pytest.mark.parametrize("fault", range(1, 7))
async def test_a_store_fault_anywhere_in_a_login_gives_back_its_room(fault: int) -> None:
    """The `fault`-th store request of a wrong-password login fails (a read of the name,
    a peek, a read of the user, a charge): the answer is 503, the attempt holds nothing
    after, and the next login is answered as the budget says (once a budget whose charge
    failed is no longer held: `attempts.HeldKeys`)."""
    faulty = FaultyStore(ObjectStore.from_url("memory://"))
    clock = Clock()
    service, _ = gated_service(faulty, clock=clock)
    app = create_auth_app(service)
    async with client_for(app) as client:
        await register(client, "alice", prefix="")
        faulty.calls, faulty.fail_at = 0, fault
        data = {"username": "alice", "password": WRONG}
        response = await client.post("/login", data=data)
        assert faulty.calls >= fault  # the fault was injected
        assert response.status_code == 503, response.text
        assert attempts_of(app).checking == {}
        faulty.fail_at = None
        clock.advance(DEFAULT_AUTH_LIMITS["login_account"].emission_interval)
        assert (await login(client, "alice", prefix=""))["access_token"]
    assert attempts_of(app).checking == {}


async def test_a_password_change_holds_room_only_while_it_is_checked() -> None:
    service, _ = gated_service()
    app = create_auth_app(service)
    async with client_for(app) as client:
        await register(client, "alice", prefix="")
        tokens = await login(client, "alice", prefix="")
        for current, status in (("Nope1234!", 403), (PASSWORD, 200)):
            changed = await client.post(
                "/password",
                json={"current_password": current, "new_password": "Newer123!"},
                headers=bearer(tokens),
            )
            assert changed.status_code == status, changed.text
            assert attempts_of(app).checking == {}


LIMIT = 3
SCOPE = {"type": "http", "client": ("192.0.2.1", 4000), "headers": []}


@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["begin", "fail", "succeed"]), st.integers(0, 1)),
        max_size=40,
    )
)
@settings(max_examples=60, deadline=None)
def test_attempts_being_checked_and_failures_never_exceed_the_limit(
    steps: list[tuple[str, int]],
) -> None:
    """Any interleaving of attempts on two accounts (the clock still, so nothing is given
    back by time): at every step, per account, the attempts being checked plus the failures
    charged stay within the limit; a charge is never refused (the room was held for it);
    once every attempt is answered, nothing is held."""

    async def scenario() -> None:
        limiter = RateLimiter({"login_account": RateLimit(LIMIT, 900)})
        attempts = PasswordAttempts(limiter)
        open_attempts: dict[int, list[Any]] = {0: [], 1: []}
        failures = {0: 0, 1: 0}
        for action, account in steps:
            key = f"account{account}"
            if action == "begin":
                try:
                    open_attempts[account].append(await attempts.begin(SCOPE, key, None))
                except RateLimitedError:
                    assert len(open_attempts[account]) + failures[account] == LIMIT
            elif open_attempts[account]:
                attempt = open_attempts[account].pop(0)
                if action == "fail":
                    await attempts.failed(attempt)
                    failures[account] += 1
                attempts.end(attempt)
            assert len(open_attempts[account]) + failures[account] <= LIMIT
            held = attempts.checking.get(f"account:{key}", 0)
            assert held == len(open_attempts[account])
        for account in (0, 1):
            for attempt in open_attempts[account]:
                attempts.end(attempt)
        assert attempts.checking == {}

    anyio.run(scenario)
