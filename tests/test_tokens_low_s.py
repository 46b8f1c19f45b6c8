"""One spelling per token: an ES256 signature only in its low-S form.

An ECDSA signature (r, s) has a twin, (r, n - s), that verifies the same header and claims
under the same key, and anyone holding a token can write it without the key. Whatever
keys on a token's bytes rather than its claims then sees two tokens where one was issued:
here, the middleware's verified-token cache (a second entry, a second signature check);
elsewhere, whatever a host keys on the `Authorization` header. So tokens are signed with
s <= n/2, whichever way the key came (the store, a PEM or a JWK in the environment), and a
token whose s is above that is refused by every verifier: the issuing service, a
verify-only one and the middleware.

The other algorithms have no twin to refuse; guards here keep it so. Ed25519's S + L is
refused by the signature check itself, an HMAC is one value, and the signature segment is
read in its one canonical base64url spelling.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings
from cryptography.hazmat.primitives import serialization
from joserfc import jws
from support import Clock, bearer, call_http, http_scope, make_clocked_service, ok_app, stored_user

from s3auth_asgi import InvalidTokenError, JwksVerifier, S3AuthService
from s3auth_asgi.keys.algorithms import generate_key
from s3auth_asgi.keys.keyset import KeySet, entry_for
from s3auth_asgi.middleware.bearer import BearerTokenMiddleware
from s3auth_asgi.tokens import TokenCodec

pytestmark = pytest.mark.anyio

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
ED25519_ORDER = 2**252 + 27742317777372353535851937790883648493
ISSUED = 64
"""Tokens issued per check of their form: signed at random, all 64 would be low-S with a
chance of 2^-64."""


def signature_of(token: str) -> bytes:
    segment = token.rsplit(".", 1)[1]
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def with_signature(token: str, signature: bytes) -> str:
    signed_part = token.rsplit(".", 1)[0]
    return f"{signed_part}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def s_of(token: str) -> int:
    return int.from_bytes(signature_of(token)[32:], "big")


def twin(token: str) -> str:
    """The same ES256 token with its signature's other s: n - s, as anyone can write it."""
    signature = signature_of(token)
    assert len(signature) == 64
    other = P256_ORDER - int.from_bytes(signature[32:], "big")
    return with_signature(token, signature[:32] + other.to_bytes(32, "big"))


def es256_codec(**overrides: Any) -> TokenCodec:
    settings = make_settings(algorithm="ES256", **overrides)
    return TokenCodec(settings, keys=KeySet([entry_for("ES256", generate_key("ES256"))]))


def issue(codec: TokenCodec) -> str:
    token, _ = codec.issue_access_token(
        user_id="u" * 32, username="bob", session_id="s" * 32, is_admin=False, scopes=["read"]
    )
    return token


def refusal(verify: Any, token: str) -> InvalidTokenError:
    with pytest.raises(InvalidTokenError) as caught:
        verify(token)
    return caught.value


def pem_of(algorithm: str) -> str:
    private = generate_key(algorithm).private_key
    assert private is not None
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def es256_service(source: str, tmp_path: Path) -> S3AuthService:
    """A service signing ES256 with a key kept in the store, or given as S3AUTH_SIGNING_KEY
    in PEM or JWK text; it publishes its JWKS to a file."""
    if source == "pem":
        given: dict[str, Any] = {"signing_key": pem_of("ES256")}
    elif source == "jwk":
        jwk = generate_key("ES256").as_dict(private=True)
        given = {"signing_key": json.dumps({**jwk, "kid": "given", "use": "sig"})}
    else:
        given = {}
    return make_clocked_service(
        clock=Clock(),
        algorithm="ES256",
        jwks_publish_url=f"file://{tmp_path / 'jwks.json'}",
        **given,
    )


