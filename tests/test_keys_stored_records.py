"""A stored key set that does not open: each record of keys/signing.json is judged before
it is used, and a bad one is a ConfigurationError, never another exception.

A process that has keys keeps verifying and signing with them (the error is logged) and
reads the store again only an interval later; a process that has none refuses to start.
Records are written straight into the store, as whoever can write it would.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest
from support import Clock, make_clocked_service, user_record

from s3auth_asgi import ConfigurationError, S3AuthService
from s3auth_asgi.keys.algorithms import generate_key
from s3auth_asgi.keys.material import private_jwk, thumbprint
from s3auth_asgi.keys.stored import KeyStore, StoredKey, StoredKeySet
from s3auth_asgi.storage import ObjectStore
from s3auth_asgi.storage import keys as layout

pytestmark = pytest.mark.anyio

SYNC = 60
PUBLISH = 500


def keyed(store: ObjectStore, clock: Clock, algorithm: str = "ES256") -> S3AuthService:
    return make_clocked_service(
        store=store,
        clock=clock,
        algorithm=algorithm,
        key_sync_seconds=SYNC,
        key_publish_seconds=PUBLISH,
    )


async def write_keys(store: ObjectStore, keys: list[StoredKey]) -> None:
    found = await store.get(layout.SIGNING_KEYS, StoredKeySet)
    if found is None:
        await store.create(layout.SIGNING_KEYS, StoredKeySet(keys=keys))
    else:
        await store.replace(layout.SIGNING_KEYS, StoredKeySet(keys=keys), found.etag)


async def stored(store: ObjectStore) -> list[StoredKey]:
    found = await KeyStore(store).read()
    assert found is not None
    return found[0].keys


def record(alg: str, key_alg: str = "ES256", **fields: Any) -> StoredKey:
    key = generate_key(key_alg)
    values: dict[str, Any] = {
        "kid": thumbprint(key),
        "alg": alg,
        "created_at": 0,
        "activates_at": 0,
        "jwk": private_jwk(key),
    }
    return StoredKey(**{**values, **fields})


async def background_reads(service: S3AuthService) -> None:
    ring = service.tokens.ring
    assert ring is not None and ring.freshness is not None
    if ring.freshness._background is not None:
        await asyncio.wait((ring.freshness._background,))


# An algorithm not known ----------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES384", "none", "", "es256"])
async def test_a_stored_key_of_an_unknown_algorithm_is_a_configuration_error(alg: str) -> None:
    clock = Clock()
    store = ObjectStore.from_url("memory://")
    service = keyed(store, clock)
    await service.published_keys()
    token = (await service.create_token_pair(user_record("alice"))).access_token
    await write_keys(store, [*await stored(store), record(alg)])
    with pytest.raises(ConfigurationError, match=f"for {alg!r}"):
        KeyStore(store).key_set(StoredKeySet(keys=await stored(store)))
    clock.advance(2 * SYNC + 1)  # overdue: the next request waits for a read
    await service.ensure_fresh()  # the read fails, is logged; the keys read before serve
    assert service.verify_access_token(token)["sub"]
    await service.create_token_pair(user_record("alice"))
    with pytest.raises(ConfigurationError):  # a process that has no keys does not start
        await keyed(store, clock).published_keys()


async def test_a_stored_key_set_that_does_not_open_is_read_once_an_interval() -> None:
    clock = Clock()
    store = ObjectStore.from_url("memory://")
    service = keyed(store, clock)
    await service.published_keys()
    token = (await service.create_token_pair(user_record("alice"))).access_token
    await write_keys(store, [*await stored(store), record("ES384")])
    clock.advance(SYNC + 1)  # stale: a verification starts a read in the background
    store.reset_counts()
    for _ in range(20):
        service.verify_access_token(token)
        await background_reads(service)
    assert store.requests["get"] == 1
    clock.advance(SYNC)  # the pause after the failed read is over: one read more
    for _ in range(20):
        service.verify_access_token(token)
        await background_reads(service)
    assert store.requests["get"] == 2


# What a record may hold ----------------------------------------------------------------------


async def test_a_stored_hmac_key_is_refused() -> None:
    """An HS256 record would make the service sign HMAC tokens with a key anyone reading
    the store knows, and publish an empty JWKS."""
    store = ObjectStore.from_url("memory://")
    secret = {"kty": "oct", "k": "a2" * 22}
    await write_keys(
        store, [StoredKey(kid="hs", alg="HS256", created_at=0, activates_at=0, jwk=secret)]
    )
    with pytest.raises(ConfigurationError, match="HS256"):
        await keyed(store, Clock()).published_keys()


@pytest.mark.parametrize(
    "kid", ["../../etc/passwd", "\x1b]0;owned\x07\x1b[2J", "", "another-key's-kid"]
)
async def test_a_stored_kid_must_be_the_keys_thumbprint(kid: str) -> None:
    store = ObjectStore.from_url("memory://")
    await write_keys(store, [record("ES256", kid=kid)])
    with pytest.raises(ConfigurationError, match="thumbprint") as refused:
        await keyed(store, Clock()).published_keys()
    assert kid not in str(refused.value) or not kid  # never echoed: it may be anything


async def test_records_as_the_service_writes_them_open() -> None:
    """The controls: the thumbprint rule holds for every key the service makes, sealed or
    not, of every algorithm."""
    for algorithm in ("ES256", "EdDSA", "Ed25519", "RS256"):
        store = ObjectStore.from_url("memory://")
        await write_keys(store, [record(algorithm, algorithm)])
        assert len(await keyed(store, Clock(), algorithm).published_keys()) == 1
    sealed = make_clocked_service(algorithm="ES256", key_encryption_key=secrets.token_urlsafe(48))
    assert len(await sealed.published_keys()) == 1
