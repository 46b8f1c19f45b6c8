"""`s3auth doctor --repair` and what a deletion leaves of its account's owner: a deletion
cut short once it closed the record (`unfinished_deletion`), which the repair finishes as
a deletion by the id does, with its audit event; and entries that earlier versions
released naming their user (`released_entry`), reported as a warning and let go as a
release lets a name go now. On memory:// and file://, each repair cut short by a store
failure and raced by another host's deletion, registration or clock."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import msgspec
import pytest
from conftest import SECRET, make_service
from support import AfterRequest, Clock, StoreWrapper
from test_cli import Run
from test_cli_beside_instances import _trail
from test_faults import FailFirst, FaultyStore

from s3auth_asgi import S3AuthService, StoreUnavailableError, TokenRevokedError, User
from s3auth_asgi.cli import failures
from s3auth_asgi.identifiers import fold
from s3auth_asgi.models import IndexEntry
from s3auth_asgi.storage import ObjectStore, Store, Versioned, keys

T = TypeVar("T")
PASSWORD = "Correct-Horse-42x"
RESERVATION = 120
"""The default `S3AUTH_NAME_RESERVATION_SECONDS`, longer than the skew allowance: a name
let go is deleted."""
FINISHED = "finished, as a deletion by its id finishes it"
LET_GO = "let go as a release lets a name go"


@pytest.fixture(params=["memory", "file"])
def url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The store the command is pointed at; the doctor's clock a reservation ahead, so
    that whatever a test wrote is as old as what a crash left long ago."""
    url = "memory://" if request.param == "memory" else f"file://{tmp_path / 'store'}"
    monkeypatch.setenv("S3AUTH_STORE_URL", url)
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    monkeypatch.setattr("s3auth_asgi.cli.doctor.CLOCK", lambda: time.time() + RESERVATION + 1)
    return url


def run(coroutine: Any) -> Any:
    return anyio.run(lambda: coroutine, backend="asyncio")


def doctor(store: Store, *options: str) -> Run:
    store.reset_counts()
    return Run("doctor", *options, open_store=lambda url: store)


def lines(out: str) -> list[str]:
    """`[STATUS] kind key` of each finding's line, in order."""
    return [" ".join(line.split(" ", 3)[:3]).rstrip(":") for line in out.splitlines()[:-1]]


async def cut_short(store: Store, user: User) -> None:
    """`user`'s deletion, stopped with its record closed (the closing write's answer
    lost): the record stays, names, address and password hash."""
    failing = make_service(store=FailFirst(store, "replace", "users/", after=True))
    with pytest.raises(StoreUnavailableError):
        await failing.delete_user(user.id)


async def left_of(store: Store, user_id: str) -> list[str]:
    """The keys of what the store holds that names `user_id`, but its audit trail and the
    markers that refuse its sessions (the sweep's: "What a deletion leaves")."""
    assert isinstance(store, ObjectStore)
    held = []
    async for info in store.list(""):
        if info.key.startswith(("audit/", "revocations/")) or keys.is_session_marker(info.key):
            continue
        read = await store._read(info.key)
        body = read[0].decode("utf-8", "replace") if read is not None else ""
        if user_id in info.key or user_id in body:
            held.append(info.key)
    return held


class OnGet(StoreWrapper):
    """Runs `meanwhile` once, when the `nth` GET of `key` has been answered."""

    def __init__(
        self, inner: Store, key: str, nth: int, meanwhile: Callable[[], Awaitable[object]]
    ) -> None:
        super().__init__(inner)
        self.key, self.left = key, nth
        self.meanwhile: Callable[[], Awaitable[object]] | None = meanwhile

    async def get(self, key: str, type_: type[T]) -> Versioned[T] | None:
        found = await self.inner.get(key, type_)
        if key == self.key:
            self.left -= 1
            if self.left == 0 and self.meanwhile is not None:
                meanwhile, self.meanwhile = self.meanwhile, None
                await meanwhile()
        return found


