"""`s3auth doctor --repair` reserving the look of a username registered before looks were
reserved, racing a registration of a look-alike on another service instance: whichever
lands first holds the reservation, and the other finds that out; never both. On memory://
(one store shared by both instances) and on file:// (a store each, one directory).

The repair is `StateCheck(..., repair=True)`, which the command runs; each test lets the
other side run whole after one request of the side it interrupts, for every such request.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from conftest import make_settings
from support import StoreWrapper, held_index_keys

from s3auth_asgi import ConflictError, S3AuthService, User, UsernameTakenError
from s3auth_asgi.consistency import StateCheck
from s3auth_asgi.findings import OWN_ENTRY_ELSEWHERE, Finding
from s3auth_asgi.identifiers import fold, new_id, username_skeleton
from s3auth_asgi.look_alikes import LOOKALIKE_UNRESERVED, LOOKALIKE_USERS
from s3auth_asgi.models import IndexEntry
from s3auth_asgi.storage import ObjectStore, Store, keys

pytestmark = pytest.mark.anyio
R = TypeVar("R")
PASSWORD = "SecurePass123!"
LOOK = keys.skeleton_index(username_skeleton("alice"))
Meanwhile = Callable[[], Awaitable[object]]


class AfterNth(StoreWrapper):
    """Runs `meanwhile` once its `nth` request (a GET or a write) has been answered or
    refused: another instance's work between that request and the next."""

    def __init__(self, inner: Store, nth: int, meanwhile: Meanwhile) -> None:
        super().__init__(inner)
        self.nth, self.seen = nth, 0
        self.meanwhile: Meanwhile | None = meanwhile

    async def call(self, name: str, run: Callable[[], Awaitable[R]]) -> R:
        try:
            return await run()
        finally:
            self.seen += 1
            if self.seen == self.nth and self.meanwhile is not None:
                meanwhile, self.meanwhile = self.meanwhile, None
                await meanwhile()


class Hosts:
    """Two service instances on one store: memory:// shared, or file:// opened twice."""

    def __init__(self, url: str, reservation: int) -> None:
        self.url = url
        self.settings = make_settings(url, name_reservation_seconds=reservation)
        self.store = ObjectStore.from_url(url)
        self.other_store = self.store if url == "memory://" else ObjectStore.from_url(url)

    def on(self, store: Store) -> S3AuthService:
        return S3AuthService(self.settings, store=store)

    async def legacy_alice(self) -> User:
        """`alice` as 0.1 registered her: her username's and address's entries and her
        record, which names no skeleton; none reserved."""
        user = User(id=new_id(), username="alice", email="alice@example.com", hashed_password="x")
        await self.store.create(keys.username_index(fold(user.username)), IndexEntry(user.id))
        await self.store.create(keys.email_index(fold(user.email)), IndexEntry(user.id))
        await self.store.create(keys.user(user.id), user)
        return user


