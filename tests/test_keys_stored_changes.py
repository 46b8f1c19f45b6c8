"""`rotate` and `retire` on the stored key set never leave it without a key that signs or
will: every process starting on such a set would refuse to, and nothing could repair it
but a hand-written object. `rotate` repairs a set emptied some other way."""

from __future__ import annotations

import pytest
from support import Clock, stored_user
from test_key_sync import PUBLISH, SYNC, keyed

from s3auth_asgi import ConfigurationError
from s3auth_asgi.errors import UnknownSigningKeyError
from s3auth_asgi.keys.remote import KeysUnavailableError
from s3auth_asgi.keys.stored import KeyStore, StoredKey, StoredKeySet
from s3auth_asgi.storage import ObjectStore
from s3auth_asgi.storage import keys as layout

pytestmark = pytest.mark.anyio

LIFETIME = 1805


async def stored(store: ObjectStore) -> list[StoredKey]:
    found = await KeyStore(store).read()
    assert found is not None
    return found[0].keys


async def test_retire_never_empties_the_key_set() -> None:
    """The operator's clock further behind the host that made the first key than the skew
    allowance (10 s): that key looks as if it never signed, and retiring it would leave no
    key at all."""
    clock = Clock()
    store = ObjectStore.from_url("memory://")
    only = (await keyed(store, clock).published_keys()).entries[0].kid
    before = await stored(store)
    store.reset_counts()
    with pytest.raises(ConfigurationError, match="no key that signs"):
        await KeyStore(store).retire(
            only, clock() - 13, after=LIFETIME, immediately=False, undo_margin=0
        )
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
    await admin.retire(
        first, clock() + 1, after=LIFETIME, immediately=False, undo_margin=0
    )  # retires later
    with pytest.raises(ConfigurationError, match="no key that signs"):  # a clock behind
        await admin.retire(
            second.kid, clock() - 3, after=LIFETIME, immediately=False, undo_margin=0
        )
    assert [k.kid for k in await stored(store)] == [first, second.kid]


@pytest.mark.parametrize("delay", [PUBLISH, 0])
async def test_rotate_repairs_an_empty_key_set(delay: int) -> None:
    """Whatever the delay asked for, the key added to a set with no key that signs signs at
    once: there is no signing key to go on with meanwhile."""
    clock = Clock()
    store = ObjectStore.from_url("memory://")
    await store.create(layout.SIGNING_KEYS, StoredKeySet(keys=[]))
    with pytest.raises(KeysUnavailableError) as refused:
        await keyed(store, clock).published_keys()
    assert isinstance(refused.value.__cause__, ConfigurationError)
    new = await KeyStore(store).rotate("ES256", clock(), delay)
    assert new.activates_at == clock()
    service = keyed(store, clock)
    assert [e.kid for e in (await service.published_keys()).entries] == [new.kid]
    token = (await service.create_token_pair(await stored_user(service, "alice"))).access_token
    assert service.verify_access_token(token)["sub"]


# Undoing a rotation ----------------------------------------------------------------------------

SKEW = 10  # S3AUTH_REVOCATION_SKEW_SECONDS's default: how far apart hosts' clocks may be
MARGIN = 2 * SYNC + SKEW


async def test_a_rotation_is_not_undone_once_a_process_may_sign_with_its_key() -> None:
    """Undone (`retire` of a key that has not signed) within the margin of its activation,
    a process that read the key before the undo would sign with it once it activates, until
    its next read: tokens no other process can verify, with a key the store no longer
    holds. Refused there; the key stays, and every process signs with it."""
    clock = Clock()
    store = ObjectStore.from_url("memory://")
    signer, verifier = keyed(store, clock), keyed(store, clock)
    await signer.published_keys()
    admin = KeyStore(store)
    new = await admin.rotate("ES256", clock(), PUBLISH)
    clock.advance(PUBLISH - 20)
    await signer.tokens.ring.sync()  # its periodic read: the new key is there
    clock.advance(10)
    with pytest.raises(ConfigurationError, match="too late to undo"):
        await admin.retire(new.kid, clock(), after=LIFETIME, immediately=False, undo_margin=MARGIN)
    await verifier.tokens.ring.sync()
    clock.advance(11)  # the new key's activation has passed
    token = (await signer.create_token_pair(await stored_user(signer, "alice"))).access_token
    assert verifier.verify_access_token(token)["sub"]
    assert new.kid in [k.kid for k in await stored(store)]


