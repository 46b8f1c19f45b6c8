"""Every access token this package issues fits in MAX_TOKEN_BYTES, what every verifier reads:
the worst case of each part at once (`token_budget`), signed by the largest signature a
signing key may make, is verified; and each part beyond its bound is refused where it is
given."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Mapping
from typing import Any

import anyio
import msgspec
import pytest
from conftest import make_settings
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc.jwk import ECKey, RSAKey

from s3auth_asgi import ConfigurationError, S3ValidationError
from s3auth_asgi.auth_methods import AMR_VALUES, checked_methods
from s3auth_asgi.hooks import MAX_CLAIMS_BYTES, Hooks
from s3auth_asgi.identifiers import SCOPE_MAX, clean_scopes, clean_username, new_id
from s3auth_asgi.jose_json import base64url_decode
from s3auth_asgi.keys.keyset import KeyEntry, KeySet
from s3auth_asgi.keys.names import UnusableKeyError
from s3auth_asgi.models import User
from s3auth_asgi.settings_ranges import RANGES
from s3auth_asgi.token_budget import (
    CLAIM_TEXT_MAX_BYTES,
    KID_MAX,
    SCOPES_MAX_BYTES,
    SIGNING_RSA_MAX_BITS,
    access_token_length,
    check_signing_key,
    token_json_bytes,
)
from s3auth_asgi.tokens import TokenCodec
from s3auth_asgi.verifier import MAX_TOKEN_BYTES

WIDE = "\U00020000"
"""A letter of four bytes in UTF-8 that NFKC keeps: the widest a name or a scope can be."""


def widest_scopes() -> list[str]:
    """Scopes at the byte bound, as wide as each may be: four-byte characters, and quotes,
    which JSON doubles."""
    scopes: list[str] = []
    used = -1  # no space before the first
    index = 0
    while True:
        left = SCOPES_MAX_BYTES - used - 1
        if left < 4:
            break
        mark = chr(0x4E00 + index)  # three bytes, unique
        index += 1
        room = min(left - 3, 4 * (SCOPE_MAX - 3))
        body = WIDE * (room // 4) + '"' * (room % 4 // 2) + "x" * (room % 4 % 2)
        scope = mark + body
        scopes.append(scope)
        used += 1 + token_json_bytes(scope) - 2
    return scopes


def test_the_largest_token_fits_and_is_verified() -> None:
    key = RSAKey.import_key(rsa.generate_private_key(65537, SIGNING_RSA_MAX_BITS))
    kid = '"' * KID_MAX  # escaped in the header: twice as long
    jwk = {**key.as_dict(private=True), "kid": kid}
    wide_text = WIDE * (CLAIM_TEXT_MAX_BYTES // 4)
    most = RANGES["access_token_expire_minutes"].most
    settings = make_settings(
        algorithm="RS256",
        signing_key=json.dumps(jwk),
        issuer=wide_text,
        audience=wide_text,
        access_token_expire_minutes=most,
    )
    now = 10**12 - 1  # the year 33658: more digits than any clock reads for long
    codec = TokenCodec(settings, clock=lambda: now)
    username = clean_username(WIDE * 64)
    scopes = clean_scopes(widest_scopes())
    assert all(len(scope) <= SCOPE_MAX for scope in scopes)
    assert token_json_bytes(" ".join(scopes)) - 2 >= SCOPES_MAX_BYTES - 3
    with pytest.raises(S3ValidationError, match="scopes"):
        clean_scopes([*scopes, "x" * 4])

    hooks = Hooks()
    claims_given = {"c": "x" * (MAX_CLAIMS_BYTES - len('{"c":""}'))}
    assert token_json_bytes(claims_given) == MAX_CLAIMS_BYTES

    @hooks.token_claims
    def bulky(user: User) -> Mapping[str, Any]:
        return claims_given

    user = User(
        id=new_id(), username=username, email="a@example.com", hashed_password="x",
        created_at=now, updated_at=now,
    )  # fmt: skip
    extra = anyio.run(hooks.claims_for, user)
    assert extra == claims_given
    token, claims = codec.issue_access_token(
        user_id=user.id,
        username=username,
        session_id="f" * 32,
        is_admin=True,
        scopes=sorted([*scopes, "admin"]),
        now=now,
        extra_claims=extra,
        auth_time=now,
        amr=checked_methods(sorted(AMR_VALUES)),
    )
    assert len(token) <= MAX_TOKEN_BYTES
    # Measured before signing as joserfc writes it: the check of a session's tokens.
    header = json.loads(base64url_decode(token.split(".")[0].encode()))
    assert access_token_length(header, claims, SIGNING_RSA_MAX_BITS // 8) == len(token)
    verified = codec.verify_access_token(token)
    assert verified["scope"] == claims["scope"] and verified["c"] == claims_given["c"]
    assert verified["preferred_username"] == username and verified["iss"] == wide_text


def test_claims_are_measured_as_the_token_writes_them(caplog: pytest.LogCaptureFixture) -> None:
    """msgspec writes 1e16 where the token's encoder writes 1e+16: claims within the bound
    by the one were a fifth longer in the token."""
    hooks = Hooks()
    floats = {"f": [1e16] * 400}

    @hooks.token_claims
    def numbers(user: User) -> Mapping[str, Any]:
        return floats

    assert len(msgspec.json.encode(floats)) <= MAX_CLAIMS_BYTES < token_json_bytes(floats)
    user = User(
        id=new_id(), username="alice", email="a@example.com", hashed_password="x",
        created_at=0, updated_at=0,
    )  # fmt: skip
    with caplog.at_level(logging.ERROR, logger="s3auth_asgi.hooks"):
        assert anyio.run(hooks.claims_for, user) == {}
    assert "claims left out" in caplog.text


def test_an_issuer_or_audience_beyond_the_bound_is_refused() -> None:
    for field in ("issuer", "audience"):
        make_settings(**{field: "i" * CLAIM_TEXT_MAX_BYTES})
        with pytest.raises(ConfigurationError, match=rf"S3AUTH_{field.upper()}.*bytes"):
            make_settings(**{field: "é" * (CLAIM_TEXT_MAX_BYTES // 2 + 1)})


def test_a_signing_key_beyond_the_bound_is_refused() -> None:
    """Its signature or its kid would take the worst token past what verifiers read."""
    modulus = secrets.randbits(SIGNING_RSA_MAX_BITS + 8) | (1 << (SIGNING_RSA_MAX_BITS + 7)) | 1
    public = rsa.RSAPublicNumbers(65537, modulus).public_key()
    with pytest.raises(UnusableKeyError, match=f"at most {SIGNING_RSA_MAX_BITS} bits"):
        check_signing_key(RSAKey.import_key(public), None)
    ec_key = ECKey.import_key(ec.generate_private_key(ec.SECP256R1()))
    check_signing_key(ec_key, "k" * KID_MAX)
    for kid in ("k" * (KID_MAX + 1), "ké"):
        with pytest.raises(UnusableKeyError, match="kid"):
            check_signing_key(ec_key, kid)
    jwk = {**ec_key.as_dict(private=True), "kid": "k" * (KID_MAX + 1)}
    settings = make_settings(algorithm="ES256", signing_key=json.dumps(jwk))
    with pytest.raises(ConfigurationError, match=r"S3AUTH_SIGNING_KEY.*kid"):
        TokenCodec(settings)


def test_a_key_set_given_in_code_holds_its_signing_keys_to_the_bound() -> None:
    """A KeySet handed to the codec signs too: an oversized kid (or RSA key) is refused
    when the set is made, not answered at every login as an account's token too large."""
    private = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(UnusableKeyError, match="kid"):
        KeySet([KeyEntry("k" * (KID_MAX + 1), "ES256", ECKey.import_key(private))])
    # A key that only verifies (a JWKS's) is not bound: its tokens are another's to size.
    public = ECKey.import_key(private.public_key())
    assert len(KeySet([KeyEntry("k" * (KID_MAX + 1), "ES256", public)])) == 1
    fitting = KeySet([KeyEntry("k" * KID_MAX, "ES256", ECKey.import_key(private))])
    codec = TokenCodec(make_settings(algorithm="ES256"), keys=fitting)
    assert codec.key_set() is fitting
