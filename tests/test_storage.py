"""The object-store layer on memory://, file://, two S3 servers (moto and SeaweedFS), Azure
(Azurite) and Google Cloud Storage (fake-gcs-server)."""

from __future__ import annotations

import os
import secrets
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import anyio
import msgspec
import pytest
from conftest import on_every_store

from s3auth_asgi.storage import CorruptObjectError, ObjectStore, StoreConflict, keys, versions
from s3auth_asgi.storage.access import gather
from s3auth_asgi.storage.batching import AZURE, GCS, S3
from s3auth_asgi.storage.local import STALE_STAGING_SECONDS

pytestmark = pytest.mark.anyio


class Counter(msgspec.Struct):
    n: int


@on_every_store
async def test_create_get_replace_delete(store: ObjectStore, backend: str) -> None:
    etag = await store.create("t/a.json", Counter(1))
    with pytest.raises(StoreConflict):
        await store.create("t/a.json", Counter(2))
    got = await store.get("t/a.json", Counter)
    assert got is not None and got.value == Counter(1) and got.etag == etag
    new_etag = await store.replace("t/a.json", Counter(2), etag)
    assert new_etag != etag
    with pytest.raises(StoreConflict):
        await store.replace("t/a.json", Counter(3), etag)
    got = await store.get("t/a.json", Counter)
    assert got is not None and got.value == Counter(2)
    await store.delete_many(["t/a.json", "t/never-written.json"])
    assert await store.get("t/a.json", Counter) is None
    with pytest.raises(StoreConflict):
        await store.replace("t/a.json", Counter(4), new_etag)
    # GCS deletes one key a request; everywhere else both keys went in one.
    assert dict(store.requests) == {"put": 5, "get": 3, "delete": 2 if backend == "gcs" else 1}


@on_every_store
async def test_missing_and_corrupt_objects(store: ObjectStore) -> None:
    assert await store.get("t/missing.json", Counter) is None
    await store.create("t/bad.json", {"n": "not a number"})
    with pytest.raises(CorruptObjectError) as info:
        await store.get("t/bad.json", Counter)
    assert info.value.code == "corrupt_object"


