"""`s3auth doctor`: what is inconsistent between the user records and the name index, on a
`file://` store torn by writing bad bytes to its files and on `memory://` damaged through
the store API; and `--repair`, which mends only what a repair cannot make worse, with the
name index's own conditional writes, writing no user record but to finish a deletion."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from conftest import SECRET, make_bucket, make_service
from support import AfterRequest, Clock, make_clocked_service
from test_cli import Run

from s3auth_asgi import S3AuthService
from s3auth_asgi.cli import failures
from s3auth_asgi.identifiers import fold, new_id
from s3auth_asgi.models import IndexEntry, User
from s3auth_asgi.storage import ObjectStore, keys

PASSWORD = "Correct-Horse-42x"
LINE = re.compile(r"^\[(FAIL|fixed)\] (\w+) (\S+): ", re.MULTILINE)


@pytest.fixture(params=["file", "memory", "s3"])
def url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The store the command is pointed at (through `open_store`, which a memory:// one
    needs). A reservation of 0 s: every entry is as old as one a claim never finished."""
    if request.param == "s3":
        url = f"s3://{make_bucket(request.getfixturevalue('moto_endpoint'))}/auth"
    elif request.param == "memory":
        url = "memory://"
    else:
        url = f"file://{tmp_path / 'store'}"
    monkeypatch.setenv("S3AUTH_STORE_URL", url)
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    monkeypatch.setenv("S3AUTH_NAME_RESERVATION_SECONDS", "0")
    return url


def run(coroutine: Any) -> Any:
    return anyio.run(lambda: coroutine, backend="asyncio")


def doctor(store: ObjectStore, *options: str) -> Run:
    store.reset_counts()
    return Run("doctor", *options, open_store=lambda url: store)


def found(out: str) -> set[tuple[str, str, str]]:
    """(status, kind, key) of each line a finding is reported on."""
    return {(m[1], m[2], m[3]) for m in LINE.finditer(out)}


def users(service: S3AuthService, *names: str) -> list[User]:
    async def create() -> list[User]:
        return [await service.create_user(name, f"{name}@example.com", PASSWORD) for name in names]

    return run(create())  # type: ignore[no-any-return]


def authenticates(service: S3AuthService, name: str) -> bool:
    return run(service.authenticate_user(name, PASSWORD)) is not None


def entry(store: ObjectStore, key: str) -> IndexEntry | None:
    got = run(store.get(key, IndexEntry))
    return None if got is None else got.value  # type: ignore[no-any-return]


def test_a_store_in_good_order_passes(url: str) -> None:
    store = ObjectStore.from_url(url)
    service = make_service(url, store=store)
    alice, _ = users(service, "alice", "bob")
    run(service.update_user(alice.id, email="alice@example.org"))  # deletes an entry
    checked = doctor(store)
    assert checked.code == failures.OK, checked
    assert checked.out.splitlines() == [
        "checked 2 user(s) and 6 index entries: no problem found "
        "(4 list page(s), 21 read(s), 0 write(s))"
    ]
    # Per user: its record and its 3 entries; per entry: itself, and the user it names;
    # and the end of every session (`every_session`).
    assert dict(store.requests) == {"list": 4, "get": 2 * 4 + 6 + 6 + 1}