def test_a_repair_finishes_a_deletion_cut_short_and_keeps_its_trail(url: str) -> None:
    store = ObjectStore.from_url(url)
    service = make_service(store=store)
    run(service.create_user("bob", "bob@example.com", PASSWORD))
    vic = run(service.create_user("vic", "vic@example.com", PASSWORD))
    pair = run(service.create_token_pair(vic))
    run(cut_short(store, vic))
    record = keys.user(vic.id)

    checked = doctor(store)
    assert checked.code == failures.REFUSED, checked
    assert checked.out.splitlines()[0] == (
        f"[FAIL] unfinished_deletion {record}: user {vic.id}'s deletion closed the record and "
        "did not finish: the account logs nobody in and its names stay taken; "
        f"`s3auth user delete {vic.id}` finishes it; --repair: {FINISHED}"
    )

    repaired = doctor(store, "--repair")
    assert repaired.code == failures.OK, repaired
    assert repaired.out.splitlines()[0].startswith(f"[fixed] unfinished_deletion {record}: ")
    assert repaired.out.splitlines()[0].endswith(f"; {FINISHED}")
    # Its entries went with it: the index side finds bob's 3.
    assert repaired.out.splitlines()[-1] == (
        "checked 2 user(s) and 3 index entries: 1 problem(s), 1 repaired, 0 left "
        "(5 list page(s), 16 read(s), 9 write(s))"
    )
    # The scan: 2 records, bob's 3 entries, the 3 entries and bob's record for each. The
    # deletion, as `delete_user` of a closed record: the record's GET, a closing marker;
    # the sessions' LIST, the revocation, the batch DELETE, the `deleted` marker; a GET
    # and a retirement per name, their batch DELETE; then the audit event. Then the end
    # of every session; last, the check of the revocation the repair wrote (a LIST).
    assert dict(store.requests) == {
        "list": 4 + 1 + 1,
        "get": 11 + 1 + 3 + 1,
        "put": 7,
        "delete": 2,
    }
    assert run(store.get(record, User)) is None
    assert run(left_of(store, vic.id)) == []
    with pytest.raises(TokenRevokedError):
        run(service.refresh_access_token(pair.refresh_token))
    assert _trail(service, vic.id) == [("admin_user_delete", "cli")]
    store.reset_counts()
    assert run(service.create_user("vic", "vic@example.com", PASSWORD))
    assert dict(store.requests) == {"put": 4}  # its names never used, as far as one can tell

    again = doctor(store, "--repair")
    assert (again.code, lines(again.out)) == (failures.OK, []), again
    assert _trail(service, vic.id) == [("admin_user_delete", "cli")]  # nothing done twice