@pytest.fixture(params=["memory", "file"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"file://{tmp_path / 'store'}"


async def repair(service: S3AuthService) -> list[Finding]:
    findings: list[Finding] = []
    await StateCheck(service.names, findings.append, repair=True).run()
    return findings


async def register_look_alike(service: S3AuthService, outcome: list[User | None]) -> None:
    try:
        outcome.append(await service.create_user("aIice", "aiice@example.com", PASSWORD))
    except ConflictError:
        outcome.append(None)


async def assert_one_holds(
    hosts: Hosts, alice: User, registered: User | None, findings: list[Finding]
) -> None:
    """The look is reserved for one of the two, and each side's outcome agrees with which:
    a registration that went through holds it; else alice does, and nothing of the refused
    one is left. A repair then settles the rest: at most the pair, left as it is."""
    entry = await hosts.store.get(LOOK, IndexEntry)
    assert entry is not None and not entry.value.released
    fixed = [f for f in findings if f.key == LOOK and f.repaired]
    if registered is not None:
        assert entry.value.user_id == registered.id
        assert fixed == []  # the repair did not think it won
        assert len(await held_index_keys(hosts.store)) == 2 + 3  # alice's name and address
    else:
        assert entry.value.user_id == alice.id
        assert await held_index_keys(hosts.store) == sorted(
            hosts.on(hosts.store).names.name_keys(alice)
        )
    settled = await repair(hosts.on(hosts.store))
    pairs = [(f.kind, f.user_id, f.other_user_id, f.repaired) for f in settled]
    assert pairs == (
        [] if registered is None else [(LOOKALIKE_USERS, alice.id, registered.id, False)]
    )
    with pytest.raises(UsernameTakenError):  # 1 is l too: the look stays taken
        await hosts.on(hosts.other_store).create_user("a1ice", "a1ice@example.com", PASSWORD)


@pytest.mark.parametrize("nth", range(9))
async def test_a_registration_landing_during_a_repair(url: str, nth: int) -> None:
    """The repair reads alice's record, her 3 entries, her record again and her look's
    entry, then creates it; the look-alike registers after its `nth` request (0: before)."""
    hosts = Hosts(url, reservation=120)
    alice = await hosts.legacy_alice()
    outcome: list[User | None] = []
    registering = hosts.on(hosts.other_store)
    if nth == 0:
        await register_look_alike(registering, outcome)
    meanwhile = AfterNth(hosts.store, nth, lambda: register_look_alike(registering, outcome))
    findings = await repair(hosts.on(meanwhile))
    [registered] = outcome
    assert (registered is None) == (nth >= 7), findings  # the create is the 7th request
    kinds = {(f.kind, f.key, f.repaired) for f in findings}
    if registered is None:
        assert kinds == {(LOOKALIKE_UNRESERVED, LOOK, True)}
    else:
        assert kinds == {(LOOKALIKE_USERS, LOOK, False)}
    await assert_one_holds(hosts, alice, registered, findings)


@pytest.mark.parametrize("reservation", [120, 0])
@pytest.mark.parametrize("nth", range(1, 5))
async def test_a_repair_landing_during_a_registration(url: str, nth: int, reservation: int) -> None:
    """The registration creates its username's entry, its look's, its address's, then its
    record; the repair runs whole after its `nth` write. With a reservation of 0 every
    claim is as slow as one that outlasted it: the repair may take an entry over from a
    registration whose record is not written yet, which then finds out and gives way."""
    hosts = Hosts(url, reservation=reservation)
    alice = await hosts.legacy_alice()
    findings: list[Finding] = []

    async def repair_meanwhile() -> None:
        findings.extend(await repair(hosts.on(hosts.store)))

    outcome: list[User | None] = []
    registering = hosts.on(AfterNth(hosts.other_store, nth, repair_meanwhile))
    await register_look_alike(registering, outcome)
    [registered] = outcome
    assert findings, "the repair ran"
    look = {(f.kind, f.repaired) for f in findings if f.key == LOOK}
    if nth == 1:  # before the look's entry: the repair reserves it, the registration fails
        assert registered is None and look == {(LOOKALIKE_UNRESERVED, True)}
    elif nth == 4:  # the record is written: a pair
        assert registered is not None and look == {(LOOKALIKE_USERS, False)}
    elif reservation:  # a claim under way, young: left to it
        assert registered is not None and look == {(OWN_ENTRY_ELSEWHERE, False)}
    else:  # taken over as abandoned; the registration, slow, reads it back and gives way
        assert registered is None and look == {(OWN_ENTRY_ELSEWHERE, True)}
    await assert_one_holds(hosts, alice, registered, findings)


async def test_a_second_repair_costs_only_its_reads(url: str) -> None:
    hosts = Hosts(url, reservation=120)
    await hosts.legacy_alice()
    service = hosts.on(hosts.store)
    assert [(f.kind, f.repaired) for f in await repair(service)] == [(LOOKALIKE_UNRESERVED, True)]
    later = S3AuthService(hosts.settings, store=hosts.store, clock=lambda: time.time() + 121)
    hosts.store.reset_counts()
    assert await repair(later) == []
    # Alice's record and her 3 entries; the 3 entries, each read with her record (all
    # older than a reservation now); the end of every session. The 4 listings; no write.
    assert dict(hosts.store.requests) == {"list": 4, "get": 1 + 3 + 3 + 3 + 1}


async def test_deleting_a_repaired_user_frees_its_look(url: str) -> None:
    hosts = Hosts(url, reservation=120)
    alice = await hosts.legacy_alice()
    service = hosts.on(hosts.store)
    await repair(service)
    with pytest.raises(UsernameTakenError):
        await hosts.on(hosts.other_store).create_user("aIice", "aiice@example.com", PASSWORD)
    assert await service.delete_user(alice.id)
    assert await held_index_keys(hosts.store) == []
    await hosts.on(hosts.other_store).create_user("aIice", "aiice@example.com", PASSWORD)
