"""Access-token verification against public JOSE vectors and hostile input."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import OctKey

from s3auth_asgi import InvalidTokenError, S3AuthError, TokenExpiredError
from s3auth_asgi.keys.keyset import KeyEntry, KeySet
from s3auth_asgi.tokens import TokenCodec

# The public JOSE vectors sit in shared/, beside the project root.
VECTORS = Path(__file__).resolve().parents[1].parent / "shared" / "vectors"
needs_vectors = pytest.mark.skipif(not VECTORS.exists(), reason="shared/vectors not found")


def codec(**overrides: Any) -> TokenCodec:
    return TokenCodec(make_settings(**overrides))


def issue(c: TokenCodec, **claims: Any) -> str:
    token, _ = c.issue_access_token(
        user_id="u" * 32, username="bob", session_id="s" * 32, is_admin=False, scopes=["read"]
    )
    if not claims:
        return token
    decoded = jwt.decode(token, c.key_set().signing_key(0).key, algorithms=["HS256"])
    header = {**decoded.header, **claims.pop("header", {})}
    body = {**decoded.claims, **claims}
    return jwt.encode(header, body, c.key_set().signing_key(0).key, algorithms=["HS256", "HS512"])


def test_round_trip_and_claims() -> None:
    c = codec(issuer="https://auth.example", audience="api")
    claims = c.verify_access_token(issue(c))
    assert claims["iss"] == "https://auth.example" and claims["aud"] == "api"
    assert claims["exp"] - claims["iat"] == 1800 and claims["scope"] == "read"
    assert len(claims["jti"]) >= 22


def test_the_fields_of_a_token_are_held_as_a_signature_holds_them() -> None:
    c = codec()
    fields: dict[str, Any] = {
        "user_id": "u" * 32, "username": "bob", "session_id": "s" * 32, "is_admin": False,
        "scopes": [],
    }  # fmt: skip
    with pytest.raises(TypeError, match=r"unknown \['not_afer'\]"):
        c.issue_access_token(**fields, not_afer=0)  # would issue a token outliving it
    with pytest.raises(TypeError, match=r"missing \['scopes'\]"):
        c.check_access_token_fits(**{k: v for k, v in fields.items() if k != "scopes"})
    token, claims = c.issue_access_token(**fields, now=1_800_000_000, not_after=1_800_000_060)
    assert claims["exp"] == 1_800_000_060 and token.count(".") == 2


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"exp": -60}, "token_expired"),
        ({"nbf": 600}, "invalid_token"),
        ({"iat": 600}, "invalid_token"),
        ({"iss": "https://evil.example"}, "invalid_token"),
        ({"aud": "other"}, "invalid_token"),
        ({"header": {"typ": "JWT"}}, "invalid_token"),
        ({"header": {"typ": "rt+jwt"}}, "invalid_token"),
        ({"header": {"kid": "unknown"}}, "invalid_token"),
        ({"header": {"alg": "HS512"}}, "invalid_token"),
        ({"sub": None}, "invalid_token"),
        ({"jti": 5}, "invalid_token"),
        ({"sid": ["x"]}, "invalid_token"),
    ],
)
def test_rejections(change: dict[str, Any], code: str) -> None:
    # Times are given as seconds from now and resolved here, not at collection: a suite
    # that takes more than ten minutes to reach this test would find them in the past.
    now = int(time.time())
    change = {k: now + v if k in ("exp", "nbf", "iat") else v for k, v in change.items()}
    c = codec(issuer="https://auth.example", audience="api")
    with pytest.raises(InvalidTokenError) as info:
        c.verify_access_token(issue(c, **change))
    assert info.value.code == code
    if code == "token_expired":
        assert isinstance(info.value, TokenExpiredError)


def test_other_key_and_short_secret() -> None:
    other = TokenCodec(make_settings(secret_key="another-secret-key-that-is-long-enough!!"))
    with pytest.raises(InvalidTokenError):
        codec().verify_access_token(issue(other))
    from s3auth_asgi import ConfigurationError, S3AuthSettings

    with pytest.raises(ConfigurationError, match="S3AUTH_SECRET_KEY"):
        S3AuthSettings(secret_key="x" * 31)


def test_oversized_and_refresh_tokens_are_refused() -> None:
    c = codec()
    for bad in ("x" * 8193, "rt1." + "a" * 32 + "." + "b" * 32 + ".0." + "c" * 43, "", "a.b.c"):
        with pytest.raises(InvalidTokenError):
            c.verify_access_token(bad)


@given(st.one_of(st.text(max_size=300), st.binary(max_size=300), st.integers(), st.none()))
@settings(max_examples=300, deadline=None)
def test_garbage_never_escapes_as_anything_else(value: Any) -> None:
    with pytest.raises(InvalidTokenError):
        codec().verify_access_token(value)


@given(st.text(max_size=200))
@settings(max_examples=200, deadline=None)
def test_garbage_refresh_tokens(value: str) -> None:
    with pytest.raises(InvalidTokenError):
        TokenCodec.parse_refresh_token(value)


@given(
    user_id=st.text("0123456789abcdef", min_size=32, max_size=32),
    session_id=st.text("0123456789abcdef", min_size=32, max_size=32),
    generation=st.integers(0, 10**9),
    secret=st.text(min_size=1, max_size=40),
)
@settings(max_examples=100, deadline=None)
def test_refresh_token_round_trip(
    user_id: str, session_id: str, generation: int, secret: str
) -> None:
    c = codec()
    token = c.make_refresh_token(user_id, session_id, generation, secret)
    parsed = c.parse_refresh_token(token)
    assert (parsed.user_id, parsed.session_id, parsed.generation) == (
        user_id,
        session_id,
        generation,
    )
    assert c.refresh_mac_matches(parsed, secret)
    assert not c.refresh_mac_matches(parsed._replace(generation=generation + 1), secret)
    assert not c.refresh_mac_matches(parsed, secret + "x")


def _codec_with(jwk: dict[str, Any], kid: str | None = None) -> TokenCodec:
    key = OctKey.import_key(jwk)
    keys = KeySet([KeyEntry(kid or jwk.get("kid", "k"), "HS256", key)])
    return TokenCodec(make_settings(), keys=keys)


@needs_vectors
def test_rfc7515_examples_are_refused() -> None:
    examples = json.loads((VECTORS / "rfc7515_appendix_A.json").read_text())["examples"]
    a1 = examples["A.1"]
    c = _codec_with(a1["verification_jwk"])
    # The signature is good, but the token has no kid, no at+jwt type and expired in 2011.
    assert jwt.decode(a1["compact"], OctKey.import_key(a1["verification_jwk"]), ["HS256"])
    with pytest.raises(InvalidTokenError):
        c.verify_access_token(a1["compact"])
    assert len(examples) > 1
    for example in examples.values():
        with pytest.raises(InvalidTokenError):
            c.verify_access_token(example["compact"])


@needs_vectors
def test_wycheproof_jws_vectors_are_refused_or_invalid() -> None:
    """Every Wycheproof JWS vector is refused with InvalidTokenError and nothing else:
    none is an at+jwt access token, and the invalid ones fail on their signature."""
    data = json.loads(
        (VECTORS / "wycheproof/testvectors_v1/json_web_signature_test.json").read_text()
    )
    checked = 0
    for group in data["testGroups"]:
        private = group.get("private", {})
        c = _codec_with(private) if private.get("kty") == "oct" else codec()
        for test in group["tests"]:
            if test["tcId"] in (367, 370):
                continue  # known defects of this snapshot (see vectors/README.md)
            with pytest.raises(InvalidTokenError) as info:
                c.verify_access_token(test["jws"])
            if private.get("kty") == "oct" and test["result"] == "invalid":
                # Refused by verification itself, not only by the access-token checks.
                assert any(
                    reason in str(info.value)
                    for reason in ("could not be verified", "unknown key", "does not match")
                ), test["tcId"]
            checked += 1
    assert checked > 300


def test_errors_are_s3auth_errors() -> None:
    assert issubclass(InvalidTokenError, S3AuthError)
