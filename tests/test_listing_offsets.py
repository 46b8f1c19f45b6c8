"""What a listing after an offset costs on Azure Blob Storage (Azurite) and GCS
(fake-gcs-server), as the service itself answered it: obstore sends the offset to GCS
(`start-after`) but lists an Azure prefix from its start, so there a revocation sync walks
the shard directories instead, and a page after a cursor lists every key before it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from azurite_server import Azurite
from gcs_server import FakeGCS
from listing_proxy import ListingProxy

from s3auth_asgi.blacklist import TokenBlacklist
from s3auth_asgi.identifiers import new_id
from s3auth_asgi.storage import ObjectStore, keys

pytestmark = pytest.mark.anyio
SHARD_MS = keys.REVOCATION_SHARD_MS


@pytest.fixture(params=["azure", "gcs"])
def proxied(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, ObjectStore, ListingProxy]]:
    """A store in a new container or bucket, reached through a `ListingProxy`."""
    if request.param == "azure":
        emulator: Azurite = request.getfixturevalue("azurite")
        url, upstream = emulator.fresh_url(), emulator.endpoint
    else:
        fake: FakeGCS = request.getfixturevalue("fake_gcs")
        url, upstream = fake.fresh_url(), fake.proxy
    with ListingProxy(upstream) as proxy:
        if request.param == "azure":
            monkeypatch.setenv("AZURITE_BLOB_STORAGE_URL", proxy.endpoint)
        else:
            account = json.loads(fake.service_account.read_text())
            account["gcs_base_url"] = proxy.endpoint
            path = tmp_path / "service-account.json"
            path.write_text(json.dumps(account))
            monkeypatch.setenv("GOOGLE_SERVICE_ACCOUNT", str(path))
        yield request.param, ObjectStore.from_url(url), proxy


async def _create_all(store: ObjectStore, names: list[str]) -> None:
    import anyio

    async with anyio.create_task_group() as tg:
        for name in names:
            tg.start_soon(store.create, name, {})


def _seen(proxy: ListingProxy) -> list[tuple[int, int]]:
    return [(found.objects, found.directories) for found in proxy.listings]


async def test_a_sync_with_nothing_new_lists_no_history(
    proxied: tuple[str, ObjectStore, ListingProxy],
) -> None:
    """40 entries in older shards, 3 in the last seconds: a sync after the first one lists
    the 3 (in the overlap it lists again), never the 40, on either service."""
    backend, store, proxy = proxied
    now_ms = (int(time.time() * 1000) // SHARD_MS) * SHARD_MS + 18_000
    expires = now_ms // 1000 + 900
    old = [keys.revocation(now_ms - (i + 6) * SHARD_MS, "jti", expires, f"o{i}") for i in range(40)]
    recent = [keys.revocation(now_ms - 14_000 + i, "jti", expires, f"r{i}") for i in range(3)]
    await _create_all(store, old + recent)
    clock = [now_ms / 1000]
    blacklist = TokenBlacklist(
        store,
        lookback_seconds=900,
        sync_seconds=5,
        skew_seconds=10,
        clock=lambda: clock[0],
        monotonic=lambda: clock[0],
        store_probe=False,
    )
    assert await blacklist.sync() == 43
    clock[0] += 5
    store.reset_counts()
    proxy.clear()
    assert await blacklist.sync() == 0
    if backend == "gcs":  # the offset goes to the service: what sorts after it comes back
        assert [found.query.count("start-after=") for found in proxy.listings] == [1]
        assert _seen(proxy) == [(3, 0)]
    else:  # the shard directories (41), then the one the offset lies in
        assert _seen(proxy) == [(0, 41), (3, 0)]
    assert store.requests == {"list": len(proxy.listings), "get": 1}  # and the cut-off

    # What is written next is found, in a later shard and in 0.1's layout (no shard) alike.
    later = keys.revocation(now_ms + 2_500, "jti", expires, "n1")
    unsharded = f"{keys.REVOCATIONS}{now_ms + 1_000:013d}.jti.{expires}.n2"
    await _create_all(store, [later, unsharded])
    clock[0] += 5
    assert await blacklist.sync() == 2
    assert all(blacklist.snapshot.jti_revoked(jti, clock[0]) for jti in ("n1", "n2"))


async def test_a_page_after_a_cursor_costs(
    proxied: tuple[str, ObjectStore, ListingProxy],
) -> None:
    """The last page of 30 users: GCS answers the page, Azure every key up to it (it takes
    no offset, and `users/` has no directory to skip)."""
    backend, store, proxy = proxied
    ids = sorted(new_id() for _ in range(30))
    await _create_all(store, [keys.user(user_id) for user_id in ids])
    store.reset_counts()
    proxy.clear()
    page, more = await store.list_page(keys.USERS, keys.user(ids[-6]), 5)
    assert [keys.id_from_key(info.key) for info in page] == ids[-5:] and not more
    assert _seen(proxy) == ([(5, 0)] if backend == "gcs" else [(30, 0)])
    assert store.requests == {"list": 1}
