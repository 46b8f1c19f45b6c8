"""The hash places kept for known devices against the owners of several accounts: logins
with the right password, each showing its account's device cookie, sent over and over
while a flood fills the shared places, must not keep a returning owner out.

Hashing is real (argon2id at conftest's cheap parameters); the flood's hashes are held at
the test's gate (`GatedHasher`), so that every round is decided by order, and the budgets'
clock is moved by hand.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

import anyio
import httpx
import pytest
from conftest import make_service
from support import Clock, make_clocked_service
from test_app import PASSWORD, client_for, login, mounted, register
from test_hash_queue import GatedHasher, wait_until

from s3auth_asgi.app.devices import DEVICE_COOKIE, DEVICE_HEADER
from s3auth_asgi.kept_places import KEPT_PLACES_TAKEN_PER_ACCOUNT, SWEEP_FLOOR, KeptPlaces

pytestmark = pytest.mark.anyio

KEPT = 4
"""Kept places; one account's devices hold one of them at once (a quarter)."""
ATTACKERS = [f"mallory{i}" for i in range(KEPT)]
"""Enough accounts, a place each, to hold every kept place at once."""
BURST = KEPT_PLACES_TAKEN_PER_ACCOUNT.max_requests
EVERY = KEPT_PLACES_TAKEN_PER_ACCOUNT.emission_interval
ROUNDS = BURST + 1