def test_a_deletion_cut_short_lately_is_left_to_finish(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closed less than a reservation ago, the deletion may be under way: not touched."""
    monkeypatch.setattr("s3auth_asgi.cli.doctor.CLOCK", time.time)
    store = ObjectStore.from_url(url)
    service = make_service(store=store)
    vic = run(service.create_user("vic", "vic@example.com", PASSWORD))
    run(cut_short(store, vic))
    repaired = doctor(store, "--repair")
    assert (repaired.code, lines(repaired.out)) == (failures.OK, []), repaired
    # No repair, no entry's owner; the end of every session.
    assert dict(store.requests) == {"list": 4, "get": 1 + 3 + 1}
    assert run(store.get(keys.user(vic.id), User)).value.deleting


def _closed(monkeypatch: pytest.MonkeyPatch) -> tuple[ObjectStore, S3AuthService, User]:
    monkeypatch.setenv("S3AUTH_STORE_URL", "memory://")
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    monkeypatch.setattr("s3auth_asgi.cli.doctor.CLOCK", lambda: time.time() + RESERVATION + 1)
    store = ObjectStore.from_url("memory://")
    service = make_service(store=store)
    vic = run(service.create_user("vic", "vic@example.com", PASSWORD))
    run(service.create_token_pair(vic))
    run(cut_short(store, vic))
    return store, service, vic


def test_a_repair_cut_short_anywhere_is_finished_by_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each request of a repair run fails in turn, before it is sent and after it landed:
    the next run finishes what it left, and nothing is left of the account."""
    store, _, vic = _closed(monkeypatch)
    counted = FaultyStore(store)
    assert doctor(counted, "--repair").code == failures.OK
    steps = counted.calls
    # The scan's 4 listings and the record's GET; the deletion's 13 requests (as above,
    # the LIST a request); the audit event; the end of every session's GET; the check of
    # the revocation it wrote (a LIST).
    assert steps == 5 + 13 + 1 + 1 + 1
    codes = set()
    for step in range(1, steps + 1):
        for after in (False, True):
            store, _, vic = _closed(monkeypatch)
            faulty = FaultyStore(store)
            faulty.fail_at, faulty.after = step, after
            first = doctor(faulty, "--repair")
            codes.add(first.code)
            healthy = doctor(store, "--repair")
            assert healthy.code == failures.OK, (step, after, healthy)
            assert run(left_of(store, vic.id)) == [], (step, after)
            checked = doctor(store)
            assert (checked.code, lines(checked.out)) == (failures.OK, []), (step, after)
    # A lost event is a warning, and so is a release's failure (best effort, as every
    # release's); any other failure is the command's, exit 4.
    assert codes == {failures.OK, failures.UNAVAILABLE}


def test_a_repair_racing_a_deletion_and_a_new_registration_takes_nothing_of_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another host finishes the deletion just as the repair has read the record, and
    someone registers its name and address: the repair finishes nothing twice and lets go
    of none of the newcomer's entries."""
    store, service, vic = _closed(monkeypatch)
    newcomer: list[User] = []

    async def meanwhile() -> None:
        assert await make_service(store=store).delete_user(vic.id) is True
        newcomer.append(await service.create_user("vic", "vic@example.com", PASSWORD))

    # The scan's GET of the record, then the repair's.
    raced = OnGet(store, keys.user(vic.id), 2, meanwhile)
    repaired = doctor(raced, "--repair")
    assert repaired.code == failures.OK, repaired
    assert lines(repaired.out) == [f"[fixed] unfinished_deletion {keys.user(vic.id)}"]
    (heir,) = newcomer
    for key in service.names.name_keys(heir):
        assert run(store.get(key, IndexEntry)).value.user_id == heir.id
    found = run(service.authenticate_user("vic@example.com", PASSWORD))
    assert found is not None and found.id == heir.id
    assert run(left_of(store, vic.id)) == []


def test_a_record_opened_again_since_the_scan_is_never_deleted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A record put back open (a backup restored by hand) between the scan and the repair:
    the repair deletes only a record still closed, and writes nothing."""
    store, service, vic = _closed(monkeypatch)

    async def restored() -> None:
        found = await store.get(keys.user(vic.id), User)
        assert found is not None
        opened = msgspec.structs.replace(found.value, deleting=False)
        await store.replace(keys.user(vic.id), opened, found.etag)

    repaired = doctor(OnGet(store, keys.user(vic.id), 1, restored), "--repair")
    assert repaired.code == failures.REFUSED, repaired
    assert repaired.out.splitlines()[0].endswith(
        "; not repaired: it changed since it was read; run the command again"
    )
    # The scan's GET, the 3 entries' and their user's, the end of every session's; the
    # repair's GET; no write but the restore (its GET and PUT).
    assert dict(store.requests) == {"list": 4, "get": 1 + 3 + 3 + 1 + 1 + 1, "put": 1}
    assert run(service.authenticate_user("vic", PASSWORD)) is not None
    assert _trail(service, vic.id) == []


def released_by_an_earlier_version(store: Store, key: str) -> None:
    """The entry of `key` let go as releases did before a name let go was deleted:
    marked released, naming its user still."""

    async def release() -> None:
        found = await store.get(key, IndexEntry)
        assert found is not None
        released = msgspec.structs.replace(found.value, released=True)
        await store.replace(key, released, found.etag)

    run(release())


def earlier_versions_store(url: str) -> tuple[ObjectStore, S3AuthService, dict[str, str]]:
    """hal, deleted by an earlier version (its record deleted, its 3 entries released
    naming it); ida, who changed address there (the old one's entry released naming her);
    joy, whose own username entry is released while her record holds it. The keys of the
    released entries that name a user gone from them, with that user's id."""
    store = ObjectStore.from_url(url)
    service = make_service(store=store)
    hal, ida, joy = [
        run(service.create_user(name, f"{name}@example.com", PASSWORD))
        for name in ("hal", "ida", "joy")
    ]
    leftovers = dict.fromkeys(service.names.name_keys(hal), hal.id)
    for key in leftovers:
        released_by_an_earlier_version(store, key)
    run(store.delete(keys.user(hal.id)))
    old_address = keys.email_index(fold("ida.old@example.com"))
    run(store.create(old_address, IndexEntry(ida.id, claim="c", released=True)))
    leftovers[old_address] = ida.id
    released_by_an_earlier_version(store, keys.username_index(fold(joy.username)))
    return store, service, leftovers


def test_entries_released_naming_their_user_are_warned_of_and_let_go(url: str) -> None:
    store, service, leftovers = earlier_versions_store(url)
    joy_name = keys.username_index("joy")

    checked = doctor(store)
    assert checked.code == failures.REFUSED, checked  # joy's entry: a problem
    assert sorted(lines(checked.out)) == sorted(
        [f"[FAIL] own_entry_missing {joy_name}"]
        + [f"[WARN] released_entry {key}" for key in leftovers]
    ), checked
    warned = next(line for line in checked.out.splitlines() if line.startswith("[WARN]"))
    assert warned.endswith(f"; --repair: {LET_GO}")
    assert checked.out.splitlines()[-1] == (
        "checked 2 user(s) and 10 index entries: 1 problem(s); 4 released entries still "
        "name a user (4 list page(s), 24 read(s), 0 write(s))"
    )
    # The records and their 6 entries; the 10 entries, and the user each of the 5 held
    # ones names (a released entry is read alone); the end of every session.
    assert dict(store.requests) == {"list": 4, "get": 2 + 6 + 10 + 5 + 1}

    repaired = doctor(store, "--repair")
    assert repaired.code == failures.OK, repaired
    assert sorted(lines(repaired.out)) == sorted(
        [f"[fixed] own_entry_missing {joy_name}"]
        + [f"[fixed] released_entry {key}" for key in leftovers]
    ), repaired
    assert repaired.out.splitlines()[-1] == (
        "checked 2 user(s) and 10 index entries: 1 problem(s), 1 repaired, 0 left; "
        "4 released entries still named a user, 4 let go "
        "(4 list page(s), 31 read(s), 9 write(s))"
    )
    # The records and their entries; joy's repair (her record and entry read, the entry
    # taken over); the 10 entries and the user each of the 6 held ones names; each
    # released one read again, retired (If-Match) and deleted; the end of every session.
    assert dict(store.requests) == {
        "list": 4,
        "get": 2 + 6 + 2 + 10 + 6 + 4 + 1,
        "put": 1 + 4,
        "delete": 4,
    }
    hal_id = leftovers[keys.username_index("hal")]
    assert run(left_of(store, hal_id)) == []
    listed = {info.key for info in run(_listed(store, "index/"))}
    assert len(listed) == 6 and not listed & set(leftovers)  # ida's and joy's names
    again = doctor(store, "--repair")
    assert (again.code, lines(again.out)) == (failures.OK, []), again
    store.reset_counts()
    assert run(service.create_user("hal", "ida.old@example.com", PASSWORD))
    assert dict(store.requests) == {"put": 4}


async def _listed(store: Store, prefix: str) -> list[Any]:
    return [info async for info in store.list(prefix)]


def test_released_entries_alone_leave_the_exit_code_as_it_is(url: str) -> None:
    store, service, _ = earlier_versions_store(url)
    run(service.delete_user(run(service.get_user_by_email("joy@example.com")).id))
    checked = doctor(store)
    assert checked.code == failures.OK, checked
    assert {line.split(" ")[0] for line in lines(checked.out)} == {"[WARN]"}


def test_where_a_retired_entry_cannot_be_deleted_it_names_nobody(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reservation no longer than the skew allowance: a name let go is marked released,
    naming nobody, and stays; so does the repair leave an entry released naming a user."""
    monkeypatch.setenv("S3AUTH_NAME_RESERVATION_SECONDS", "5")
    store, _, leftovers = earlier_versions_store(url)
    repaired = doctor(store, "--repair")
    assert repaired.code == failures.OK, repaired
    assert "delete" not in store.requests
    for key in leftovers:
        value = run(store.get(key, IndexEntry)).value
        assert (value.user_id, value.released) == ("", True)
    assert lines(doctor(store).out) == []


def test_a_registration_taking_a_released_entry_over_keeps_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("S3AUTH_STORE_URL", "memory://")
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    store, service, _ = earlier_versions_store("memory://")
    hal_name = keys.username_index("hal")
    heir: list[User] = []

    async def register() -> None:
        heir.append(await service.create_user("hal", "hal.new@example.com", PASSWORD))

    # The scan's GET of the entry, then the repair's, after which the name is claimed.
    repaired = doctor(OnGet(store, hal_name, 2, register), "--repair")
    assert repaired.code == failures.OK, repaired
    hal_line = next(line for line in repaired.out.splitlines() if hal_name in line)
    assert hal_line.startswith(f"[WARN] released_entry {hal_name}: ")
    assert "; not repaired: it changed since it was read" in hal_line
    assert run(store.get(hal_name, IndexEntry)).value.user_id == heir[0].id
    assert run(service.authenticate_user("hal", PASSWORD)) is not None


def test_a_release_that_stalled_past_a_reservation_deletes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rule of every release: a DELETE only while the retirement is younger than a
    reservation less the skew; past it, the retired entry is left to be taken over, or
    deleted by the next repair once abandoned."""
    monkeypatch.setenv("S3AUTH_STORE_URL", "memory://")
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    clock = Clock()
    monkeypatch.setattr("s3auth_asgi.cli.doctor.CLOCK", clock)
    store, _, leftovers = earlier_versions_store("memory://")
    ida_old = keys.email_index(fold("ida.old@example.com"))
    run(service_free_joy(store))

    async def stall() -> None:
        clock.advance(RESERVATION)

    repaired = doctor(AfterRequest(store, "replace", ida_old, stall), "--repair")
    assert repaired.code == failures.OK, repaired
    assert run(store.get(ida_old, IndexEntry)).value.user_id == ""  # retired, not deleted
    for key in set(leftovers) - {ida_old}:
        assert run(store.get(key, IndexEntry)) is None
    clock.advance(RESERVATION + 1)
    again = doctor(store, "--repair")
    assert lines(again.out) == [f"[fixed] entry_user_missing {ida_old}"], again
    assert run(store.get(ida_old, IndexEntry)) is None


async def service_free_joy(store: Store) -> None:
    """joy's entry given back, so that only the released leftovers are repaired."""
    entry = await store.get(keys.username_index("joy"), IndexEntry)
    assert entry is not None
    await store.replace(
        keys.username_index("joy"),
        msgspec.structs.replace(entry.value, released=False),
        entry.etag,
    )


def test_a_release_cut_short_is_finished_by_the_next_repair(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("S3AUTH_STORE_URL", "memory://")
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    clock = Clock()
    monkeypatch.setattr("s3auth_asgi.cli.doctor.CLOCK", clock)
    store, _, leftovers = earlier_versions_store("memory://")
    run(service_free_joy(store))
    failing = FailFirst(store, "delete_many", "index/", after=False)
    cut = doctor(failing, "--repair")
    # The DELETE is best effort, as every release's: the entries are retired, naming nobody.
    assert cut.code == failures.OK, cut
    left = {key: run(store.get(key, IndexEntry)) for key in leftovers}
    (retired,) = [key for key, found in left.items() if found is not None]
    assert left[retired].value.user_id == ""  # type: ignore[union-attr]
    clock.advance(RESERVATION + 1)
    again = doctor(store, "--repair")
    assert lines(again.out) == [f"[fixed] entry_user_missing {retired}"], again
    assert all(run(store.get(key, IndexEntry)) is None for key in leftovers)
