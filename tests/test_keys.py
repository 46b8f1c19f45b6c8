"""Signing keys: each algorithm end to end, keys from the environment and the store,
rotation by kid across instances, sealing, the JWKS endpoint, and algorithm confusion."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings
from cryptography.hazmat.primitives import serialization
from support import (
    Clock,
    StoreWrapper,
    asgi_client,
    bearer,
    call_http,
    http_scope,
    make_clocked_service,
    ok_app,
    stored_user,
)
from test_service import pretty_reprs

from s3auth_asgi import ConfigurationError, InvalidTokenError, S3AuthService
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.errors import UnknownSigningKeyError
from s3auth_asgi.keys.algorithms import check_key, generate_key, has_roca_fingerprint
from s3auth_asgi.keys.low_s import low_s_compact
from s3auth_asgi.keys.names import ASYMMETRIC_ALGORITHMS, UnusableKeyError
from s3auth_asgi.keys.remote import JwksVerifier, KeysUnavailableError
from s3auth_asgi.keys.stored import KeyStore, StoredKey
from s3auth_asgi.middleware.bearer import BearerTokenMiddleware
from s3auth_asgi.settings import new_secret_key
from s3auth_asgi.storage import ObjectStore
from s3auth_asgi.storage import keys as layout

pytestmark = pytest.mark.anyio

PUBLISH = 500  # S3AUTH_KEY_PUBLISH_SECONDS in these tests: > max-age 300 + twice sync 60
SYNC = 60


def keyed_service(
    algorithm: str, *, clock: Clock, store: ObjectStore | None = None, **overrides: Any
) -> S3AuthService:
    return make_clocked_service(
        clock=clock,
        store=store or ObjectStore.from_url("memory://"),
        algorithm=algorithm,
        key_publish_seconds=PUBLISH,
        key_sync_seconds=SYNC,
        **overrides,
    )


async def access_token(service: S3AuthService, username: str = "alice") -> str:
    return (await service.create_token_pair(await stored_user(service, username))).access_token


async def settle(service: S3AuthService) -> None:
    """A request's `ensure_fresh`, then the key read it started in the background (the
    request itself is answered from the keys already read)."""
    await service.ensure_fresh()
    ring = service.tokens.ring
    task = ring.freshness._background if ring and ring.freshness else None
    if task is not None:
        await task


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# Each algorithm ----------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ASYMMETRIC_ALGORITHMS)
async def test_each_algorithm_signs_with_a_published_key(algorithm: str) -> None:
    clock = Clock()
    service = keyed_service(algorithm, clock=clock)
    token = await access_token(service)
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] == algorithm and header["typ"] == "at+jwt"
    assert service.verify_access_token(token)["preferred_username"] == "alice"
    jwks = (await service.published_keys()).jwks(clock())
    assert [key["kid"] for key in jwks["keys"]] == [header["kid"]]
    assert not any(member in jwks["keys"][0] for member in ("d", "p", "q", "k"))
    assert jwks["keys"][0]["alg"] == algorithm and jwks["keys"][0]["use"] == "sig"
    # The kid is the RFC 7638 thumbprint of the public key.
    public = jwks["keys"][0]
    required = {
        "EC": ("crv", "kty", "x", "y"),
        "OKP": ("crv", "kty", "x"),
        "RSA": ("e", "kty", "n"),
    }
    members = {name: public[name] for name in required[public["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    assert header["kid"] == b64(hashlib.sha256(canonical).digest())


async def test_the_first_start_of_two_instances_leaves_one_key(store_url: str) -> None:
    """On every backend: two instances starting together on one store make one key set,
    and each verifies what the other signs."""
    clock = Clock()
    memory = ObjectStore.from_url(store_url)  # memory:// is one process's: share it

    def store() -> ObjectStore:
        return memory if store_url == "memory://" else ObjectStore.from_url(store_url)

    one, two = (keyed_service("ES256", clock=clock, store=store()) for _ in range(2))
    import anyio

    async with anyio.create_task_group() as group:
        group.start_soon(one.published_keys)
        group.start_soon(two.published_keys)
    kids = {tuple(k.kid for k in (await s.published_keys()).entries) for s in (one, two)}
    assert len(kids) == 1 and len(next(iter(kids))) == 1
    assert two.verify_access_token(await access_token(one))


async def test_hmac_publishes_nothing_and_reads_no_store() -> None:
    service = keyed_service("HS256", clock=Clock())
    await access_token(service)
    assert (await service.published_keys()).jwks(0) == {"keys": []}
    # The login's read of the user record alone (`session_opening`).
    assert service.store.requests["get"] == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(("algorithm", "length"), [("HS384", 48), ("HS512", 64)])
async def test_an_hmac_secret_shorter_than_the_hash_is_refused_at_start(
    algorithm: str, length: int
) -> None:
    # The secret itself is the HMAC key: it must be as long as the hash (RFC 7518, 3.2).
    secret = new_secret_key()
    with pytest.raises(ConfigurationError) as refused:
        keyed_service(algorithm, clock=Clock(), secret_key=secret[: length - 1])
    assert str(refused.value) == (
        f"S3AUTH_SECRET_KEY: {algorithm} needs a key of at least {length} bytes: the secret "
        f"key is the {algorithm} key (`s3auth gen-secret` makes one of 64)"
    )
    service = keyed_service(algorithm, clock=Clock(), secret_key=secret[:length])
    assert service.verify_access_token(await access_token(service))["preferred_username"]


# Rotation ----------------------------------------------------------------------------


async def test_rotation_publishes_first_signs_later_and_retires_after_the_last_token() -> None:
    clock = Clock()
    store = ObjectStore.from_url("memory://")
    issuer = keyed_service("ES256", clock=clock, store=store)
    verifier = keyed_service("ES256", clock=clock, store=store)
    old_token = await access_token(issuer)
    old_kid = (await issuer.published_keys()).signing_key(clock()).kid
    new = await KeyStore(store).rotate("ES256", clock(), PUBLISH)

    # Within one sync interval both instances publish the new key; neither signs with it.
    clock.advance(SYNC)
    for service in (issuer, verifier):
        await settle(service)
        published = [k["kid"] for k in (await service.published_keys()).jwks(clock())["keys"]]
        assert published == [old_kid, new.kid]
    assert _kid(await access_token(issuer)) == old_kid

    # Once it activates, it signs; tokens of the old key still verify everywhere.
    clock.advance(PUBLISH - SYNC)
    new_token = await access_token(issuer)
    assert _kid(new_token) == new.kid
    assert verifier.verify_access_token(new_token) and verifier.verify_access_token(old_token)

    # Retiring the old key waits for its last token: lifetime plus leeway after it stopped.
    settings = issuer.settings
    lifetime = settings.access_token_seconds + settings.leeway_seconds
    retire_at = await KeyStore(store).retire(
        old_kid, clock(), after=lifetime, immediately=False, undo_margin=0
    )
    assert retire_at == pytest.approx(new.activates_at + lifetime)
    clock.advance(lifetime - 1)
    await settle(verifier)
    assert verifier.verify_access_token(
        issuer.tokens.issue_access_token(
            user_id="u" * 22,
            username="bob",
            session_id="s" * 22,
            is_admin=False,
            scopes=[],
            key=(await verifier.published_keys()).get(old_kid, clock()),
        )[0]
    )
    clock.advance(1)
    with pytest.raises(UnknownSigningKeyError):
        verifier.verify_access_token(old_token)
    assert [k["kid"] for k in (await verifier.published_keys()).jwks(clock())["keys"]] == [new.kid]


async def test_a_cached_token_of_a_retired_key_is_refused_within_one_key_sync_interval() -> None:
    # A leaked key: rotated and retired at once on another instance. Its token, verified
    # and cached here before, is served from the cache no longer than the interval at
    # which this process reads its keys again; then it is verified again, and refused.
    clock = Clock()
    store = ObjectStore.from_url("memory://")
    service = keyed_service("ES256", clock=clock, store=store)
    operator = keyed_service("ES256", clock=clock, store=store)
    token = await access_token(service)
    app = BearerTokenMiddleware(ok_app, service.tokens)
    assert (await call_http(app, http_scope(headers=bearer(token)))).status == 200
    verified_at = clock()
    ring = operator.tokens.ring
    assert ring is not None and ring.stored is not None
    await ring.stored.rotate("ES256", clock(), 0)
    clock.advance(1)
    await ring.stored.retire(_kid(token), clock(), after=0, immediately=True, undo_margin=0)
    clock.advance(1)
    await service.tokens.ring.sync()  # type: ignore[union-attr]  # this process has read them
    store.reset_counts()

    clock.now = verified_at + SYNC - 0.001
    assert (await call_http(app, http_scope(headers=bearer(token)))).status == 200
    assert sum(store.requests.values()) == 0  # from the cache
    clock.now = verified_at + SYNC
    refused = await call_http(app, http_scope(headers=bearer(token)))
    assert refused.status == 401 and refused.json()["code"] == "invalid_token"
    assert len(app.cache) == 0


async def test_the_signing_key_cannot_be_retired_and_two_rotations_both_land() -> None:
    clock = Clock()
    store = ObjectStore.from_url("memory://")
    service = keyed_service("EdDSA", clock=clock, store=store)
    kid = (await service.published_keys()).signing_key(clock()).kid
    with pytest.raises(ConfigurationError, match="rotate first"):
        await KeyStore(store).retire(kid, clock(), after=0, immediately=True, undo_margin=0)
    import anyio

    async with anyio.create_task_group() as group:
        for _ in range(2):
            group.start_soon(KeyStore(store).rotate, "EdDSA", clock(), PUBLISH)
    found = await KeyStore(store).read()
    assert found is not None and len(found[0].keys) == 3


async def test_eight_rotations_at_once_all_land_though_their_reads_keep_colliding() -> None:
    """Eight administrators rotate at once, and every read's answer takes 20 ms to come
    back, so the eight read one version and only one write of each round can land."""
    import anyio

    class SlowAnswers(StoreWrapper):
        async def call(self, name: str, run: Any) -> Any:
            answer = await run()
            if name == "get":
                await anyio.sleep(0.02)
            return answer

    clock = Clock()
    inner = ObjectStore.from_url("memory://")
    first = await KeyStore(inner).read_or_create("ES256", clock())
    store = SlowAnswers(inner)
    rotated: list[StoredKey] = []

    async def rotate() -> None:
        rotated.append(await KeyStore(store).rotate("ES256", clock(), PUBLISH))

    async with anyio.create_task_group() as group:
        for _ in range(8):
            group.start_soon(rotate)
    found = await KeyStore(inner).read()
    assert found is not None
    kids = [key.kid for key in found[0].keys]
    assert len(kids) == 9
    assert set(kids) == {first.keys[0].kid, *(key.kid for key in rotated)}


async def test_a_token_naming_a_new_key_makes_the_ring_read_once_per_interval() -> None:
    clock = Clock()
    store = ObjectStore.from_url("memory://")
    issuer = keyed_service("ES256", clock=clock, store=store)
    verifier = keyed_service("ES256", clock=clock, store=store)
    await verifier.published_keys()
    # A key made active at once (as a key set made elsewhere could be) signs a token the
    # verifier has not seen the key of.
    new = await KeyStore(store).rotate("ES256", clock(), 0)
    await issuer.tokens.ring.sync()  # type: ignore[union-attr]
    token = await access_token(issuer)
    assert _kid(token) == new.kid
    with pytest.raises(UnknownSigningKeyError):
        verifier.verify_access_token(token)
    store.reset_counts()
    clock.advance(SYNC)
    assert await verifier.read_keys_again() is True
    assert verifier.verify_access_token(token)
    for _ in range(20):  # a flood of unknown kids: no more reads within the interval
        assert await verifier.read_keys_again() is False
    assert store.requests["get"] == 1
    clock.advance(SYNC)
    # Read again and found as it was: nothing to verify a second time.
    assert await verifier.read_keys_again() is False
    assert store.requests["get"] == 2


# Keys from the environment -----------------------------------------------------------


def _pem(algorithm: str) -> tuple[str, str]:
    key = generate_key(algorithm)
    private = key.private_key
    assert private is not None
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return pem, public


@pytest.mark.parametrize("algorithm", ["ES256", "Ed25519", "RS256"])
async def test_a_signing_key_from_the_environment_reads_no_store(
    algorithm: str, tmp_path: Path
) -> None:
    pem, _ = _pem(algorithm)
    file = tmp_path / "key.pem"
    file.write_text(pem)
    for given in ({"signing_key": pem}, {"signing_key_file": str(file)}):
        service = keyed_service(algorithm, clock=Clock(), **given)
        token = await access_token(service)
        assert service.verify_access_token(token)
        # The login's read of the user record alone (`session_opening`).
        assert service.store.requests["get"] == 1  # type: ignore[attr-defined]


async def test_verification_keys_from_a_file_verify_but_never_sign(tmp_path: Path) -> None:
    old_pem, old_public = _pem("ES256")
    new_pem, _ = _pem("RS256")
    old = keyed_service("ES256", clock=Clock(), signing_key=old_pem)
    old_token = await access_token(old)
    file = tmp_path / "verify.pem"
    file.write_text(old_public)
    new = keyed_service(
        "RS256", clock=Clock(), signing_key=new_pem, verification_keys_file=str(file)
    )
    assert new.verify_access_token(old_token)
    assert _header(await access_token(new))["alg"] == "RS256"
    assert len((await new.published_keys()).jwks(0)["keys"]) == 2


@pytest.mark.parametrize(
    "member",
    [{"kty": "EC", "crv": ["P-256"]}, {"kty": {"EC": "P-256"}}, {"kty": ["RSA"]}],
    ids=["crv a list", "kty an object", "kty a list"],
)
async def test_a_jwks_member_of_no_type_this_package_knows_is_skipped(
    tmp_path: Path, member: dict[str, Any]
) -> None:
    """A member whose `kty` or `crv` is not a string is a key of no type known here, and
    is skipped as an encryption key or a P-384 key is: the JWKS's other keys verify, from
    S3AUTH_VERIFICATION_KEYS_FILE and through a JwksVerifier alike."""
    old_pem, _ = _pem("ES256")
    old = keyed_service("ES256", clock=Clock(), signing_key=old_pem)
    old_token = await access_token(old)
    jwks = (await old.published_keys()).jwks(0)
    file = tmp_path / "keys.json"
    file.write_text(json.dumps({"keys": [{**member, "kid": "foreign"}, *jwks["keys"]]}))
    new = keyed_service(
        "ES256", clock=Clock(), signing_key=_pem("ES256")[0], verification_keys_file=str(file)
    )
    assert new.verify_access_token(old_token)["sub"]
    verifier = JwksVerifier(file)
    await verifier.load()
    assert verifier.verify_access_token(old_token)["sub"]


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        (
            {"signing_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"},
            "S3AUTH_SIGNING_KEY",
        ),
        ({"signing_key": '{"kty": "EC", "crv": "P-384"}'}, "S3AUTH_SIGNING_KEY"),
        ({"signing_key_file": "/nonexistent/key.pem"}, "S3AUTH_SIGNING_KEY_FILE"),
        ({"verification_keys_file": "/nonexistent/keys.pem"}, "S3AUTH_VERIFICATION_KEYS_FILE"),
    ],
)
def test_a_bad_key_is_one_configuration_error_naming_the_variable(
    overrides: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        keyed_service("ES256", clock=Clock(), **overrides)
    assert variable in str(info.value)
    assert "AAAA" not in str(info.value)


@pytest.mark.parametrize(
    ("field", "variable"),
    [
        ("signing_key_file", "S3AUTH_SIGNING_KEY_FILE"),
        ("verification_keys_file", "S3AUTH_VERIFICATION_KEYS_FILE"),
    ],
)
def test_a_key_file_that_cannot_be_used_is_named_once_with_the_reason(
    field: str, variable: str, tmp_path: Path
) -> None:
    signing, _ = _pem("ES256")
    given = {} if field == "signing_key_file" else {"signing_key": signing}
    large = tmp_path / "large.pem"
    large.write_text("-" * 16385)
    for path, reason in (
        (tmp_path / "missing.pem", "the file could not be read (FileNotFoundError)"),
        (tmp_path, f"{tmp_path} is a directory, not a key file"),
        (large, "the file is too large for a key"),
    ):
        with pytest.raises(ConfigurationError) as info:
            keyed_service("ES256", clock=Clock(), **given, **{field: str(path)})
        assert str(info.value) == f"{variable}: {reason}"


def test_a_public_key_cannot_sign_and_a_wrong_type_is_named() -> None:
    _, public = _pem("ES256")
    with pytest.raises(ConfigurationError, match="S3AUTH_SIGNING_KEY: a public key cannot sign"):
        keyed_service("ES256", clock=Clock(), signing_key=public)
    rsa_pem, _ = _pem("RS256")
    with pytest.raises(ConfigurationError, match="S3AUTH_SIGNING_KEY: the key is not a valid EC"):
        keyed_service("ES256", clock=Clock(), signing_key=rsa_pem)


# Sealing -----------------------------------------------------------------------------


def test_a_stored_private_key_shows_in_no_rendering() -> None:
    """A key stored before an encryption key was set holds its private part in clear."""
    key = StoredKey(
        kid="k1", alg="ES256", created_at=0, activates_at=0, jwk={"kty": "EC", "d": "PRIVATE"}
    )
    for text in (repr(key), str(key), *pretty_reprs(key)):
        assert "jwk=<hidden>" in text and "PRIVATE" not in text, text


async def test_stored_keys_are_sealed_with_the_key_encryption_key() -> None:
    store = ObjectStore.from_url("memory://")
    kek = "key-encryption-key-that-is-long-enough-0123456789"
    service = keyed_service("ES256", clock=Clock(), store=store, key_encryption_key=kek)
    token = await access_token(service)
    raw = json.dumps(json.loads(_read_raw(store)))
    assert '"d"' not in raw and '"sealed": "s1.' in raw
    again = keyed_service("ES256", clock=Clock(), store=store, key_encryption_key=kek)
    await again.published_keys()
    assert again.verify_access_token(token)
    for other in ("", "another-key-encryption-key-long-enough-98765"):
        wrong = keyed_service("ES256", clock=Clock(), store=store, key_encryption_key=other)
        with pytest.raises(KeysUnavailableError) as refused:  # a 503 naming no setting
            await wrong.published_keys()
        assert isinstance(refused.value.__cause__, ConfigurationError)
        assert "S3AUTH_KEY_ENCRYPTION_KEY" in str(refused.value.__cause__)


async def test_a_key_stored_before_the_encryption_key_is_reported_until_retired(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, clock = ObjectStore.from_url("memory://"), Clock()
    await keyed_service("ES256", clock=clock, store=store).published_keys()
    (clear,) = json.loads(_read_raw(store))["keys"]
    kek = "key-encryption-key-that-is-long-enough-0123456789"

    caplog.set_level(logging.WARNING, "s3auth_asgi.keys")
    service = keyed_service("ES256", clock=clock, store=store, key_encryption_key=kek)
    await access_token(service)
    ring = service.tokens.ring
    assert ring is not None
    await ring.sync()  # a second read of the keys: no second warning
    assert [r.getMessage() for r in caplog.records if r.name == "s3auth_asgi.keys"] == [
        f"the stored signing key {clear['kid']} is not sealed, though "
        "S3AUTH_KEY_ENCRYPTION_KEY is set: its private part is in clear in the store. Rotate "
        "(`s3auth keys rotate`), and retire it once its last token has expired"
    ]
    assert clear["jwk"]["d"] not in caplog.text

    # What the warning says to do leaves no private part in clear.
    keys = KeyStore(store, encryption_key=kek)
    new = await keys.rotate("ES256", clock(), PUBLISH)
    clock.advance(PUBLISH + 1800 + 5)
    await keys.retire(clear["kid"], clock(), after=1800 + 5, immediately=False, undo_margin=0)
    assert [k["kid"] for k in json.loads(_read_raw(store))["keys"]] == [new.kid]
    assert b'"d"' not in _read_raw(store)
    caplog.clear()
    await access_token(keyed_service("ES256", clock=clock, store=store, key_encryption_key=kek))
    assert caplog.records == []


def _read_raw(store: ObjectStore) -> bytes:
    import obstore

    return bytes(obstore.get(store._inner, layout.SIGNING_KEYS).bytes())


# Judging keys ------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Key size should be")
def test_weak_keys_are_refused() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from joserfc.jwk import ECKey, OctKey, RSAKey

    with pytest.raises(UnusableKeyError, match="at least 2048 bits"):
        weak = rsa.generate_private_key(65537, 1024)  # noqa: S505 - to be refused
        check_key("RS256", RSAKey.import_key(weak))
    with pytest.raises(UnusableKeyError, match="P-256"):
        check_key("ES256", ECKey.import_key(ec.generate_private_key(ec.SECP384R1())))
    with pytest.raises(UnusableKeyError, match="at least 32 bytes"):
        check_key("HS256", OctKey.import_key(b"x" * 31))
    check_key("RS256", generate_key("RS256"))
    # A random modulus has no ROCA fingerprint; a product of ROCA-form primes has.
    assert not has_roca_fingerprint(generate_key("RS256").public_key.public_numbers().n)


# The JWKS endpoint -------------------------------------------------------------------


async def test_the_jwks_endpoint_is_cacheable_with_an_etag() -> None:
    clock = Clock()
    service = keyed_service("ES256", clock=clock)
    async with asgi_client(create_auth_app(service)) as client:
        first = await client.get("/.well-known/jwks.json")
        assert first.status_code == 200
        assert first.headers["cache-control"] == "public, max-age=300"
        etag = first.headers["etag"]
        assert len(first.json()["keys"]) == 1
        again = await client.get("/.well-known/jwks.json", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        await KeyStore(service.store).rotate("ES256", clock(), PUBLISH)
        clock.advance(SYNC)
        await settle(service)
        changed = await client.get("/.well-known/jwks.json", headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["etag"] != etag
        assert len(changed.json()["keys"]) == 2


async def test_the_jwks_is_published_to_a_file(tmp_path: Path) -> None:
    target = tmp_path / "www" / ".well-known" / "jwks.json"
    service = keyed_service("EdDSA", clock=Clock(), jwks_publish_url=f"file://{target}")
    keys = await service.published_keys()
    assert json.loads(target.read_text()) == keys.jwks(0)
    assert target.stat().st_mode & 0o777 == 0o644


async def test_keys_from_the_environment_are_published_too(tmp_path: Path) -> None:
    pem, _ = _pem("ES256")
    target = tmp_path / "jwks.json"
    service = keyed_service(
        "ES256", clock=Clock(), signing_key=pem, jwks_publish_url=f"file://{target}"
    )
    assert not target.exists()
    await access_token(service)  # a login's first signing
    keys = await service.published_keys()
    assert json.loads(target.read_text()) == keys.jwks(0)
    target.unlink()
    await service.ensure_fresh()  # once: the keys cannot change without a restart
    assert not target.exists()


# Algorithm confusion -----------------------------------------------------------------


def _forge_hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    signing_input = (
        b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    ).encode()
    mac = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return signing_input.decode() + "." + b64(mac)


@pytest.mark.parametrize("algorithm", ASYMMETRIC_ALGORITHMS)
async def test_hs256_keyed_with_the_public_key_is_refused_in_every_form(algorithm: str) -> None:
    clock = Clock()
    service = keyed_service(algorithm, clock=clock)
    genuine = await access_token(service)
    claims = json.loads(base64.urlsafe_b64decode(genuine.split(".")[1] + "=="))
    entry = (await service.published_keys()).signing_key(clock())
    public = entry.key.public_key
    forms = [
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH),
        json.dumps(entry.public_jwk()).encode(),
    ]
    for form in forms:
        for alg in ("HS256", "HS384", "HS512", "none"):
            header = {"alg": alg, "typ": "at+jwt", "kid": entry.kid}
            with pytest.raises(InvalidTokenError, match="does not match its key"):
                service.verify_access_token(_forge_hs256(header, claims, form))


async def test_key_location_headers_are_never_used() -> None:
    """A token signed by the attacker's own key, which it embeds (`jwk`) or points at
    (`jku`, `x5u`, `x5c`), under the genuine kid: refused on its signature."""
    from joserfc import jws

    clock = Clock()
    service = keyed_service("ES256", clock=clock)
    genuine = await access_token(service)
    payload = base64.urlsafe_b64decode(genuine.split(".")[1] + "==")
    kid = _kid(genuine)
    theirs = generate_key("ES256")
    for extra in (
        {"jwk": theirs.as_dict(private=False)},
        {"jku": "http://127.0.0.1:9/jwks.json"},
        {"x5u": "http://127.0.0.1:9/cert.pem"},
        {"x5c": ["MIIB"]},
    ):
        header = {"alg": "ES256", "typ": "at+jwt", "kid": kid, **extra}
        forged = jws.serialize_compact(header, payload, theirs, algorithms=["ES256"])
        # In its low-S form, so that only the signature itself can refuse it.
        forged = low_s_compact(forged)
        with pytest.raises(InvalidTokenError, match="bad_signature"):
            service.verify_access_token(forged)


def _header(token: str) -> dict[str, Any]:
    header: dict[str, Any] = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    return header


def _kid(token: str) -> str:
    return str(_header(token)["kid"])


def test_settings_refuse_a_publish_delay_shorter_than_what_verifiers_cache() -> None:
    with pytest.raises(ConfigurationError, match="S3AUTH_KEY_PUBLISH_SECONDS"):
        make_settings(algorithm="ES256", key_publish_seconds=300, jwks_max_age_seconds=300)
    # A process answers the JWKS from a key snapshot up to two sync intervals old, and a
    # verifier keeps what it was answered for max-age: the delay must outlast both.
    # A stored key activates on the rotating host's clock, which a signing host's may be
    # ahead of by the skew allowance: the delay must outlast that too.
    times = {"jwks_max_age_seconds": 300, "key_sync_seconds": 60, "revocation_skew_seconds": 10}
    refused = "twice S3AUTH_KEY_SYNC_SECONDS plus S3AUTH_REVOCATION_SKEW_SECONDS"
    with pytest.raises(ConfigurationError, match=refused):
        make_settings(algorithm="ES256", key_publish_seconds=300 + 2 * 60 + 10, **times)
    assert make_settings(algorithm="ES256", key_publish_seconds=300 + 2 * 60 + 10 + 1, **times)
    # A key from the environment has no activation time: no clock decides when it signs.
    key = {"algorithm": "ES256", "signing_key": "-", "key_publish_seconds": 300 + 2 * 60 + 1}
    assert make_settings(**key, **times)
    with pytest.raises(ConfigurationError, match="twice S3AUTH_KEY_SYNC_SECONDS: "):
        make_settings(**{**key, "key_publish_seconds": 300 + 2 * 60}, **times)


async def test_the_openapi_document_declares_the_cache_headers_and_304() -> None:
    service = keyed_service("ES256", clock=Clock())
    async with asgi_client(create_auth_app(service)) as client:
        document = (await client.get("/openapi.json")).json()
    operation = document["paths"]["/.well-known/jwks.json"]["get"]
    assert set(operation["responses"]["200"]["headers"]) == {"Cache-Control", "ETag", "Vary"}
    assert "304" in operation["responses"] and "503" in operation["responses"]
    assert [p["name"] for p in operation["parameters"]] == ["If-None-Match"]
