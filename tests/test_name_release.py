"""Letting a name go (a deletion, a change of address, a claim that failed), or taking over
a claim that looked abandoned, never takes the name from anybody else: each interleaving
below once left a live user without the index entry of its name, so that a second account
could register it. Each runs on every backend."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import anyio
import pytest
from conftest import make_settings
from support import AfterRequest, RacedUserWrite, StoreWrapper, held_index_keys

from s3auth_asgi import (
    EmailTakenError,
    S3AuthService,
    StoreUnavailableError,
    User,
    UsernameTakenError,
    UserNotFoundError,
)
from s3auth_asgi.identifiers import fold
from s3auth_asgi.models import IndexEntry
from s3auth_asgi.name_index import NameIndex
from s3auth_asgi.storage import ObjectStore, Store, keys

pytestmark = pytest.mark.anyio
T = TypeVar("T")
PASSWORD = "SecurePass123!"
RESERVATION = 120
Meanwhile = Callable[[], Awaitable[object]]


class BeforeEntryRemoval(StoreWrapper):
    """Runs `meanwhile` once, just before the first write that would take an index entry
    under `prefix` away from a claim (a DELETE of it, or a replace of it by its releaser)."""

    def __init__(self, inner: Store, prefix: str, meanwhile: Meanwhile) -> None:
        super().__init__(inner)
        self.prefix = prefix
        self.meanwhile: Meanwhile | None = meanwhile

    async def _before(self, touched: Iterable[str]) -> None:
        if self.meanwhile is not None and any(k.startswith(self.prefix) for k in touched):
            meanwhile, self.meanwhile = self.meanwhile, None
            await meanwhile()

    async def delete_many(self, keys_: Iterable[str]) -> int:
        batch = list(keys_)
        await self._before(batch)
        return await self.inner.delete_many(batch)

    async def replace(self, key: str, value: Any, etag: str) -> str:
        if isinstance(value, IndexEntry):
            await self._before([key])
        return await self.inner.replace(key, value, etag)


class Hosts:
    """Service instances on one store and one clock; `on(wrapper)` adds one whose requests
    go through a wrapper of the shared store."""

    def __init__(self, store_url: str) -> None:
        self.store = ObjectStore.from_url(store_url)
        self.now = [time.time()]
        self.settings = make_settings(store_url, name_reservation_seconds=RESERVATION)
        self.other = self.on(self.store)

    def on(self, store: Store) -> S3AuthService:
        return S3AuthService(self.settings, store=store, clock=lambda: self.now[0])

    def pass_a_reservation(self) -> None:
        """Move the clock past a reservation: every entry written so far looks abandoned
        unless its owner holds its name."""
        self.now[0] += RESERVATION + 1

    async def assert_holds(self, user: User) -> None:
        """`user`'s names are its, found by each, and nobody else can register them."""
        for key in NameIndex.name_keys(user):
            entry = await self.store.get(key, IndexEntry)
            assert entry is not None and entry.value.user_id == user.id, key
        by_email = await self.other.get_user_by_email(user.email)
        assert by_email is not None and by_email.id == user.id
        by_name = await self.other.get_user_by_username(user.username)
        assert by_name is not None and by_name.id == user.id
        with pytest.raises(EmailTakenError):
            await self.other.create_user("interloper", user.email, PASSWORD)
        with pytest.raises(UsernameTakenError):
            await self.other.create_user(user.username, "interloper@example.com", PASSWORD)


