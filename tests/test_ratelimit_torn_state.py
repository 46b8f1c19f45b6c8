"""A limiter state that cannot be read (torn by a crash on a `file://` store, edited by hand,
written by another tool) is counted as no state, and overwritten on its version by the next
write, rather than answering 503 for its key for ever: no sweep deletes a host limit's
object that cannot be read, and the app's own only once its window has passed."""

from __future__ import annotations

from pathlib import Path

import obstore
import pytest

from s3auth_asgi.ratelimit import FailureBudget, ObjectStoreRateLimitStore, RateLimit
from s3auth_asgi.ratelimit.stores import BucketState, BudgetState
from s3auth_asgi.storage import ObjectStore, keys

pytestmark = pytest.mark.anyio
on_local = pytest.mark.parametrize("store_url", ["memory", "file"], indirect=True)
on_local_and_servers = pytest.mark.parametrize(
    "store_url", ["memory", "file", "seaweedfs", "azure", "gcs"], indirect=True
)
"""Where the version of an object that cannot be read is each backend's own: an ETag of
its bytes, Azure's of its write, GCS's generation."""

NOW = 1_800_000_000.0
LIMIT = RateLimit(max_requests=5, window_seconds=60)
BUDGET = FailureBudget("reports.failures", {"reports_failed": RateLimit(3, 900)})


async def tear(store: ObjectStore, store_url: str, key: str) -> None:
    """What a crash leaves on a directory whose writes were not synced: an empty object
    (elsewhere, one written over by hand)."""
    if store_url.startswith("file://"):
        path = Path(store_url.removeprefix("file://")) / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    else:
        await obstore.put_async(store._inner, key, b'{"tat": "torn"}')


@on_local_and_servers
async def test_a_torn_state_is_counted_afresh_and_overwritten(store_url: str) -> None:
    store = ObjectStore.from_url(store_url)
    limiter = ObjectStoreRateLimitStore(store, clock=lambda: NOW)
    object_key = keys.ratelimit("reports", "k")
    await tear(store, store_url, object_key)
    store.reset_counts()
    first = await limiter.acquire("reports", "k", LIMIT, 1)
    assert (first.allowed, first.remaining) == (True, 4)
    # One GET, and one PUT conditioned on the torn object's version.
    assert dict(store.requests) == {"get": 1, "put": 1}
    stored = await store.get(object_key, BucketState)
    assert stored is not None and stored.value.tat == NOW + LIMIT.emission_interval
    second = await limiter.acquire("reports", "k", LIMIT, 1)
    assert (second.allowed, second.remaining) == (True, 3)
    # An even check too.
    await tear(store, store_url, object_key)
    assert (await limiter.acquire_evenly("reports", "k", LIMIT, 0)).remaining == 5
    stored = await store.get(object_key, BucketState)
    assert stored is not None and stored.value.tat == NOW


@on_local
async def test_a_torn_budget_is_read_as_none_and_overwritten_by_a_failure(store_url: str) -> None:
    store = ObjectStore.from_url(store_url)
    limiter = ObjectStoreRateLimitStore(store, clock=lambda: NOW)
    object_key = keys.ratelimit_budget(BUDGET.name, "alice")
    await tear(store, store_url, object_key)
    store.reset_counts()
    reading = await limiter.peek(BUDGET, "alice")
    assert reading.allowed and reading.decisions[0].remaining == 3
    recorded = await limiter.record(reading)
    assert recorded.allowed and recorded.decisions[0].remaining == 2
    assert dict(store.requests) == {"get": 1, "put": 1}
    stored = await store.get(object_key, BudgetState)
    assert stored is not None and stored.value.tats == {"reports_failed": NOW + 300}


@on_local_and_servers
async def test_a_state_written_over_the_torn_one_meanwhile_is_counted_on(store_url: str) -> None:
    """The overwrite is conditioned on the torn object's version: another process that
    replaced it first is not overwritten, and its admission is counted on."""
    store = ObjectStore.from_url(store_url)
    object_key = keys.ratelimit("reports", "k")
    await tear(store, store_url, object_key)
    ours = ObjectStoreRateLimitStore(store, clock=lambda: NOW)
    theirs = ObjectStoreRateLimitStore(store, clock=lambda: NOW)
    original_get = store.get
    raced = []

    async def get_then_race(key: str, type_: type[object]) -> object:
        try:
            return await original_get(key, type_)
        finally:
            if not raced:
                raced.append(True)
                assert (await theirs.acquire("reports", "k", LIMIT, 1)).remaining == 4

    store.get = get_then_race  # type: ignore[method-assign]
    decision = await ours.acquire("reports", "k", LIMIT, 1)
    assert raced and (decision.allowed, decision.remaining) == (True, 3)
