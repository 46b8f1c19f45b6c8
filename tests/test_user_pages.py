"""Paging through the users while the store changes: a client that follows `next_cursor`,
and a walk of them all (`every_user`), sees every user that was there throughout exactly
once, whatever else the `users/` prefix holds (another tool's copies and notes), and each
page costs what the budget says."""

from __future__ import annotations

import collections
import io
from unittest import mock

import anyio
import msgspec
import obstore
import pytest
from conftest import SECRET, make_service, make_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import RacedUserWrite

from s3auth_asgi import S3AuthService, cli, user_directory
from s3auth_asgi.errors import UserNotFoundError
from s3auth_asgi.events import new_event
from s3auth_asgi.identifiers import fold
from s3auth_asgi.models import IndexEntry, User
from s3auth_asgi.storage import ObjectStore, keys

pytestmark = pytest.mark.anyio
on_three = pytest.mark.parametrize("store_url", ["memory", "file", "s3"], indirect=True)
PASSWORD = "SecurePass123!"
MAX_PAGES = 50


async def every_page(service: S3AuthService, limit: int, **search: str) -> list[list[str]]:
    """The ids of each page a client following the cursor gets (at most MAX_PAGES)."""
    pages: list[list[str]] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        users, cursor = await service.list_users(after=cursor, limit=limit, **search)
        pages.append([user.id for user in users])
        if cursor is None:
            return pages
    raise AssertionError(f"still paging after {MAX_PAGES} pages: {pages[-3:]}")


async def copy_object(store: ObjectStore, source: str, target: str) -> None:
    """What an operator's tool does: a byte-for-byte copy of an object, past the package."""
    data = await (await obstore.get_async(store._inner, source)).bytes_async()
    await obstore.put_async(store._inner, target, bytes(data))


@on_three
async def test_other_objects_under_users_end_no_page_and_list_nobody_twice(
    store_url: str,
) -> None:
    service = make_service(store_url)
    store = service.store_check.store
    ids = sorted(
        [
            (await service.create_user(f"user{i}", f"user{i}@example.com", PASSWORD)).id
            for i in range(4)
        ]
    )
    first = keys.user(ids[0])
    # A backup beside a record, a copy in a folder (named after an id that sorts first), a
    # record copied to another user's key, and notes: all valid keys, none a user's record.
    await copy_object(store, first, first + ".bak")
    await copy_object(store, first, f"{keys.USERS}archive/{'0' * 32}.json")
    await copy_object(store, first, keys.user("f" * 32))
    for name in ("notes.txt", "zz/readme.txt"):
        await obstore.put_async(store._inner, keys.USERS + name, b"{}")
    listed = [info.key async for info in store.list(keys.USERS)]
    assert len(listed) == 9
    for limit in range(1, len(listed) + 1):
        pages = await every_page(service, limit)
        assert [user for page in pages for user in page] == ids, limit
        assert all(len(page) <= limit for page in pages)
    store.reset_counts()
    users, cursor = await service.list_users(limit=1000)
    assert [user.id for user in users] == ids and cursor is None
    # One LIST, one GET per record at a user's key (the copy at one too): the others are
    # not read.
    assert dict(store.requests) == {"list": 1, "get": len(ids) + 1}
    assert await service.get_user_by_id(ids[0]) is not None


@pytest.mark.parametrize("store_url", ["memory", "file"], indirect=True)
async def test_a_page_costs_one_list_however_many_users_follow(store_url: str) -> None:
    store = ObjectStore.from_url(store_url)
    async with anyio.create_task_group() as tg:
        for i in range(1001):
            tg.start_soon(store.create, f"p/{i:05d}", {})
    store.reset_counts()
    page, more = await store.list_page("p/", None, 3)
    assert [info.key for info in page] == ["p/00000", "p/00001", "p/00002"] and more
    assert dict(store.requests) == {"list": 1}
    store.reset_counts()
    page, more = await store.list_page("p/", "p/00997", 2)
    assert [info.key for info in page] == ["p/00998", "p/00999"] and more
    assert dict(store.requests) == {"list": 1}


# Between two pages: a registration, a deletion (of the n-th user there, by id order), a
# change of address, or another tool's object written among the records.
changes = st.lists(
    st.one_of(
        st.just(("register", 0)),
        st.tuples(st.just("delete"), st.integers(0, 20)),
        st.tuples(st.just("change"), st.integers(0, 20)),
        st.tuples(st.just("foreign"), st.integers(0, 20)),
    ),
    max_size=4,
)