async def test_a_rotation_is_undone_at_once_before_the_margin_and_when_the_key_leaked() -> None:
    clock = Clock()
    store = ObjectStore.from_url("memory://")
    await keyed(store, clock).published_keys()
    admin = KeyStore(store)
    early = await admin.rotate("ES256", clock(), PUBLISH)
    now = early.activates_at - MARGIN - 1  # just before the margin: no process signs yet
    assert (
        await admin.retire(early.kid, now, after=LIFETIME, immediately=False, undo_margin=MARGIN)
        == now
    )
    late = await admin.rotate("ES256", clock(), PUBLISH)
    now = late.activates_at - 1  # inside it, but leaked: it goes at once all the same
    assert (
        await admin.retire(late.kid, now, after=LIFETIME, immediately=True, undo_margin=MARGIN)
        == now
    )
    assert early.kid not in [k.kid for k in await stored(store)]
    assert late.kid not in [k.kid for k in await stored(store)]


# A rotation made at once ---------------------------------------------------------------


async def test_a_rotation_made_at_once_withdraws_the_rotations_still_pending() -> None:
    """A rotation still pending when `keys/signing.json` leaked leaked with it: the key
    added at once must keep signing on every process past that key's activation, and the
    pending key must neither take over nor verify anywhere."""
    clock = Clock()
    store = ObjectStore.from_url("memory://")
    auth, api = keyed(store, clock), keyed(store, clock)
    leaked = (await auth.published_keys()).signing_key(clock()).kid
    admin = KeyStore(store)
    pending = await admin.rotate("ES256", clock(), PUBLISH)
    for service in (auth, api):
        await service.tokens.ring.sync()  # type: ignore[union-attr]  # both hold it
    held = (await auth.published_keys()).get(pending.kid, clock())
    assert held is not None
    clock.advance(10)
    store.reset_counts()
    new = await admin.rotate("ES256", clock(), 0)
    assert dict(store.requests) == {"get": 1, "put": 1}
    assert [k.kid for k in await stored(store)] == [leaked, new.kid]

    clock.advance(PUBLISH)  # past the pending key's activation
    for service in (auth, api):
        await service.tokens.ring.sync()  # type: ignore[union-attr]
        published = [k["kid"] for k in (await service.published_keys()).jwks(clock())["keys"]]
        assert published == [leaked, new.kid]
    token = (await auth.create_token_pair(await stored_user(auth, "alice"))).access_token
    assert (await api.published_keys()).signing_key(clock()).kid == new.kid
    assert api.verify_access_token(token)["sub"]
    forged = auth.tokens.issue_access_token(
        user_id="u" * 22,
        username="root",
        session_id="s" * 22,
        is_admin=True,
        scopes=[],
        key=held,
    )[0]
    with pytest.raises(UnknownSigningKeyError):
        api.verify_access_token(forged)


async def test_a_rotation_with_the_publish_delay_keeps_the_rotations_pending() -> None:
    clock = Clock()
    store = ObjectStore.from_url("memory://")
    await keyed(store, clock).published_keys()
    admin = KeyStore(store)
    first = await admin.rotate("ES256", clock(), PUBLISH)
    clock.advance(10)
    second = await admin.rotate("ES256", clock(), PUBLISH)
    assert [k.kid for k in await stored(store)][1:] == [first.kid, second.kid]
