"""A stored key set that does not open: each record of keys/signing.json is judged before
it is used, and a bad one is a ConfigurationError, never another exception.

A process that has keys keeps verifying and signing with them (the error is logged) and
reads the store again only an interval later; a process that has none answers what needs
them with KeysUnavailableError (503), the ConfigurationError its cause.
Records are written straight into the store, as whoever can write it would.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from support import (
    Clock,
    StoreWrapper,
    call_http,
    http_scope,
    make_clocked_service,
    ok_app,
    run_lifespan,
    stored_user,
)
from test_key_sync import SYNC, keyed

from s3auth_asgi import (
    BearerTokenMiddleware,
    BlacklistMiddleware,
    ConfigurationError,
    InvalidTokenError,
    S3AuthService,
    StoreUnavailableError,
)
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.keys.algorithms import generate_key
from s3auth_asgi.keys.material import private_jwk, thumbprint
from s3auth_asgi.keys.remote import JwksVerifier, KeysUnavailableError
from s3auth_asgi.keys.stored import KeyStore, StoredKey, StoredKeySet
from s3auth_asgi.storage import ObjectStore
from s3auth_asgi.storage import keys as layout

pytestmark = pytest.mark.anyio


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


async def without_keys(service: S3AuthService) -> ConfigurationError:
    """The reason `service`, which has no keys, cannot publish them: a 503 that names none,
    caused by the ConfigurationError."""
    with pytest.raises(KeysUnavailableError) as refused:
        await service.published_keys()
    assert str(refused.value) == KeysUnavailableError.title
    cause = refused.value.__cause__
    assert isinstance(cause, ConfigurationError)
    return cause


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
    token = (await service.create_token_pair(await stored_user(service, "alice"))).access_token
    await write_keys(store, [*await stored(store), record(alg)])
    with pytest.raises(ConfigurationError, match=f"for {alg!r}"):
        KeyStore(store).key_set(StoredKeySet(keys=await stored(store)))
    clock.advance(2 * SYNC + 1)  # overdue: the next request waits for a read
    await service.ensure_fresh()  # the read fails, is logged; the keys read before serve
    assert service.verify_access_token(token)["sub"]
    await service.create_token_pair(await stored_user(service, "alice"))
    assert f"for {alg!r}" in str(await without_keys(keyed(store, clock)))  # one with none


async def test_a_stored_key_set_that_does_not_open_is_read_once_an_interval() -> None:
    clock = Clock()
    store = ObjectStore.from_url("memory://")
    service = keyed(store, clock)
    await service.published_keys()
    token = (await service.create_token_pair(await stored_user(service, "alice"))).access_token
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
    assert "HS256" in str(await without_keys(keyed(store, Clock())))


@pytest.mark.parametrize(
    "kid", ["../../etc/passwd", "\x1b]0;owned\x07\x1b[2J", "", "another-key's-kid"]
)
async def test_a_stored_kid_must_be_the_keys_thumbprint(kid: str) -> None:
    store = ObjectStore.from_url("memory://")
    await write_keys(store, [record("ES256", kid=kid)])
    reason = str(await without_keys(keyed(store, Clock())))
    assert "thumbprint" in reason
    assert kid not in reason or not kid  # never echoed: it may be anything


KID = "\x1b]0;owned\x07../../etc/passwd"


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"jwk": None}, "no key material"),
        ({"jwk": None, "sealed": "s3auth-sealed-v1.AAAA.AAAA"}, "does not open"),
        ({"jwk": None, "sealed": "not sealed at all"}, "does not open"),
    ],
    ids=["no material", "sealed with another key", "not sealed"],
)
async def test_a_record_refused_before_its_kid_is_checked_never_echoes_it(
    fields: dict[str, Any], said: str
) -> None:
    # The kid is judged against the key's thumbprint only once the key is read: a record
    # refused before then has a kid that may be anything, so the reason does not repeat it.
    store = ObjectStore.from_url("memory://")
    await write_keys(store, [record("ES256", kid=KID, **fields)])
    service = make_clocked_service(
        store=store, clock=Clock(), algorithm="ES256", key_encryption_key=secrets.token_urlsafe(48)
    )
    reason = str(await without_keys(service))
    assert said in reason
    assert "owned" not in reason and "passwd" not in reason


async def test_records_as_the_service_writes_them_open() -> None:
    """The controls: the thumbprint rule holds for every key the service makes, sealed or
    not, of every algorithm."""
    for algorithm in ("ES256", "EdDSA", "Ed25519", "RS256"):
        store = ObjectStore.from_url("memory://")
        await write_keys(store, [record(algorithm, algorithm)])
        assert len(await keyed(store, Clock(), algorithm).published_keys()) == 1
    sealed = make_clocked_service(algorithm="ES256", key_encryption_key=secrets.token_urlsafe(48))
    assert len(await sealed.published_keys()) == 1


# Answered without keys -----------------------------------------------------------------------


async def test_a_process_whose_keys_do_not_open_answers_503_keys_unavailable() -> None:
    """Started with no lifespan to read the keys ahead, a process whose stored key set does
    not open (sealed with another key-encryption key) answers every request that needs the
    keys as it answers a store it cannot read: 503 `keys_unavailable`, never a 500. The
    reason is logged once, naming the variable, never the key-encryption key."""
    clock, store = Clock(), ObjectStore.from_url("memory://")
    sealed_with, other = secrets.token_urlsafe(48), secrets.token_urlsafe(48)
    issuer = keyed(store, clock, key_encryption_key=sealed_with)
    token = (await issuer.create_token_pair(await stored_user(issuer, "alice"))).access_token
    service = keyed(store, clock, key_encryption_key=other)
    bearer = [(b"authorization", f"Bearer {token}".encode())]
    middleware = BearerTokenMiddleware(ok_app, service)
    app = Starlette(routes=[Mount("/auth", app=create_auth_app(service, rate_limit=False))])
    await service.create_user("bob", "bob@example.com", "Secret123!")  # needs no keys
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("s3auth_asgi").addHandler(handler)
    try:
        for _ in range(2):
            answer = await call_http(middleware, http_scope(headers=bearer))
            assert answer.status == 503, answer.body
            assert answer.json()["code"] == "keys_unavailable"
            assert answer.headers[b"retry-after"] == b"5"
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                me = await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
                jwks = await client.get("/auth/.well-known/jwks.json")
                form = {"username": "bob", "password": "Secret123!"}
                login = await client.post("/auth/login", data=form)
            for refused in (me, jwks, login):
                assert refused.status_code == 503, refused.text
                assert refused.json()["code"] == "keys_unavailable"
    finally:
        logging.getLogger("s3auth_asgi").removeHandler(handler)
    logged = [r.getMessage() for r in records if r.levelno >= logging.ERROR]
    assert len(logged) == 1, logged
    assert "S3AUTH_KEY_ENCRYPTION_KEY" in logged[0]
    assert all(other not in r.getMessage() and sealed_with not in r.getMessage() for r in records)


async def test_without_the_key_encryption_key_a_reader_learns_kids_and_times_only(
    tmp_path: Path,
) -> None:
    """A sealed record holds the kid, algorithm and times beside the sealed private part,
    and no public part: a service given the store but not the key-encryption key has no
    key to verify with, so it answers 503 `keys_unavailable`, as with a wrong one. What
    verifies without being able to sign is a JwksVerifier, from the published JWKS."""
    clock, store = Clock(), ObjectStore.from_url("memory://")
    issuer = keyed(store, clock, key_encryption_key=secrets.token_urlsafe(48))
    token = (await issuer.create_token_pair(await stored_user(issuer, "alice"))).access_token
    found = await store.get(layout.SIGNING_KEYS, dict[str, list[dict[str, Any]]])
    assert found is not None
    (record,) = found.value["keys"]
    assert {name for name, value in record.items() if value is not None} == {
        "kid", "alg", "created_at", "activates_at", "sealed",
    }  # fmt: skip
    bearer = [(b"authorization", f"Bearer {token}".encode())]
    without = keyed(store, clock)  # the store, and no key-encryption key
    answer = await call_http(BearerTokenMiddleware(ok_app, without), http_scope(headers=bearer))
    assert answer.status == 503, answer.body
    assert answer.json()["code"] == "keys_unavailable"
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps((await issuer.published_keys()).jwks(clock())))
    verifier = JwksVerifier(jwks)
    answer = await call_http(BearerTokenMiddleware(ok_app, verifier), http_scope(headers=bearer))
    assert answer.status == 200, answer.body


class _Down(StoreWrapper):
    """A store every request reaches (counted) and fails at: one down since the start."""

    async def call(self, name: str, run: Any) -> Any:
        self.requests[name] += 1
        raise StoreUnavailableError(f"{name} failed")


@pytest.mark.parametrize("cause", ["a set that does not open", "a store that is down"])
async def test_verifying_without_keys_reads_them_once_an_interval(
    cause: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A process with no keys that cannot get any refuses every token it is asked to verify
    (`verify_access_token`, `decode_token`: they cannot wait for a read); each such call
    starts a read in the background, but not while one failed within the interval: one
    read and one line logged an interval, however many tokens come, as with keys to go on
    with."""
    clock, inner = Clock(), ObjectStore.from_url("memory://")
    issuer = keyed(inner, clock, key_encryption_key=secrets.token_urlsafe(48))
    token = (await issuer.create_token_pair(await stored_user(issuer, "alice"))).access_token
    store = inner if cause == "a set that does not open" else _Down(inner)
    service = keyed(store, clock, key_encryption_key=secrets.token_urlsafe(48))
    inner.reset_counts()
    caplog.set_level(logging.ERROR, "s3auth_asgi")
    for reads in (1, 2):
        for call in [service.verify_access_token, service.decode_token] * 10:
            with pytest.raises(InvalidTokenError):
                call(token)
            await background_reads(service)
            clock.advance(SYNC / 100)
        assert dict(inner.requests) == {"get": reads}
        failed = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(failed) == reads, failed
        assert all(m.startswith("signing keys sync failed") for m in failed)
        clock.advance(SYNC)  # the pause after the failed read is over: one read more


async def test_a_start_without_keys_logs_that_the_keys_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The lifespan's read at startup says which read failed: here the signing keys (whose
    set does not open), not the revocation snapshot, which was read; and never a key."""
    clock, store = Clock(), ObjectStore.from_url("memory://")
    sealed_with, other = secrets.token_urlsafe(48), secrets.token_urlsafe(48)
    await keyed(store, clock, key_encryption_key=sealed_with).published_keys()
    caplog.set_level(logging.WARNING, "s3auth_asgi")
    for starts in (
        lambda service: create_auth_app(service, rate_limit=False),
        lambda service: BlacklistMiddleware(Starlette(), service),
    ):
        caplog.clear()
        service = keyed(store, clock, key_encryption_key=other)
        sent = await run_lifespan(starts(service))
        assert sent[0]["type"] == "lifespan.startup.complete"
        assert service.blacklist.freshness.has_snapshot()
        at_startup = [r.getMessage() for r in caplog.records if "at startup" in r.getMessage()]
        assert len(at_startup) == 1 and at_startup[0].startswith("no signing keys at startup")
        assert all(other not in r.getMessage() for r in caplog.records)