class Churn:
    """Other processes' changes to the users, with who is there and who was deleted."""

    def __init__(self, service: S3AuthService) -> None:
        self.service = service
        self.store = service.store_check.store
        self.alive: set[str] = set()
        self.gone: set[str] = set()
        self.made = 0

    async def register(self) -> None:
        self.made += 1
        name = f"pager{self.made}"
        user = await self.service.create_user(name, f"{name}@example.com", PASSWORD)
        self.alive.add(user.id)

    async def change(self, kind: str, n: int) -> None:
        there = sorted(self.alive)
        if kind == "register":
            await self.register()
        elif kind == "foreign":
            # A backup beside the last record (a key that sorts right after it), or a copy
            # of one in a folder (`archive/` sorts among the ids).
            if there:
                user_id = there[n % len(there)]
                target = f"{keys.user(there[-1])}.{n}.bak"
                if n % 2:
                    target = f"{keys.USERS}archive/{user_id}.json"
                await copy_object(self.store, keys.user(user_id if n % 2 else there[-1]), target)
        elif there:
            user_id = there[n % len(there)]
            if kind == "delete":
                assert await self.service.delete_user(user_id)
                self.alive.discard(user_id)
                self.gone.add(user_id)
            else:
                self.made += 1
                await self.service.update_user(user_id, email=f"moved{self.made}.{n}@example.com")

    def check(self, throughout: set[str], seen: list[str]) -> None:
        assert len(seen) == len(set(seen)), "a user listed twice"
        assert throughout - self.gone <= set(seen), "a user there throughout left out"
        assert set(seen) <= self.alive | self.gone, "a user that never was"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.integers(1, 6),
    limit=st.integers(1, 4),
    between=st.lists(changes, max_size=5),
)
def test_a_paging_client_sees_every_user_there_throughout_exactly_once(
    start: int, limit: int, between: list[list[tuple[str, int]]]
) -> None:
    churn = Churn(make_service())

    async def run() -> None:
        for _ in range(start):
            await churn.register()
        throughout = set(churn.alive)
        seen: list[str] = []
        cursor: str | None = None
        for page in range(MAX_PAGES):
            users, cursor = await churn.service.list_users(after=cursor, limit=limit)
            assert len(users) <= limit
            seen += [user.id for user in users]
            if cursor is None:
                break
            for kind, n in between[page] if page < len(between) else []:
                await churn.change(kind, n)
        else:
            raise AssertionError("the cursor never ended")
        churn.check(throughout, seen)

    anyio.run(run)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.integers(1, 6),
    batch=st.integers(1, 4),
    between=st.lists(changes, max_size=6),
)
def test_a_walk_of_every_user_sees_each_there_throughout_exactly_once_in_order(
    start: int, batch: int, between: list[list[tuple[str, int]]]
) -> None:
    """`every_user` as `s3auth user list` walks it, reading `batch` records at a time,
    while other processes change the users after each user it gives."""
    churn = Churn(make_service())

    async def run() -> None:
        for _ in range(start):
            await churn.register()
        throughout = set(churn.alive)
        seen: list[str] = []
        async for user in churn.service.every_user():
            seen.append(user.id)
            for kind, n in between[len(seen) - 1] if len(seen) <= len(between) else []:
                await churn.change(kind, n)
        assert seen == sorted(seen), "not in id order"
        churn.check(throughout, seen)

    with mock.patch.object(user_directory, "WALK_BATCH", batch):
        anyio.run(run)


@on_three
async def test_other_objects_in_a_trail_end_no_page_and_show_no_event_twice(
    store_url: str,
) -> None:
    now = [1_800_000_000.0]
    service = S3AuthService(make_settings(store_url), clock=lambda: now[0])
    store = service.store_check.store
    alice = await service.create_user("alice", "alice@example.com", PASSWORD)
    for _ in range(3):
        now[0] += 1
        event = new_event("login", "success", user_id=alice.id, clock=lambda: now[0])
        assert await service.audit.record(event)
    prefix = keys.user_audit(alice.id)
    events = [info.key async for info in store.list(prefix)]
    assert len(events) == 3
    await copy_object(store, events[0], events[0] + ".bak")
    for name in ("notes.txt", "zz/readme.txt"):
        await obstore.put_async(store._inner, prefix + name, b"{}")
    ids = [key.removeprefix(prefix) for key in events]
    for limit in range(1, 8):
        seen: list[str] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            entries, cursor = await service.audit.page(alice.id, after=cursor, limit=limit)
            seen += [entry.id for entry in entries]
            if cursor is None:
                break
        assert seen == ids, limit
    store.reset_counts()
    assert [entry.id for entry in (await service.audit.page(alice.id, limit=200))[0]] == ids
    assert dict(store.requests) == {"list": 1, "get": len(ids)}


