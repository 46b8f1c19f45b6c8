"""`rotate` and `retire` on the stored key set never leave it without a key that signs or
will: every process starting on such a set would refuse to, and nothing could repair it
but a hand-written object. `rotate` repairs a set emptied some other way."""

from __future__ import annotations

import pytest
from support import Clock, make_clocked_service, user_record

from s3auth_asgi import ConfigurationError, S3AuthService
from s3auth_asgi.keys.stored import KeyStore, StoredKey, StoredKeySet
from s3auth_asgi.storage import ObjectStore
from s3auth_asgi.storage import keys as layout

pytestmark = pytest.mark.anyio

SYNC = 60
PUBLISH = 500
LIFETIME = 1805


def keyed(store: ObjectStore, clock: Clock) -> S3AuthService:
    return make_clocked_service(
        store=store,
        clock=clock,
        algorithm="ES256",
        key_sync_seconds=SYNC,
        key_publish_seconds=PUBLISH,
    )


async def stored(store: ObjectStore) -> list[StoredKey]:
    found = await KeyStore(store).read()
    assert found is not None
    return found[0].keys


async def test_retire_never_empties_the_key_set() -> None:
    """The operator's clock a few seconds behind the host that made the first key: that
    key looks as if it never signed, and retiring it would leave no key at all."""
    clock = Clock()
    store = ObjectStore.from_url("memory://")
    only = (await keyed(store, clock).published_keys()).entries[0].kid
    before = await stored(store)
    store.reset_counts()
    with pytest.raises(ConfigurationError, match="no key that signs"):
        await KeyStore(store).retire(only, clock() - 3, after=LIFETIME, immediately=False)
    assert await stored(store) == before
    assert store.requests.get("put", 0) == 0
    assert await keyed(store, clock).published_keys()  # a new process still starts


async def test_retire_never_leaves_only_keys_that_retire() -> None:
    clock = Clock()
    store = ObjectStore.from_url("memory://")
    service = keyed(store, clock)
    first = (await service.published_keys()).entries[0].kid
    admin = KeyStore(store)
    second = await admin.rotate("ES256", clock(), 0)  # signs at once: the first stops
    await admin.retire(first, clock() + 1, after=LIFETIME, immediately=False)  # retires later
    with pytest.raises(ConfigurationError, match="no key that signs"):  # a clock behind
        await admin.retire(second.kid, clock() - 3, after=LIFETIME, immediately=False)
    assert [k.kid for k in await stored(store)] == [first, second.kid]


@pytest.mark.parametrize("delay", [PUBLISH, 0])
async def test_rotate_repairs_an_empty_key_set(delay: int) -> None:
    """Whatever the delay asked for, the key added to a set with no key that signs signs at
    once: there is no signing key to go on with meanwhile."""
    clock = Clock()
    store = ObjectStore.from_url("memory://")
    await store.create(layout.SIGNING_KEYS, StoredKeySet(keys=[]))
    with pytest.raises(ConfigurationError):
        await keyed(store, clock).published_keys()
    new = await KeyStore(store).rotate("ES256", clock(), delay)
    assert new.activates_at == clock()
    service = keyed(store, clock)
    assert [e.kid for e in (await service.published_keys()).entries] == [new.kid]
    token = (await service.create_token_pair(user_record("alice"))).access_token
    assert service.verify_access_token(token)["sub"]