def test_a_file_store_torn_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    monkeypatch.setenv("S3AUTH_NAME_RESERVATION_SECONDS", "0")
    root = tmp_path / "store"
    url = f"file://{root}"
    monkeypatch.setenv("S3AUTH_STORE_URL", url)
    store = ObjectStore.from_url(url)
    service = make_service(url, store=store)
    alice, bob, carol, _ = users(service, "alice", "bob", "carol", "dave")
    alice_name = keys.username_index(fold("alice"))
    carol_email = keys.email_index(fold("carol@example.com"))
    ghost = keys.username_index(fold("ghost"))
    lost = keys.email_index(fold("lost@example.com"))
    (root / alice_name).write_bytes(b'{"user_id": "' + alice.id[:5].encode())  # cut short
    (root / keys.user(bob.id)).write_bytes(b"")
    (root / carol_email).unlink()
    (root / ghost).write_bytes(json.dumps({"user_id": new_id(), "claim": "x"}).encode())
    (root / lost).write_bytes(b"\x00\xff not json")
    damage = {
        ("own_entry_corrupt", alice_name),
        ("corrupt_user", keys.user(bob.id)),
        ("own_entry_missing", carol_email),
        ("entry_user_missing", ghost),
        ("corrupt_entry", lost),
    }

    checked = doctor(store)
    assert checked.code == failures.REFUSED, checked
    assert found(checked.out) == {("FAIL", kind, key) for kind, key in damage}, checked
    assert checked.out.splitlines()[-1] == (
        "checked 4 user(s) and 13 index entries: 5 problem(s) "
        "(4 list page(s), 38 read(s), 0 write(s))"
    )
    assert checked.err == ""
    assert entry(store, carol_email) is None  # a check writes nothing
    # Alice cannot log in by her name; carol by her address, which another could take.
    assert not authenticates(service, "alice") and authenticates(service, "alice@example.com")
    assert not authenticates(service, "carol@example.com")

    repaired = doctor(store, "--repair")
    assert repaired.code == failures.REFUSED, repaired  # two cannot be repaired safely
    assert found(repaired.out) == {
        ("fixed", "own_entry_corrupt", alice_name),
        ("fixed", "own_entry_missing", carol_email),
        ("fixed", "entry_user_missing", ghost),
        ("FAIL", "corrupt_user", keys.user(bob.id)),
        ("FAIL", "corrupt_entry", lost),
    }, repaired
    assert repaired.out.splitlines()[-1] == (
        "checked 4 user(s) and 14 index entries: 5 problem(s), 3 repaired, 2 left "
        "(4 list page(s), 48 read(s), 3 write(s))"
    )
    # The scan's 38 reads, and 3 more: carol's new entry and the user it names, and the
    # user alice's entry names now that it can be read; then
    # each repair decided again on what the store holds: the record read again and the
    # entry rewritten (alice: 1 GET of the torn entry, a replace on its version; carol: 1
    # GET, a create), and the ghost entry read, its user looked for before and after the
    # release (`name_claims`: as a takeover is judged).
    assert dict(store.requests) == {"list": 4, "get": 38 + 3 + 2 * 2 + 3, "put": 3}
    assert authenticates(service, "alice") and authenticates(service, "carol@example.com")
    assert entry(store, alice_name) is not None and entry(store, alice_name).user_id == alice.id  # type: ignore[union-attr]
    ghost_entry = entry(store, ghost)
    assert ghost_entry is not None and ghost_entry.released  # released, never deleted
    assert (root / keys.user(bob.id)).read_bytes() == b""  # no user record is written

    again = doctor(store)
    assert found(again.out) == {
        ("FAIL", "corrupt_user", keys.user(bob.id)),
        ("FAIL", "corrupt_entry", lost),
    }, again
    assert carol.id not in again.out


def test_damage_through_the_store_api_as_json(url: str) -> None:
    store = ObjectStore.from_url(url)
    service = make_service(url, store=store)
    alice, bob, _, dave = users(service, "alice", "bob", "carol", "dave")
    alice_email = keys.email_index(fold("alice@example.com"))
    carol_name = keys.username_index(fold("carol"))
    dave_look = keys.skeleton_index(dave.username_skeleton or "")
    stray = keys.user(new_id())

    async def damage() -> None:
        # Alice's address names bob, who does not hold it; carol's name was let go while
        # her record holds it; dave's skeleton entry is no entry; a record that is no user.
        current = await store.get(alice_email, IndexEntry)
        assert current is not None
        await store.replace(alice_email, IndexEntry(bob.id, claim="b"), current.etag)
        name = await store.get(carol_name, IndexEntry)
        assert name is not None
        released = msgspec.structs.replace(name.value, released=True)
        await store.replace(carol_name, released, name.etag)
        look = await store.get(dave_look, IndexEntry)
        assert look is not None
        await store.replace(dave_look, {"owner": dave.id}, look.etag)
        await store.create(stray, {"hello": "world"})

    run(damage())
    checked = doctor(store, "--json")
    assert checked.code == failures.REFUSED, checked
    listed = json.loads(checked.out)
    # 5 records, 4 users' 3 entries, the 12 entries, and the users 10 of them name (not
    # carol's released entry, nor dave's unreadable one); the end of every session.
    assert dict(store.requests) == {"list": 4, "get": 5 + 12 + 12 + 10 + 1}
    assert {(item["kind"], item["key"]) for item in listed} == {
        ("own_entry_elsewhere", alice_email),
        ("entry_not_held", alice_email),
        ("own_entry_missing", carol_name),
        ("own_entry_corrupt", dave_look),
        ("corrupt_user", stray),
    }, checked
    by_kind = {item["kind"]: item for item in listed}
    assert by_kind["own_entry_elsewhere"]["user_id"] == alice.id
    assert by_kind["entry_not_held"]["user_id"] == bob.id
    assert by_kind["corrupt_user"]["repair"] is None
    assert by_kind["own_entry_missing"]["repair"] is not None
    assert all(item["repaired"] is None for item in listed)

    repaired = doctor(store, "--repair", "--json")
    assert repaired.code == failures.REFUSED, repaired  # the stray record is left
    results = {(item["kind"], item["key"]): item["repaired"] for item in json.loads(repaired.out)}
    # Alice's entry given back to her, the index side then finds it in order.
    assert results == {
        ("own_entry_elsewhere", alice_email): True,
        ("own_entry_missing", carol_name): True,
        ("own_entry_corrupt", dave_look): True,
        ("corrupt_user", stray): False,
    }, repaired
    # The scan: 5 records, 4 users' 3 entries, 12 entries and their 12 users, the end of
    # every session. Repairs: each
    # record read again, then alice's entry read, bob's record read before and after its
    # takeover, and the replace; carol's released entry read and replaced; dave's
    # unreadable one read and replaced on its version. On S3, the store's verdict too,
    # read by the command before its first write (`store_check`).
    verdict = 1 if url.startswith("s3://") else 0
    assert dict(store.requests) == {
        "list": 4,
        "get": 5 + 12 + 24 + 1 + 3 + 3 + 1 + 1 + verdict,
        "put": 3,
    }
    assert authenticates(service, "alice@example.com") and authenticates(service, "carol")
    assert entry(store, dave_look).user_id == dave.id  # type: ignore[union-attr]
    assert run(store.get(stray, dict)).value == {"hello": "world"}
    assert Run("doctor", "--json", open_store=lambda url: store).out.count('"kind"') == 1