# Signing -------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["store", "pem", "jwk"])
async def test_every_es256_token_is_signed_low_s(source: str, tmp_path: Path) -> None:
    service = es256_service(source, tmp_path)
    tokens = [
        (await service.create_token_pair(await stored_user(service))).access_token
        for _ in range(ISSUED)
    ]
    high = [token for token in tokens if s_of(token) > P256_ORDER // 2]
    assert high == []
    for token in tokens:
        assert service.verify_access_token(token)["preferred_username"] == "alice"


# Verifying -----------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["store", "pem", "jwk"])
async def test_the_twin_of_an_issued_token_is_refused_by_every_verifier(
    source: str, tmp_path: Path
) -> None:
    service = es256_service(source, tmp_path)
    token = (await service.create_token_pair(await stored_user(service))).access_token
    verify_only = JwksVerifier(tmp_path / "jwks.json")
    await verify_only.load()
    for verify in (
        service.verify_access_token,
        service.decode_token,
        service.tokens.verify_access_token,
        verify_only.verify_access_token,
    ):
        assert verify(token)["preferred_username"] == "alice"
        assert "high_s" in str(refusal(verify, twin(token)))


def test_a_token_signed_with_the_key_elsewhere_verifies_in_its_low_s_form_only() -> None:
    """Another JOSE library signing with the key: its signature verifies as the low-S one
    of the pair, and its twin is refused, whichever of the two it wrote."""
    codec = es256_codec()
    entry = codec.key_set().signing_key(0)
    claims = json.loads(base64.urlsafe_b64decode(issue(codec).split(".")[1] + "=="))
    header = {"alg": "ES256", "typ": "at+jwt", "kid": entry.kid}
    written = jws.serialize_compact(header, json.dumps(claims), entry.key, algorithms=["ES256"])
    low, high = sorted((written, twin(written)), key=s_of)
    assert s_of(low) <= P256_ORDER // 2 < s_of(high)
    assert codec.verify_access_token(low)["sub"] == "u" * 32
    assert "high_s" in str(refusal(codec.verify_access_token, high))


def test_a_high_s_is_refused_before_its_signature_is_checked() -> None:
    """s above n/2 is refused as such, whatever r: it costs no ECDSA verification."""
    codec = es256_codec()
    token = issue(codec)
    forged = with_signature(token, b"\x01" * 32 + (P256_ORDER - 1).to_bytes(32, "big"))
    assert "high_s" in str(refusal(codec.verify_access_token, forged))
    wrong = with_signature(token, b"\x01" * 32 + (1).to_bytes(32, "big"))
    assert "bad_signature" in str(refusal(codec.verify_access_token, wrong))
    short = with_signature(token, signature_of(token)[:48])
    refusal(codec.verify_access_token, short)


class CountingCodec(TokenCodec):
    verified = 0

    def verify_access_token(self, token: object) -> dict[str, Any]:
        claims = super().verify_access_token(token)
        self.verified += 1
        return claims


async def test_the_twin_takes_no_second_place_in_the_verified_token_cache() -> None:
    """The middleware's cache keys on the token's bytes: a twin that verified would be a
    second entry for one token, and a second signature verification, so one token
    would count as two against the cache's bound, and alternating the two spellings
    would make every request verify its signature again. The twin is refused instead."""
    settings = make_settings(algorithm="ES256")
    codec = CountingCodec(settings, keys=KeySet([entry_for("ES256", generate_key("ES256"))]))
    token = issue(codec)
    app = BearerTokenMiddleware(ok_app, codec, cache_size=1)
    statuses = []
    for presented in (token, twin(token), token, twin(token)):
        response = await call_http(app, http_scope(headers=bearer(presented)))
        statuses.append(response.status)
    assert statuses == [200, 401, 200, 401]
    assert response.json()["code"] == "invalid_token"
    assert codec.verified == 1  # the token, from the cache after its first request
    assert len(app.cache) == 1 and token.encode() in app.cache


# The other algorithms: no twin to refuse ---------------------------------------------


def test_an_ed25519_signature_has_no_twin() -> None:
    """S + L (the group's order) is the other value an Ed25519 signature's S could take;
    the verification refuses it (RFC 8032 §5.1.7: S must be below L)."""
    settings = make_settings(algorithm="EdDSA")
    codec = TokenCodec(settings, keys=KeySet([entry_for("EdDSA", generate_key("EdDSA"))]))
    token = issue(codec)
    signature = signature_of(token)
    big = int.from_bytes(signature[32:], "little") + ED25519_ORDER
    other = with_signature(token, signature[:32] + big.to_bytes(32, "little"))
    assert codec.verify_access_token(token)
    assert "bad_signature" in str(refusal(codec.verify_access_token, other))


@pytest.mark.parametrize("algorithm", ["HS256", "ES256", "EdDSA"])
def test_the_signature_segment_has_one_spelling(algorithm: str) -> None:
    """A segment whose length leaves bits past the signature's end in its last character
    is read in its canonical spelling only: each other character there is refused."""
    if algorithm == "HS256":
        codec = TokenCodec(make_settings())
    else:
        settings = make_settings(algorithm=algorithm)
        codec = TokenCodec(settings, keys=KeySet([entry_for(algorithm, generate_key(algorithm))]))
    token = issue(codec)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    accepted = []
    for character in alphabet:
        spelt = token[:-1] + character
        try:
            codec.verify_access_token(spelt)
        except InvalidTokenError:
            continue
        accepted.append(spelt)
    assert accepted == [token]
