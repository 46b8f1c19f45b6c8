"""The sweep deletes as its listing goes, a DELETE request's worth of keys at a time, so
what it holds is one batch whatever the history (`storage.batching.delete_as_listed`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path

import anyio
import pytest
from conftest import SECRET, make_settings
from support import StoreWrapper

import s3auth_asgi
from s3auth_asgi import S3AuthService
from s3auth_asgi.identifiers import new_id, new_session_id
from s3auth_asgi.storage import ObjectInfo, ObjectStore, keys

pytestmark = pytest.mark.anyio

YEARS = 20 * 365 * 86400
NOW = time.time()


class Watched(StoreWrapper):
    """Records each listed object and each `delete_many` with its size, in order."""

    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self.order: list[str] = []

    async def delete_many(self, batch: Iterable[str]) -> int:
        keys_ = list(batch)
        self.order.append(f"delete {len(keys_)}")
        return await self.inner.delete_many(keys_)

    async def list(self, prefix: str, offset: str | None = None) -> AsyncIterator[ObjectInfo]:
        async for info in self.inner.list(prefix, offset):
            self.order.append("listed")
            yield info


def _session(i: int) -> str:
    return keys.session(new_id(), new_session_id(int(NOW * 1000) + i))


def _revocation(i: int) -> str:
    return keys.revocation(int(NOW * 1000) + i, "jti", int(NOW) + 60, f"jti{i}")


def _account_token(i: int) -> str:
    return keys.account_token("password-reset", new_id())


def _audit_event(i: int) -> str:
    return keys.audit_event(new_id()[:8] + "0" * 24, int(NOW * 1000) + i, f"{i:08x}")


@pytest.mark.parametrize("key", [_session, _revocation, _account_token, _audit_event])
async def test_each_sweep_deletes_a_batch_as_soon_as_it_is_listed(
    key: Callable[[int], str],
) -> None:
    store = ObjectStore.from_url("memory://")
    for i in range(2500):
        await store.create(key(i), {})
    watched = Watched(store)
    later = S3AuthService(make_settings(), store=watched, clock=lambda: NOW + YEARS)
    store.reset_counts()
    assert await later.cleanup_expired_tokens() == 2500
    batch = ["listed"] * 1000
    assert watched.order == [
        *batch,
        "delete 1000",
        *batch,
        "delete 1000",
        *batch[:500],
        "delete 500",
    ]
    assert store.requests["delete"] == 3
    assert [info async for info in store.list("")] == []


@pytest.mark.parametrize("store_url", ["memory", "file", "s3"], indirect=True)
async def test_the_sweep_deletes_every_expired_entry_and_no_live_one(store_url: str) -> None:
    """Deleting what a listing has passed while it goes on pages: S3 continues after the
    last key listed, a directory is read whole before its entries are, memory snapshots.
    Expired and live entries alternate, so the first batch is full at the end of the second
    page, deleted before the third is listed; the rest are deleted at the end."""
    store = ObjectStore.from_url(store_url)
    expired = {keys.revocation(1_000_000 + 7 * i, "jti", 100, f"old{i}") for i in range(1100)}
    live = {
        keys.revocation(1_000_000 + 7 * i + 3, "jti", int(NOW) + 3600, f"new{i}")
        for i in range(1100)
    }
    limiter = anyio.CapacityLimiter(32)

    async def put(key: str) -> None:
        async with limiter:
            await store.create(key, {})

    async with anyio.create_task_group() as tg:
        for key in sorted(expired | live):
            tg.start_soon(put, key)
    service = S3AuthService(make_settings(store_url), store=store)
    store.reset_counts()
    assert await service.blacklist.cleanup() == 1100
    assert store.requests["delete"] == 2  # ceil(1100 / 1000)
    assert store.requests["list"] == 3  # ceil(2200 / 1000): no page was lost or listed twice
    assert {info.key async for info in store.list(keys.REVOCATIONS)} == live


_MEASURE = """
import os, sys, tracemalloc

import anyio

from s3auth_asgi import S3AuthService, S3AuthSettings
from s3auth_asgi.storage import ObjectStore, keys

root = sys.argv[1]


def write_expired(count: int) -> None:
    made = set()
    for i in range(count):
        # Where the store writes them, without a PUT's worth of time each; through os.path,
        # as pathlib would intern every name.
        key = keys.revocation(1_000_000_000 + 1000 * i, "jti", 100, f"jti{i:05d}")
        directory, name = os.path.split(os.path.join(root, key))
        if directory not in made:
            os.makedirs(directory, exist_ok=True)
            made.add(directory)
        with open(os.path.join(directory, name), "wb") as file:
            file.write(b"{}")


async def main() -> None:
    store = ObjectStore.from_url(f"file://{root}")
    settings = S3AuthSettings(store_url=f"file://{root}", secret_key=sys.argv[2])
    service = S3AuthService(settings, store=store)
    # A first sweep, of a batch and a half: what it imports is not a sweep's memory.
    write_expired(1_500)
    await service.blacklist.cleanup()
    # pathlib interns the name of each lock file the store opens, which is freed with its
    # path, so the interpreter's table of interned strings fills with freed places and is
    # copied anew (~1 MB) every few ten thousand deletes, whatever the sweep holds. Names
    # held here stay interned: the table does not change while the sweep is measured.
    held = [sys.intern(name) for name in os.listdir(os.path.join(root, ".s3auth", "locks"))]
    assert len(held) > 1
    write_expired(10_000)
    tracemalloc.start()
    deleted = await service.blacklist.cleanup()
    print(deleted, tracemalloc.get_traced_memory()[1])
    assert [info async for info in store.list(keys.REVOCATIONS)] == []


anyio.run(main)
"""


def test_the_sweep_holds_one_batch_not_the_history(tmp_path: Path) -> None:
    """10,000 expired entries in a file:// store, ten to a shard: the sweep's peak memory
    is that of a batch and a directory's entries, not of every key listed (a sweep that
    listed every key before deleting peaks at 1.55 MB). Measured in an interpreter of its
    own, so that what other tests left in this one's tables is not counted."""
    package_root = Path(s3auth_asgi.__file__).parent.parent
    env = {**os.environ, "PYTHONPATH": str(package_root)}
    run = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(tmp_path / "store"), SECRET],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    deleted, peak = map(int, run.stdout.split())
    print(f"peak {peak} bytes")
    assert deleted == 10_000
    assert peak < 1_000_000  # 0.67 MB here, 1.55 MB when it held every key listed