async def test_a_deletion_racing_a_change_of_address_leaves_a_new_owner_its_entry(
    store_url: str,
) -> None:
    # The deletion reads the record (the old address), the change writes the new one, the
    # deletion goes through, someone registers the old address, and only then does the
    # change let its old address go.
    hosts = Hosts(store_url)
    vic = await hosts.other.create_user("vic", "vic@example.com", PASSWORD)
    deletion_read, change_written, deleted = anyio.Event(), anyio.Event(), anyio.Event()
    won: list[User] = []

    async def deletion_paused() -> None:
        deletion_read.set()
        await change_written.wait()

    async def change_paused() -> None:
        change_written.set()
        await deleted.wait()
        won.append(await hosts.other.create_user("win", "vic@example.com", PASSWORD))

    deleting = hosts.on(AfterRequest(hosts.store, "get", keys.USERS, deletion_paused))
    changing = hosts.on(AfterRequest(hosts.store, "replace", keys.USERS, change_paused))

    async def delete() -> None:
        assert await deleting.delete_user(vic.id) is True
        deleted.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(delete)
        await deletion_read.wait()
        await changing.update_user(vic.id, email="vic-new@example.com")
    await hosts.assert_holds(won[0])
    assert await hosts.other.get_user_by_email("vic-new@example.com") is None


async def test_a_deletion_that_read_an_old_address_leaves_its_new_owner_alone(
    store_url: str,
) -> None:
    hosts = Hosts(store_url)
    vic = await hosts.other.create_user("vic", "vic@example.com", PASSWORD)
    won: list[User] = []

    async def meanwhile() -> None:
        # Between the deletion's read and its clean-up: the address changes, and a new
        # account registers the address let go.
        await hosts.other.update_user(vic.id, email="vic-new@example.com")
        won.append(await hosts.other.create_user("win", "vic@example.com", PASSWORD))

    deleting = hosts.on(AfterRequest(hosts.store, "get", keys.USERS, meanwhile))
    assert await deleting.delete_user(vic.id) is True
    await hosts.assert_holds(won[0])


async def test_a_deletion_that_read_an_old_address_lets_the_new_one_go(store_url: str) -> None:
    # The change of address lands between the deletion's read of the record and its
    # DELETE: the new address must be let go too, or it stays blocked by a deleted user.
    hosts = Hosts(store_url)
    vic = await hosts.other.create_user("vic", "vic@example.com", PASSWORD)

    async def meanwhile() -> None:
        await hosts.other.update_user(vic.id, email="vic-new@example.com")
        hosts.store.reset_counts()

    deleting = hosts.on(AfterRequest(hosts.store, "get", keys.USERS, meanwhile))
    await deleting.check_store()  # started: its first write reads the store's verdict else
    assert await deleting.delete_user(vic.id) is True
    # After its read: the closing marker; the If-Match write that closes the record,
    # refused, the record read again and closed; the LIST, batch DELETE and `deleted`
    # marker; a GET and a PUT per name of the record it closed (its new address's among
    # them), and a GET of the old address's entry, which the change had let go already;
    # the names' batch DELETE.
    assert dict(hosts.store.requests) == {"put": 7, "get": 5, "list": 1, "delete": 2}
    assert await held_index_keys(hosts.store) == []
    assert await hosts.other.create_user("win", "vic-new@example.com", PASSWORD)


async def test_a_change_of_address_landing_on_a_closed_record_is_refused(store_url: str) -> None:
    # The change reads the record and reserves its new address; the deletion closes the
    # record; the change's write, refused, reads the record again: it must not apply to
    # the closed one, whose names are the ones the deletion lets go.
    hosts = Hosts(store_url)
    vic = await hosts.other.create_user("vic", "vic@example.com", PASSWORD)
    reserved, closed, refused = anyio.Event(), anyio.Event(), anyio.Event()

    async def change_paused() -> None:
        reserved.set()
        await closed.wait()

    async def deletion_paused() -> None:
        closed.set()
        await refused.wait()

    changing = hosts.on(RacedUserWrite(hosts.store, change_paused))
    deleting = hosts.on(AfterRequest(hosts.store, "replace", keys.USERS, deletion_paused))

    async def change() -> None:
        with pytest.raises(UserNotFoundError):
            await changing.update_user(vic.id, email="vic-new@example.com")
        refused.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(change)
        await reserved.wait()
        assert await deleting.delete_user(vic.id) is True
    assert await held_index_keys(hosts.store) == []
    for address in ("vic@example.com", "vic-new@example.com"):
        assert await hosts.other.create_user(address.partition("@")[0], address, PASSWORD)


