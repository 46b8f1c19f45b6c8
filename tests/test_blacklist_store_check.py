"""A TokenBlacklist used on its own writes through the same check of the store's
conditional writes as the service (`store_check`): on a store that ignores them a
revocation is refused before it is sent; on a good one the first write reads the verdict
(or probes once) and every write after it costs its PUT alone. The service's own revocation
list shares the service's check rather than running a second one."""

from __future__ import annotations

import time

import pytest
from conftest import make_bucket, make_service, make_settings
from test_storage_probes import EVERY_REQUEST, UnconditionalStore

from s3auth_asgi import TokenBlacklist
from s3auth_asgi.errors import StoreUnsafeError
from s3auth_asgi.storage import ObjectStore, Store, keys

pytestmark = pytest.mark.anyio

LIFETIME = 900
PROBED = {kind: count + {"get": 1, "put": 1}.get(kind, 0) for kind, count in EVERY_REQUEST.items()}


def bare(store: Store) -> TokenBlacklist:
    return TokenBlacklist(store, lookback_seconds=LIFETIME, sync_seconds=5, skew_seconds=10)


def from_settings(store: Store) -> TokenBlacklist:
    url = str(getattr(store, "url", ""))
    return TokenBlacklist.from_settings(store, make_settings(url))


MADE = {"TokenBlacklist(store)": bare, "TokenBlacklist.from_settings": from_settings}


async def revocations(store: Store) -> list[str]:
    return [info.key async for info in store.list(keys.REVOCATIONS)]


@pytest.mark.parametrize("made", sorted(MADE))
async def test_a_revocation_on_a_store_that_ignores_conditional_writes_is_refused(
    made: str, moto_endpoint: str
) -> None:
    store = UnconditionalStore.from_url(f"s3://{make_bucket(moto_endpoint)}/auth")
    blacklist = MADE[made](store)
    with pytest.raises(StoreUnsafeError):
        await blacklist.revoke_session("s1")
    probed = dict(store.requests)
    assert probed == {"list": 1, "get": 3, "put": 4, "delete": 1}
    with pytest.raises(StoreUnsafeError):
        await blacklist.add("jti-1", time.time() + 60)  # refused without asking again
    with pytest.raises(StoreUnsafeError):
        await blacklist.revoke_user("u1", ["s2"])
    assert dict(store.requests) == probed
    assert await revocations(store) == []
    assert await store.get(keys.STORE_VERDICT, dict) is None


@pytest.mark.parametrize("made", sorted(MADE))
async def test_on_a_good_store_only_the_first_write_is_checked(
    made: str, moto_endpoint: str
) -> None:
    store = ObjectStore.from_url(f"s3://{make_bucket(moto_endpoint)}/auth")
    blacklist = MADE[made](store)
    await blacklist.revoke_session("s1")
    assert dict(store.requests) == {k: v + (k == "put") for k, v in PROBED.items()}
    store.reset_counts()
    await blacklist.revoke_session("s2")
    assert dict(store.requests) == {"put": 1}
    # Another process's list: the verdict (1 GET) before its first write, then the PUT.
    store.reset_counts()
    await MADE[made](store).revoke_session("s3")
    assert dict(store.requests) == {"get": 1, "put": 1}
    assert len(await revocations(store)) == 3


async def test_the_service_list_shares_the_service_check(moto_endpoint: str) -> None:
    url = f"s3://{make_bucket(moto_endpoint)}/auth"
    service = make_service(url, store=UnconditionalStore.from_url(url))
    with pytest.raises(StoreUnsafeError):
        await service.blacklist.revoke_session("s1")
    assert service.store_check.lacking  # found by the service's check, not a second one


@pytest.mark.parametrize("store_url", ["memory", "file"], indirect=True)
async def test_memory_and_file_lists_write_at_once(store_url: str) -> None:
    store = ObjectStore.from_url(store_url)
    await bare(store).revoke_session("s1")
    assert dict(store.requests) == {"put": 1}