async def test_a_record_copied_to_another_users_key_is_nobodys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = make_service()
    store = service.store_check.store
    alice = await service.create_user("alice", "alice@example.com", PASSWORD)
    elsewhere = "f" * 32
    await copy_object(store, keys.user(alice.id), keys.user(elsewhere))
    # What the listing leaves out, a read by that id says is not there: no account has it.
    assert await service.get_user_by_id(elsewhere) is None
    assert [user.id for user in (await service.list_users())[0]] == [alice.id]
    assert await service.get_user_by_id(alice.id) == alice
    # Nor does deleting the copy's id delete the account whose record it copies.
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    out, err = io.StringIO(), io.StringIO()
    code = await anyio.to_thread.run_sync(
        lambda: cli.main(
            ["user", "delete", elsewhere, "--yes"],
            stdout=out,
            stderr=err,
            open_store=lambda _: store,
        )
    )
    assert code != 0 and "no user" in err.getvalue(), (code, out.getvalue(), err.getvalue())
    # No change applies to it, and deleting it by that id lets go of none of the names it
    # copies: they are the account's.
    with pytest.raises(UserNotFoundError):
        await service.update_user(elsewhere, full_name="Mallory")
    assert await service.delete_user(elsewhere) is False
    assert await service.get_user_by_id(alice.id) == alice
    assert await service.get_user_by_username("alice") == alice
    assert await service.get_user_by_email("alice@example.com") == alice


async def test_a_copy_written_where_a_deletion_is_closing_a_record_is_not_what_it_deletes() -> None:
    # One instance's deletion of alice reads her record; before its closing write lands,
    # another instance deletes her, and another tool copies bob's record to her key. The
    # first finds its write refused and reads the key again: the copy there is nobody's,
    # as for every reader, so it deleted no user, and bob keeps his names.
    inner = ObjectStore.from_url("memory://")
    other = make_service(store=inner)
    alice = await other.create_user("alice", "alice@example.com", PASSWORD)
    bob = await other.create_user("bob", "bob@example.com", PASSWORD)
    spent: collections.Counter[str] = collections.Counter()

    async def deleted_then_copied() -> None:
        before = collections.Counter(inner.requests)
        assert await other.delete_user(alice.id) is True
        await copy_object(inner, keys.user(bob.id), keys.user(alice.id))
        spent.update(inner.requests - before)

    raced = RacedUserWrite(inner, deleted_then_copied)
    service = make_service(store=raced)
    inner.reset_counts()
    assert await service.delete_user(alice.id) is False
    assert raced.meanwhile is None  # the race happened
    # Its GET, closing marker and refused close; the GETs of the close's next try and of
    # what is left, each finding the copy nobody's; and, as any deletion that finds no user
    # but markers among its sessions, the LIST of one, the listing and the deletion's marker.
    assert dict(inner.requests - spent) == {"get": 3, "put": 3, "list": 2}
    assert await other.get_user_by_username("bob") == bob
    assert await other.get_user_by_email("bob@example.com") == bob
    assert await other.get_user_by_id(bob.id) == bob
    # The copy is left where it was written, for the operator (`s3auth doctor`).
    assert await other.get_user_by_id(alice.id) is None
    copy = await inner.get(keys.user(alice.id), User)
    assert copy is not None and copy.value == bob


async def test_a_name_whose_entry_names_a_copy_of_its_user_finds_nobody() -> None:
    # Another tool copies alice's record to a new id's key and points her names' entries
    # there: the record at that key is still alice's, a copy, which no name leads to, as no
    # id does; a login by either name is refused, and a look-up costs what it did.
    service = make_service()
    store = service.store_check.store
    alice = await service.create_user("alice", "alice@example.com", PASSWORD)
    elsewhere = "f" * 32
    await copy_object(store, keys.user(alice.id), keys.user(elsewhere))
    for key in (keys.username_index(fold("alice")), keys.email_index(fold("alice@example.com"))):
        entry = await store.get(key, IndexEntry)
        assert entry is not None
        await store.replace(key, IndexEntry(elsewhere, claim="moved"), entry.etag)
    store.reset_counts()
    assert await service.get_user_by_username("alice") is None
    assert await service.get_user_by_email("alice@example.com") is None
    assert dict(store.requests) == {"get": 4}
    assert await service.authenticate_user("alice", PASSWORD) is None
    assert await service.authenticate_user("alice@example.com", PASSWORD) is None
    assert await service.get_user_by_id(alice.id) == alice


async def test_deleting_by_an_id_whose_key_holds_a_closed_copy_finds_no_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A record a deletion closed, copied to another id's key: it is nobody's, so the command
    # says there is no such user, not that it finishes a deletion, and leaves it as it is.
    service = make_service()
    store = service.store_check.store
    bob = await service.create_user("bob", "bob@example.com", PASSWORD)
    elsewhere = "f" * 32
    await store.create(keys.user(elsewhere), msgspec.structs.replace(bob, deleting=True))
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    out, err = io.StringIO(), io.StringIO()
    code = await anyio.to_thread.run_sync(
        lambda: cli.main(
            ["user", "delete", elsewhere, "--yes"],
            stdout=out,
            stderr=err,
            open_store=lambda _: store,
        )
    )
    assert code != 0 and f"no user {elsewhere!r} (give an id" in err.getvalue(), (
        code,
        out.getvalue(),
        err.getvalue(),
    )
    copy = await store.get(keys.user(elsewhere), User)
    assert copy is not None and copy.value == msgspec.structs.replace(bob, deleting=True)
    assert await service.get_user_by_username("bob") == bob