@on_every_store
async def test_list_pages_to_the_end_and_counts_pages(store: ObjectStore, backend: str) -> None:
    # On the servers, just past one page of 1,000: every PUT is a round trip (GCS: and every
    # DELETE). Azure's pages are of 5,000, beyond what a test can afford there; past one of
    # its batches of 256 deletes, then.
    total = {"memory": 2345, "file": 2345, "azure": 260, "gcs": 1100}.get(backend, 1201)
    cut = min(1000, total - 100)  # a listing from an offset has keys to find
    batching = {"azure": AZURE, "gcs": GCS}.get(backend, S3)
    await gather([store.create(f"p/{i:05d}", {}) for i in range(total)], limit=32)
    await store.create("q/other", {})
    store.reset_counts()
    listed = [info.key async for info in store.list("p/")]
    assert sorted(listed) == [f"p/{i:05d}" for i in range(total)]
    assert store.requests["list"] == -(-total // batching.list_page)
    store.reset_counts()
    after = [info.key async for info in store.list("p/", offset=f"p/{cut:05d}")]
    assert sorted(after) == [f"p/{i:05d}" for i in range(cut + 1, total)]
    store.reset_counts()
    assert await store.delete_many(listed) == total
    assert store.requests["delete"] == -(-total // batching.delete_batch)
    assert [info.key async for info in store.list("p/")] == []


@on_every_store
async def test_list_page_is_sorted_and_resumable(store: ObjectStore) -> None:
    for i in (5, 1, 9, 3, 7):
        await store.create(f"u/{i}", {})
    page, more = await store.list_page("u/", None, 2)
    assert [i.key for i in page] == ["u/1", "u/3"] and more
    page, more = await store.list_page("u/", page[-1].key, 2)
    assert [i.key for i in page] == ["u/5", "u/7"] and more
    page, more = await store.list_page("u/", page[-1].key, 2)
    assert [i.key for i in page] == ["u/9"] and not more


def test_a_version_token_keeps_what_the_backend_conditions_on() -> None:
    # No version reported (S3, Azure, local, memory): the token is the ETag itself.
    assert versions.encode('"abc"', None) == '"abc"'
    assert versions.put_mode('"abc"') == {"e_tag": '"abc"'}
    assert versions.never_issued('"abc"') == versions.NEVER_ISSUED_ETAG
    # GCS reports the generation it conditions on: both go back to obstore.
    token = versions.encode('"abc"', "1764000000123456")
    assert versions.put_mode(token) == {"e_tag": '"abc"', "version": "1764000000123456"}
    stale = versions.put_mode(versions.never_issued(token))
    assert stale == {"e_tag": versions.NEVER_ISSUED_ETAG, "version": "1"}


def test_revocation_keys_round_trip_and_sort_by_time() -> None:
    a = keys.revocation(1_700_000_000_000, "jti", 1_700_000_100, "abc")
    b = keys.revocation(1_700_000_000_001, "user", 1_700_000_100, "u/../x")
    assert a < b
    assert keys.parse_revocation(a) == (1_700_000_000_000, "jti", 1_700_000_100, "abc")
    parsed = keys.parse_revocation(b)
    assert parsed is not None and parsed.subject == keys.revocation_subject("u/../x")
    assert "/" not in parsed.subject
    assert keys.revocation_offset(1_700_000_000_001) < b
    assert keys.revocation_offset(1_700_000_000_001) > a
    assert keys.parse_revocation("revocations/garbage") is None


_REPLACER = """
import asyncio, sys, time
from s3auth_asgi.storage import ObjectStore, StoreConflict

async def main(url, rounds, start_at):
    store = ObjectStore.from_url(url)
    conflicts = 0
    while time.time() < start_at:
        await asyncio.sleep(0.001)
    for _ in range(rounds):
        while True:
            got = await store.get("counter.json", dict)
            try:
                await store.replace("counter.json", {"n": got.value["n"] + 1}, got.etag)
                break
            except StoreConflict:
                conflicts += 1
    print(conflicts)

asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
"""


@pytest.mark.slow
async def test_file_replace_is_atomic_across_processes(tmp_path: Path) -> None:
    """Read-increment-replace from four processes at once loses no increment."""
    url = f"file://{tmp_path / 'store'}"
    store = ObjectStore.from_url(url)
    await store.create("counter.json", {"n": 0})
    start_at = str(time.time() + 2)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _REPLACER, url, "40", start_at],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    conflicts = [int(p.communicate(timeout=120)[0]) for p in procs]
    assert sum(conflicts) > 0  # the processes did race
    got = await store.get("counter.json", dict)
    assert got is not None and got.value == {"n": 160}


async def test_a_new_file_store_opened_by_two_processes_at_once_opens_for_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers starting together on a new file:// store: each sees no directory, and one
    creates it before the other gets to. The later one opens the store all the same."""
    root = tmp_path / "store"
    exists = Path.exists

    def created_by_another_process_after_this_check(path: Path) -> bool:
        answer = exists(path)
        if path == root and not answer:
            root.mkdir(mode=0o700)  # the other process, between the check and the mkdir
        return answer

    monkeypatch.setattr(Path, "exists", created_by_another_process_after_this_check)
    store = ObjectStore.from_url(f"file://{root}")
    monkeypatch.undo()
    await store.create("a.json", {"v": 1})
    assert (root / "a.json").is_file()
    # And for real: processes racing to open one new store all succeed.
    racing = tmp_path / "raced" / "store"
    code = (
        "import sys; from s3auth_asgi.storage import ObjectStore; "
        f"ObjectStore.from_url({f'file://{racing}'!r}); print('opened')"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    assert [p.communicate(timeout=120)[0].strip() for p in procs] == ["opened"] * 6


async def test_a_file_store_keeps_what_it_creates_to_its_owner(tmp_path: Path) -> None:
    root = tmp_path / "new" / "store"
    store = ObjectStore.from_url(f"file://{root}")
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    etag = await store.create("users/a.json", {"v": 1})
    assert stat.S_IMODE((root / "users/a.json").stat().st_mode) == 0o600
    new_etag = await store.replace("users/a.json", {"v": 2}, etag)  # the mode change kept it
    assert stat.S_IMODE((root / "users/a.json").stat().st_mode) == 0o600
    assert new_etag != etag
    control = root / ".s3auth"
    assert {stat.S_IMODE(p.stat().st_mode) for p in (control / "locks", control / "tmp")} == {0o700}
    # A directory that already exists is the operator's: its mode is left alone.
    existing = tmp_path / "existing"
    existing.mkdir(mode=0o755)
    existing.chmod(0o755)
    inside = ObjectStore.from_url(f"file://{existing}")
    assert stat.S_IMODE(existing.stat().st_mode) == 0o755
    # What the store makes in it is the owner's alone, whatever the process umask: the
    # directories an object needs, and the object from its first byte.
    previous = os.umask(0o022)
    try:
        await inside.create("sessions/u1/s1.json", {"secret": "x"})
    finally:
        os.umask(previous)
    for made in (existing / "sessions", existing / "sessions/u1"):
        assert stat.S_IMODE(made.stat().st_mode) == 0o700, made
    assert stat.S_IMODE((existing / "sessions/u1/s1.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((root / "users").stat().st_mode) == 0o700
    assert list((existing / ".s3auth" / "tmp").iterdir()) == []  # no staging file left


async def test_a_file_store_version_is_its_content_not_inode_mtime_and_size(
    tmp_path: Path,
) -> None:
    # obstore's local ETag is (inode, mtime, size). A replace frees the old inode and the next
    # often gets it back; on a file system with coarse timestamps a later version of the same
    # size then carries an earlier version's ETag, and a writer holding that stale ETag
    # wins. Here the collision is made by hand: other bytes in the same inode, of the same
    # size, the modification time put back.
    store = ObjectStore.from_url(f"file://{tmp_path / 'store'}")
    stale = await store.create("k/one.json", {"n": 1})
    path = tmp_path / "store" / "k" / "one.json"
    before = path.stat()
    with open(path, "r+b") as file:  # the same inode, the same size
        file.write(b'{"n":2}')
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_ino == before.st_ino and path.stat().st_size == before.st_size
    with pytest.raises(StoreConflict):
        await store.replace("k/one.json", {"n": 3}, stale)
    current = await store.get("k/one.json", dict)
    assert current is not None and current.value == {"n": 2}
    # A metadata change alone (the content as it was) leaves the version as it was.
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
    again = await store.get("k/one.json", dict)
    assert again is not None and again.etag == current.etag
    assert await store.replace("k/one.json", {"n": 4}, current.etag)


async def test_a_file_store_removes_the_directories_deletes_leave_empty(tmp_path: Path) -> None:
    # A listing walks every directory under its prefix: one left for every past revocation
    # shard would make each revocation sync cost the whole history.
    root = tmp_path / "store"
    store = ObjectStore.from_url(f"file://{root}")
    old = [keys.revocation(i, "session", 10**10, f"s{i}") for i in range(3)]
    new = keys.revocation(keys.REVOCATION_SHARD_MS * 5, "session", 10**10, "later")
    for key in [*old, new]:
        await store.create(key, {})
    shards = sorted(p.name for p in (root / "revocations").iterdir())
    assert len(shards) == 2
    await store.delete_many(old)
    assert [p.name for p in (root / "revocations").iterdir()] == [shards[1]]
    await store.delete(new)
    assert not (root / "revocations").exists()
    await store.create(new, {})  # made again on demand
    assert [info.key async for info in store.list(keys.REVOCATIONS)] == [new]

    # Creates racing deletes that empty the same directory: every create lands.
    async def churn(worker: int) -> None:
        for i in range(60):
            key = f"race/{worker}-{i}.json"
            await store.create(key, {"i": i})
            await store.delete(key)

    async with anyio.create_task_group() as tasks:
        for worker in range(4):
            tasks.start_soon(churn, worker)
    assert [info async for info in store.list("race/")] == []


_KILLED_BEFORE_LINKING = """
import asyncio, os, signal, sys
from s3auth_asgi.storage import ObjectStore

def killed(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

store = ObjectStore.from_url(sys.argv[1])
os.link = killed  # the staging file is written: the process dies before it becomes the object
asyncio.run(store.create("users/killed.json", {"secret": "x"}))
"""


async def test_a_staging_file_left_by_a_killed_writer_is_never_listed_and_swept_once_stale(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    url = f"file://{root}"
    store = ObjectStore.from_url(url)
    await store.create("users/kept.json", {"n": 1})
    killed = subprocess.run([sys.executable, "-c", _KILLED_BEFORE_LINKING, url], timeout=120)
    assert killed.returncode == -signal.SIGKILL
    staging = root / ".s3auth" / "tmp"
    [left] = list(staging.iterdir())
    assert left.read_bytes() == b'{"secret":"x"}'
    assert stat.S_IMODE(left.stat().st_mode) == 0o600
    assert await store.get("users/killed.json", dict) is None
    assert [info.key async for info in store.list("")] == ["users/kept.json"]
    # Opening the store sweeps: not a file that may still be a writer's in flight...
    in_flight = staging / secrets.token_hex(12)
    in_flight.write_bytes(b"{}")
    ObjectStore.from_url(url)
    assert sorted(staging.iterdir()) == sorted((left, in_flight))
    # ...but one older than any write takes, and nothing else.
    old = time.time() - STALE_STAGING_SECONDS - 1
    os.utime(left, (old, old))
    (staging / "not-a-staging-name").write_bytes(b"")
    os.utime(staging / "not-a-staging-name", (old, old))
    reopened = ObjectStore.from_url(url)
    assert sorted(p.name for p in staging.iterdir()) == sorted(
        (in_flight.name, "not-a-staging-name")
    )
    assert [info.key async for info in reopened.list("")] == ["users/kept.json"]
    assert dict(reopened.requests) == {"list": 1}