def test_a_name_two_records_hold_is_not_given_to_either(url: str) -> None:
    """A hand edit put erin's address in frank's record: which account keeps it is the
    operator's call. Frank's own old entry, which his record no longer holds, is let go."""
    store = ObjectStore.from_url(url)
    service = make_service(url, store=store)
    erin, frank = users(service, "erin", "frank")
    erin_email = keys.email_index(fold("erin@example.com"))
    frank_email = keys.email_index(fold("frank@example.com"))

    async def edit() -> None:
        record = await store.get(keys.user(frank.id), User)
        assert record is not None
        edited = msgspec.structs.replace(record.value, email="erin@example.com")
        await store.replace(keys.user(frank.id), edited, record.etag)

    run(edit())
    repaired = doctor(store, "--repair")
    assert found(repaired.out) == {
        ("FAIL", "own_entry_elsewhere", erin_email),
        ("fixed", "entry_not_held", frank_email),
    }, repaired
    assert repaired.code == failures.REFUSED
    assert entry(store, erin_email).user_id == erin.id  # type: ignore[union-attr]
    assert entry(store, frank_email).released  # type: ignore[union-attr]
    assert authenticates(service, "erin@example.com")


def test_an_entry_of_a_claim_under_way_is_left_alone(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An entry naming no user yet is what a registration writes first: only once a
    reservation's time old is it one left by a claim that never finished."""
    monkeypatch.setenv("S3AUTH_NAME_RESERVATION_SECONDS", "120")
    store = ObjectStore.from_url(url)
    pending = keys.username_index(fold("pending"))
    run(store.create(pending, IndexEntry(new_id(), claim="c")))
    young = doctor(store, "--repair")
    assert young.code == failures.OK, young
    assert "0 user(s) and 1 index entry: no problem found" in young.out
    assert entry(store, pending) is not None and not entry(store, pending).released  # type: ignore[union-attr]
    monkeypatch.setattr("s3auth_asgi.cli.doctor.CLOCK", lambda: time.time() + 121)
    old = doctor(store, "--repair")
    assert found(old.out) == {("fixed", "entry_user_missing", pending)}, old
    assert old.code == failures.OK  # everything found was repaired
    assert entry(store, pending) is None  # let go: deleted, as a release deletes one


def test_an_unfinished_deletion_and_a_misplaced_record_are_reported(url: str) -> None:
    store = ObjectStore.from_url(url)
    service = make_service(url, store=store)
    gina, hugo = users(service, "gina", "hugo")
    copy = keys.user(new_id())

    async def damage() -> None:
        record = await store.get(keys.user(gina.id), User)
        assert record is not None
        closed = msgspec.structs.replace(record.value, deleting=True)
        await store.replace(keys.user(gina.id), closed, record.etag)
        other = await store.get(keys.user(hugo.id), User)
        assert other is not None
        await store.create(copy, other.value)

    run(damage())
    checked = doctor(store)
    assert found(checked.out) == {
        ("FAIL", "unfinished_deletion", keys.user(gina.id)),
        ("FAIL", "misplaced_user", copy),
    }, checked
    assert "s3auth user delete " + gina.id in checked.out
    assert checked.code == failures.REFUSED
    assert run(store.get(keys.user(gina.id), User)).value.deleting  # a check writes nothing
    # The deletion is finished as by its id (tests/test_doctor_erasure.py); the copy is
    # left to the operator.
    repaired = doctor(store, "--repair")
    assert found(repaired.out) == {
        ("fixed", "unfinished_deletion", keys.user(gina.id)),
        ("FAIL", "misplaced_user", copy),
    }, repaired
    assert repaired.code == failures.REFUSED
    assert run(store.get(keys.user(gina.id), User)) is None
    assert run(store.get(copy, User)).value == run(store.get(keys.user(hugo.id), User)).value


@pytest.mark.anyio
async def test_a_release_gives_way_to_a_record_written_meanwhile() -> None:
    """A slow registration whose record lands between the release of its (old) entry and
    the read that follows keeps its name: the entry is put back, as a takeover does."""
    clock = Clock()
    memory = ObjectStore.from_url("memory://")
    late = make_clocked_service(clock=clock, store=memory)
    pending = keys.username_index(fold("late"))
    user_id = new_id()
    await memory.create(pending, IndexEntry(user_id, claim="c"))
    clock.advance(late.settings.name_reservation_seconds + 1)
    record = User(id=user_id, username="late", email="late@example.com", hashed_password="x")

    async def registration_lands() -> None:
        await memory.create(keys.user(user_id), record)

    raced = AfterRequest(memory, "replace", keys.USERNAME_INDEX, registration_lands)
    service = make_clocked_service(clock=clock, store=raced)
    assert await service.names.release_abandoned(pending) is False
    back = await memory.get(pending, IndexEntry)
    assert back is not None and back.value == IndexEntry(user_id, claim="c")


def test_an_entry_naming_no_id_is_nobody_s(url: str) -> None:
    """A hand edit left entries naming what no user id can be (nor any key): no record can
    hold their names, so a registration takes one over, and a repair releases the other."""
    store = ObjectStore.from_url(url)
    service = make_service(url, store=store, name_reservation_seconds=0)
    for name in ("ivan", "judy"):
        run(store.create(keys.username_index(name), IndexEntry("../../etc/passwd", claim="x")))
    run(service.create_user("judy", "judy@example.com", PASSWORD))
    assert authenticates(service, "judy")
    repaired = doctor(store, "--repair")
    assert found(repaired.out) == {("fixed", "entry_user_missing", keys.username_index("ivan"))}
    assert repaired.code == failures.OK, repaired
    # Judy: 1 record, 3 entries; the 4 entries, and judy's record for hers; the end of
    # every session; the repair: the entry, and its replace (no record to read for what is
    # no id); on S3, the store's verdict, read by the command before its first write
    # (`store_check`).
    verdict = 1 if url.startswith("s3://") else 0
    assert dict(store.requests) == {"list": 4, "get": 4 + 4 + 1 + 1 + 3 + verdict, "put": 1}
    assert entry(store, keys.username_index("ivan")).released  # type: ignore[union-attr]


def test_entries_naming_a_copy_of_their_user_are_given_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Another tool copies alice's record to a new id's key and points her username's and
    # address's entries there. The copy is nobody's, for the doctor as for a claim: the
    # entries name no user, and a repair gives them back to alice, whose record holds them.
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    monkeypatch.setenv("S3AUTH_NAME_RESERVATION_SECONDS", "0")
    store = ObjectStore.from_url("memory://")
    service = make_service("memory://", store=store)
    (alice,) = users(service, "alice")
    copy = keys.user(new_id())
    moved = [keys.username_index(fold("alice")), keys.email_index(fold("alice@example.com"))]

    async def damage() -> None:
        record = await store.get(keys.user(alice.id), User)
        assert record is not None
        await store.create(copy, record.value)
        for key in moved:
            current = await store.get(key, IndexEntry)
            assert current is not None
            await store.replace(key, IndexEntry(keys.id_from_key(copy), claim="c"), current.etag)

    run(damage())
    checked = doctor(store, "--repair")
    assert found(checked.out) == {
        ("fixed", "own_entry_elsewhere", moved[0]),
        ("fixed", "own_entry_elsewhere", moved[1]),
        ("FAIL", "misplaced_user", copy),
    }, checked
    assert all(entry(store, key).user_id == alice.id for key in moved)  # type: ignore[union-attr]
    assert authenticates(service, "alice") and authenticates(service, "alice@example.com")
    again = doctor(store)
    assert found(again.out) == {("FAIL", "misplaced_user", copy)}, again