async def test_a_failed_registration_leaves_a_name_taken_over_meanwhile_alone(
    store_url: str,
) -> None:
    hosts = Hosts(store_url)
    won: list[User] = []

    async def slow_then_failed(key: str) -> None:
        if key.startswith(keys.USERS):
            hosts.pass_a_reservation()  # the claim's entries look abandoned
            raise StoreUnavailableError("injected: the record write failed")

    async def meanwhile() -> None:
        # Between the failed claim's look at its entries and its clean-up.
        won.append(await hosts.other.create_user("win", "slow@example.com", PASSWORD))

    class FailingRecordWrite(BeforeEntryRemoval):
        async def create(self, key: str, value: Any) -> str:
            await slow_then_failed(key)
            return await self.inner.create(key, value)

    slow = hosts.on(FailingRecordWrite(hosts.store, keys.EMAIL_INDEX, meanwhile))
    with pytest.raises(StoreUnavailableError):
        await slow.create_user("slow", "slow@example.com", PASSWORD)
    await hosts.assert_holds(won[0])
    # What nobody took over is free again.
    assert await hosts.other.create_user("slow", "slow-again@example.com", PASSWORD)


async def test_a_failed_change_of_address_leaves_the_address_taken_over_meanwhile_alone(
    store_url: str,
) -> None:
    hosts = Hosts(store_url)
    vic = await hosts.other.create_user("vic", "vic@example.com", PASSWORD)
    won: list[User] = []

    async def meanwhile() -> None:
        # The change's record write is slow: its reservation looks abandoned, its user is
        # deleted (the write then fails), and a new account takes the address over.
        hosts.pass_a_reservation()
        await hosts.other.delete_user(vic.id)
        won.append(await hosts.other.create_user("win", "vic-new@example.com", PASSWORD))

    changing = hosts.on(RacedUserWrite(hosts.store, meanwhile))
    with pytest.raises(UserNotFoundError):
        await changing.update_user(vic.id, email="vic-new@example.com")
    await hosts.assert_holds(won[0])


async def test_an_address_let_go_may_be_taken_over_before_its_clean_up(store_url: str) -> None:
    hosts = Hosts(store_url)
    x = await hosts.other.create_user("xavier", "shared@example.com", PASSWORD)
    hosts.pass_a_reservation()  # the entry is old: only its owner's record holds it
    won: list[User] = []

    async def meanwhile() -> None:
        won.append(await hosts.other.create_user("yvonne", "shared@example.com", PASSWORD))

    changing = hosts.on(AfterRequest(hosts.store, "replace", keys.USERS, meanwhile))
    moved = await changing.update_user(x.id, email="new-x@example.com")
    # The address was no longer xavier's: yvonne got it, and xavier's clean-up left her
    # entry alone.
    await hosts.assert_holds(won[0])
    await hosts.assert_holds(moved)


async def test_an_address_taken_back_before_its_clean_up_stays_taken(store_url: str) -> None:
    # One account changes address, and changes it back before the first change has let
    # the old one go: the entry of the address taken back holds the same user id as the
    # one the first change read, and must still not be released by it.
    hosts = Hosts(store_url)
    vic = await hosts.other.create_user("vic", "vic@example.com", PASSWORD)
    hosts.pass_a_reservation()
    back: list[User] = []

    async def meanwhile() -> None:
        back.append(await hosts.other.update_user(vic.id, email="vic@example.com"))

    changing = hosts.on(AfterRequest(hosts.store, "replace", keys.USERS, meanwhile))
    await changing.update_user(vic.id, email="vic-new@example.com")
    assert fold(back[0].email) == "vic@example.com"
    current = await hosts.other.get_user_by_id(vic.id)
    assert current is not None and current.email == "vic@example.com"
    await hosts.assert_holds(current)
    assert await hosts.other.create_user("win", "vic-new@example.com", PASSWORD)