def subtract(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    """The store requests made between two readings of the counts."""
    return {op: n - before.get(op, 0) for op, n in after.items() if n != before.get(op, 0)}


async def test_accounts_logging_in_over_and_over_do_not_keep_the_owner_out() -> None:
    """Each round the flood fills the shared places and every attacker's account logs in,
    with its right password and its device cookie, all at once. Their first logins take
    the kept places as any owner's would; once each account has taken its budget of them,
    its logins find the shared places only, full of the flood, and are refused before
    they read anything, so the returning owner, trying once, gets a kept place at its first
    attempt, making the store requests any login makes."""
    service = make_service(hash_concurrency=1, hash_queue=1, hash_device_queue=KEPT)
    hasher = GatedHasher(concurrency=1, queue=1, device_queue=KEPT, clock=Clock())
    service.passwords = hasher
    assert hasher.kept.per_account == 1
    async with client_for(mounted(service), base_url="https://testserver") as client:
        devices: dict[str, str] = {}
        for name in [*ATTACKERS, "alice"]:
            await register(client, name)
            await login(client, name)
            devices[name] = client.cookies.get(DEVICE_COOKIE, path="/auth/login") or ""
            client.cookies.clear()

        async def post(name: str, password: str, device: str | None = None) -> httpx.Response:
            data = {"username": name, "password": password}
            headers = {DEVICE_HEADER: device} if device else {}
            return await client.post("/auth/login", data=data, headers=headers)

        # What a login of each kind costs when nothing else runs.
        service.store.reset_counts()
        assert (await post("flood", "Wrong-password-1")).status_code == 401
        flood_cost = dict(service.store.requests)
        service.store.reset_counts()
        assert (await post("alice", PASSWORD, devices["alice"])).status_code == 200
        owner_cost = dict(service.store.requests)
        assert hasher.kept.remembered == 0  # with a shared place free, nothing is counted

        alice_id = devices["alice"].split(".")[1]  # d3.{user id}.…
        statuses: list[list[int]] = []
        answers: dict[str, int] = {}
        attackers_reads: dict[str, int] = {}
        owner: list[httpx.Response] = []

        async def attempt(name: str, password: str, device: str | None = None) -> None:
            answers[name] = (await post(name, password, device)).status_code

        async def owner_attempt() -> None:
            owner.append(await post("alice", PASSWORD, devices["alice"]))

        for round_ in range(ROUNDS):
            hasher.gate = gate = threading.Event()
            answers.clear()
            service.store.reset_counts()
            async with anyio.create_task_group() as tg:
                try:
                    for i in range(2):  # the flood takes the shared places
                        tg.start_soon(attempt, f"flood{round_}x{i}", "Wrong-password-1")
                    await wait_until(lambda: hasher.asking == 2, "the flood")
                    reads_before = dict(service.store.requests)
                    for name in ATTACKERS:
                        tg.start_soon(attempt, name, PASSWORD, devices[name])
                    await wait_until(
                        lambda: hasher.admitted_by_device + len(answers) == KEPT, "the attackers"
                    )
                    if round_ == ROUNDS - 1:
                        attackers_reads = subtract(service.store.requests, reads_before)
                        tg.start_soon(owner_attempt)
                        await wait_until(
                            lambda: bool(owner) or alice_id in hasher.kept.held,
                            "the owner",
                        )
                finally:
                    gate.set()
            statuses.append([answers[name] for name in ATTACKERS])
        assert len(owner) == 1 and owner[0].status_code == 200, owner[0].text
        # Their first logins all got in (the budget is a rate, not a ban); the last were
        # refused before they read anything.
        assert attackers_reads == {}
        assert statuses == [[200] * KEPT] * BURST + [[503] * KEPT]
        # The last round: the flood's two logins and the owner's, nothing more.
        costs = {*flood_cost, *owner_cost}
        expected = {op: 2 * flood_cost.get(op, 0) + owner_cost.get(op, 0) for op in costs}
        assert dict(service.store.requests) == expected
    assert (hasher.admitted, hasher.admitted_by_device, hasher.kept.held) == (0, 0, {})


# The budget -----------------------------------------------------------------------------


def logins(kept: KeptPlaces, account: str, count: int) -> list[bool]:
    """Whether each of `count` logins of `account`'s devices, one after another, took a
    place (and then gave it back)."""
    taken = []
    for _ in range(count):
        taken.append(kept.take(account))
        if taken[-1]:
            kept.leave(account)
    return taken


def test_an_account_takes_a_kept_place_six_times_at_once_then_once_a_minute() -> None:
    clock = Clock()
    kept = KeptPlaces(8, clock=clock)
    assert all(kept.free_for("alice") for _ in range(100))  # asking counts nothing
    assert kept.remembered == 0
    # Refused, and not pushed further out for asking again.
    assert logins(kept, "alice", BURST + 10) == [True] * BURST + [False] * 10
    assert not kept.free_for("alice")
    assert kept.held == {}
    assert logins(kept, "bob", 1) == [True]  # another account's budget is its own
    clock.advance(EVERY - 1)
    assert logins(kept, "alice", 1) == [False]
    clock.advance(1)
    assert kept.free_for("alice")
    assert logins(kept, "alice", 2) == [True, False]
    clock.advance(BURST * EVERY)
    assert logins(kept, "alice", BURST + 1) == [True] * BURST + [False]


def test_a_place_refused_for_the_share_or_for_room_is_not_charged() -> None:
    kept = KeptPlaces(8, clock=Clock())
    assert kept.per_account == 2
    assert kept.take("alice") and kept.take("alice")
    assert not kept.free_for("alice") and not kept.take("alice")  # her share is held
    for other in ("bob", "carol", "dave"):
        assert kept.take(other) and kept.take(other)
    assert kept.taken == 8
    assert not kept.free_for("erin") and not kept.take("erin")  # every place is held
    assert kept.remembered == 4
    kept.leave("alice")
    kept.leave("alice")
    assert logins(kept, "alice", BURST - 1) == [True] * (BURST - 2) + [False]


def test_accounts_whose_budget_is_whole_again_are_forgotten() -> None:
    clock = Clock()
    kept = KeptPlaces(4, clock=clock)
    early = SWEEP_FLOOR + 44
    for i in range(early):
        assert logins(kept, f"early{i}", 1) == [True]
    # Swept once, at SWEEP_FLOOR, when every one of them had spent part of its budget.
    assert kept.remembered == early
    clock.advance(EVERY)  # one place each: whole again
    later = 2 * SWEEP_FLOOR - early
    for i in range(later):
        assert logins(kept, f"later{i}", 1) == [True]
    assert kept.remembered == later  # the sweep at twice the last one's count
    assert logins(kept, "early0", BURST + 1) == [True] * BURST + [False]


def test_the_service_times_the_budget_on_its_own_clock() -> None:
    clock = Clock()
    kept = make_clocked_service(clock=clock, hash_device_queue=4).passwords.kept
    assert logins(kept, "alice", BURST + 1) == [True] * BURST + [False]
    clock.advance(EVERY)
    assert logins(kept, "alice", 2) == [True, False]
