"""A name claim whose record write outlasts the reservation: another instance may take the
name over meanwhile (the reservation looks abandoned), so the slow claim must find that out
and give way, whatever `S3AUTH_NAME_RESERVATION_SECONDS` is. One user per name, always."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import pytest
from conftest import make_settings
from support import AfterRequest, StoreOnSharedTime, StoreWrapper

from s3auth_asgi import EmailTakenError, S3AuthService, StoreUnavailableError, UsernameTakenError
from s3auth_asgi.models import IndexEntry
from s3auth_asgi.storage import ObjectStore, Store, keys

pytestmark = pytest.mark.anyio
T = TypeVar("T")
PASSWORD = "SecurePass123!"
RESERVATION = 120


class SlowUserWrite(StoreWrapper):
    """Runs `meanwhile` (another instance's work, after the clock has moved on) just before
    the first write of a user record goes out: a record write that took that long."""

    def __init__(self, inner: Store, meanwhile: Callable[[], Awaitable[object]]) -> None:
        super().__init__(inner)
        self.meanwhile: Callable[[], Awaitable[object]] | None = meanwhile
        self.then_fail = False

    async def _record_write(self, key: str) -> None:
        if self.meanwhile is not None and key.startswith(keys.USERS):
            meanwhile, self.meanwhile = self.meanwhile, None
            await meanwhile()
            if self.then_fail:
                raise StoreUnavailableError("injected: the record write failed")

    async def create(self, key: str, value: Any) -> str:
        await self._record_write(key)
        return await self.inner.create(key, value)

    async def replace(self, key: str, value: Any, etag: str) -> str:
        await self._record_write(key)
        return await self.inner.replace(key, value, etag)


def _services(
    meanwhile: Callable[[], Awaitable[object]], **overrides: Any
) -> tuple[S3AuthService, S3AuthService, list[float], SlowUserWrite]:
    """A slow instance and another, on one store and one clock."""
    now = [time.time()]
    shared = ObjectStore.from_url("memory://")
    slow_store = SlowUserWrite(shared, meanwhile)
    settings = make_settings(name_reservation_seconds=RESERVATION, **overrides)
    slow = S3AuthService(settings, store=slow_store, clock=lambda: now[0])
    other = S3AuthService(settings, store=shared, clock=lambda: now[0])
    return slow, other, now, slow_store


async def test_a_registration_that_lost_its_name_meanwhile_gives_way() -> None:
    taken: list[str] = []

    async def meanwhile() -> None:
        now[0] += RESERVATION + 1  # the slow claim's entries now look abandoned
        taken.append((await other.create_user("alice", "b@example.com", PASSWORD)).id)

    slow, other, now, _ = _services(lambda: meanwhile())
    with pytest.raises(UsernameTakenError):
        await slow.create_user("alice", "a@example.com", PASSWORD)
    users = [info.key async for info in other.store.list(keys.USERS)]
    assert users == [keys.user(taken[0])]
    found = await other.authenticate_user("alice", PASSWORD)
    assert found is not None and found.id == taken[0]
    # The slow claim's address, which nobody took, is free again at once.
    assert await other.create_user("carol", "a@example.com", PASSWORD)


async def test_a_slow_registration_that_fails_leaves_the_names_taken_over_alone() -> None:
    taken: list[str] = []

    async def meanwhile() -> None:
        now[0] += RESERVATION + 1
        taken.append((await other.create_user("alice", "b@example.com", PASSWORD)).id)

    slow, other, now, slow_store = _services(lambda: meanwhile())
    slow_store.then_fail = True
    with pytest.raises(StoreUnavailableError):
        await slow.create_user("alice", "a@example.com", PASSWORD)
    found = await other.authenticate_user("alice", PASSWORD)
    assert found is not None and found.id == taken[0]
    with pytest.raises(UsernameTakenError):
        await other.create_user("alice", "c@example.com", PASSWORD)
    assert await other.create_user("carol", "a@example.com", PASSWORD)


async def test_a_slow_registration_nobody_raced_costs_one_read_per_name() -> None:
    async def meanwhile() -> None:
        now[0] += RESERVATION + 1

    slow, other, now, slow_store = _services(lambda: meanwhile())
    slow_store.reset_counts()
    user = await slow.create_user("alice", "a@example.com", PASSWORD)
    # 4 writes, then one GET of each of its three index entries.
    assert dict(slow_store.requests) == {"put": 4, "get": 3}
    found = await other.authenticate_user("alice", PASSWORD)
    assert found is not None and found.id == user.id


async def test_a_prompt_registration_reads_nothing_back() -> None:
    async def meanwhile() -> None:
        now[0] += RESERVATION - 11  # under the reservation less the skew allowance

    slow, _, now, slow_store = _services(lambda: meanwhile(), revocation_skew_seconds=10)
    slow_store.reset_counts()
    await slow.create_user("alice", "a@example.com", PASSWORD)
    assert dict(slow_store.requests) == {"put": 4}


async def test_a_registration_within_the_skew_allowance_of_its_reservation_reads_back() -> None:
    async def meanwhile() -> None:
        now[0] += RESERVATION - 10  # another host's clock may be the allowance ahead

    slow, _, now, slow_store = _services(lambda: meanwhile(), revocation_skew_seconds=10)
    slow_store.reset_counts()
    await slow.create_user("alice", "a@example.com", PASSWORD)
    assert dict(slow_store.requests) == {"put": 4, "get": 3}


async def test_an_address_change_that_lost_the_address_meanwhile_gives_way() -> None:
    taken: list[str] = []

    async def meanwhile() -> None:
        now[0] += RESERVATION + 1
        taken.append((await other.create_user("bob", "new@example.com", PASSWORD)).id)

    slow, other, now, slow_store = _services(lambda: meanwhile())
    slow_store.meanwhile = None
    user = await slow.create_user("alice", "old@example.com", PASSWORD)
    now[0] += RESERVATION + 1  # the account's record is old too: only its names hold it
    slow_store.meanwhile = meanwhile
    with pytest.raises(EmailTakenError):
        await slow.update_user(user.id, email="new@example.com")
    kept = await other.get_user_by_id(user.id)
    assert kept is not None and kept.email == "old@example.com"
    by_old = await other.authenticate_user("old@example.com", PASSWORD)
    assert by_old is not None and by_old.id == user.id
    by_new = await other.authenticate_user("new@example.com", PASSWORD)
    assert by_new is not None and by_new.id == taken[0]
    # Neither address is anybody else's to take.
    for address in ("old@example.com", "new@example.com"):
        with pytest.raises(EmailTakenError):
            await other.create_user("thief", address, PASSWORD)


async def test_a_takeover_that_judged_a_slow_claim_abandoned_gives_the_name_back() -> None:
    # Another claim reads the slow claim's entry (old by then) and its record (not written
    # yet); the slow claim then writes its record and reads its entries back, finding them
    # its own, before the other claim's replace lands.
    owner_read, slow_done = anyio.Event(), anyio.Event()
    refused: list[UsernameTakenError] = []

    async def paused() -> None:
        owner_read.set()
        await slow_done.wait()

    async def late_claim() -> None:
        store = AfterRequest(other.store, "get", keys.USERS, paused)
        late = S3AuthService(other.settings, store=store, clock=lambda: now[0])
        with pytest.raises(UsernameTakenError) as taken:
            await late.create_user("alice", "late@example.com", PASSWORD)
        refused.append(taken.value)

    async with anyio.create_task_group() as tg:

        async def meanwhile() -> None:
            now[0] += RESERVATION + 1
            tg.start_soon(late_claim)
            await owner_read.wait()

        slow, other, now, _ = _services(lambda: meanwhile())
        alice = await slow.create_user("alice", "a@example.com", PASSWORD)
        slow_done.set()
    assert len(refused) == 1
    for key in other.names.name_keys(alice):
        entry = await other.store.get(key, IndexEntry)
        assert entry is not None and entry.value.user_id == alice.id
    found = await other.authenticate_user("alice", PASSWORD)
    assert found is not None and found.id == alice.id
    with pytest.raises(UsernameTakenError):
        await other.create_user("alice", "c@example.com", PASSWORD)


class SlowRecordReplace(StoreWrapper):
    """`before` runs just before the first user-record replace goes out, `after` once it
    has been answered: another instance's work while a slow change of address is under way."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.before: Callable[[], Awaitable[object]] | None = None
        self.after: Callable[[], Awaitable[object]] | None = None

    async def replace(self, key: str, value: Any, etag: str) -> str:
        record = key.startswith(keys.USERS)
        if record and self.before is not None:
            before, self.before = self.before, None
            await before()
        written = await self.inner.replace(key, value, etag)
        if record and self.after is not None:
            after, self.after = self.after, None
            await after()
        return written


async def test_an_undone_change_of_address_keeps_its_old_address() -> None:
    """The change loses its new address and puts the old one back in the record; while
    the record held the new one, the old address's entry must not have looked free."""
    now = [time.time()]
    shared = StoreOnSharedTime(ObjectStore.from_url("memory://"), lambda: now[0])
    slow_store = SlowRecordReplace(shared)
    settings = make_settings(name_reservation_seconds=RESERVATION)
    slow = S3AuthService(settings, store=slow_store, clock=lambda: now[0])
    other = S3AuthService(settings, store=shared, clock=lambda: now[0])
    alice = await other.create_user("alice", "a@example.com", PASSWORD)
    refused: list[type[Exception]] = []

    async def before() -> None:  # alice's entry for b is written; her record still says a
        now[0] += RESERVATION + 1  # the change stalls: both her entries look abandoned
        await other.create_user("bob", "b@example.com", PASSWORD)

    async def after() -> None:  # alice's record says b, and it is letting a go
        try:
            await other.create_user("carol", "a@example.com", PASSWORD)
        except EmailTakenError as error:
            refused.append(type(error))

    slow_store.before, slow_store.after = before, after
    with pytest.raises(EmailTakenError):  # b was lost to bob: the change is undone
        await slow.update_user(alice.id, email="b@example.com")
    assert refused == [EmailTakenError]
    kept = await other.get_user_by_id(alice.id)
    assert kept is not None and kept.email == "a@example.com"
    found = await other.authenticate_user("a@example.com", PASSWORD)
    assert found is not None and found.id == alice.id
