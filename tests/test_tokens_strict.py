"""Strict JOSE JSON and claim checks, on tokens signed with the real key.

Every token here is forged by hand, base64url and HMAC-SHA256 over exact bytes, so a test
controls each signed byte, and a token refused for its content carries a good signature
(the controls show that the forge makes tokens we accept). Refused with `invalid_token` by
the TokenCodec, by `S3AuthService.decode_token` and by BearerTokenMiddleware in front of a
Starlette app:

- a member named twice, in the header or the claims, at any depth, however spelt
  (RFC 7515 §4, RFC 7519 §4: Python's json keeps the last, other parsers the first);
- a header or claims set that is not UTF-8 JSON: a byte-order mark, UTF-16 or UTF-32, a
  lone surrogate, NaN (RFC 7515 §5.2, RFC 8259 §8.1, RFC 8725 §3.7);
- `crit` in any form, `[]` included, and `b64` (RFC 7515 §4.1.11: we implement no
  extension);
- exp, iat or nbf that are not whole seconds, and exp further after iat than an access
  token lives, plus the leeway.

Valid JSON spelt another way (whitespace, escapes, member order) is still accepted. Since
verification no longer goes through joserfc's `jwt.decode`, a few guards show that the
signature is still checked before any claim is read, that the algorithm is still the
key's, and that keys named in the header (jwk, jku, x5u) are never used.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import string
import time
from collections.abc import Callable
from typing import Any, cast

import msgspec
import pytest
from conftest import SECRET, make_service, make_settings
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc.jwk import ECKey, OctKey
from joserfc.jws import JWSRegistry
from joserfc.util import urlsafe_b64decode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from support import asgi_client, bearer, call_http, http_scope

from s3auth_asgi import InvalidTokenError, TokenExpiredError
from s3auth_asgi.jose_json import base64url_decode, json_object
from s3auth_asgi.keys.keyset import KeyEntry, KeySet
from s3auth_asgi.keys.low_s import low_s
from s3auth_asgi.keys.ring import hmac_entry
from s3auth_asgi.middleware.bearer import BearerTokenMiddleware
from s3auth_asgi.tokens import TokenCodec

SETTINGS = make_settings()
KID = hmac_entry(SETTINGS).kid
MAX_LIFETIME = SETTINGS.access_token_seconds + SETTINGS.leeway_seconds
CODEC = TokenCodec(SETTINGS)
SERVICE = make_service()
VERIFIERS: dict[str, Callable[[str], dict[str, Any]]] = {
    "TokenCodec.verify_access_token": CODEC.verify_access_token,
    "S3AuthService.decode_token": SERVICE.decode_token,
}

Members = list[tuple[str, Any]]


class Obj(list[tuple[str, Any]]):
    """A JSON object as its member list, so that it can name a member twice."""


# Forging ----------------------------------------------------------------------------------


def b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def forge(header: bytes, payload: bytes, secret: bytes = SECRET.encode()) -> str:
    """A compact JWS over exactly these octets, HS256 under the secret key (whose UTF-8
    bytes are the HMAC key, as in `KeySet.from_settings`)."""
    signing_input = b64url(header) + b"." + b64url(payload)
    mac = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + b64url(mac)).decode("ascii")


def header_members() -> Members:
    return [("alg", "HS256"), ("typ", "at+jwt"), ("kid", KID)]


def claim_members(now: int) -> Members:
    return [
        ("sub", "0" * 32),
        ("iat", now),
        ("nbf", now),
        ("exp", now + SETTINGS.access_token_seconds),
        ("jti", "j" * 22),
        ("sid", "f" * 32),
        ("scope", "items:read"),
        ("preferred_username", "alice"),
        ("adm", False),
    ]


def compact(members: Members, extra: str = "") -> bytes:
    """`{"name":value,...}` as joserfc writes it, then `extra`, raw member text."""
    text = ",".join(f"{json.dumps(name)}:{json.dumps(value)}" for name, value in members)
    return ("{" + text + ("," + extra if extra else "") + "}").encode()


def replaced(members: Members, name: str, value: Any) -> Members:
    return [(n, value if n == name else v) for n, v in members]


def now() -> int:
    return int(time.time())


def with_claims(payload: bytes) -> str:
    return forge(compact(header_members()), payload)


def with_header(header: bytes) -> str:
    return forge(header, compact(claim_members(now())))


def refused_tokens() -> dict[str, str]:
    """One defect each; every one of them was accepted before the strict checks."""
    t = now()
    claims = claim_members(t)
    exp = t + SETTINGS.access_token_seconds
    text = compact(claims).decode()
    header_text = compact(header_members()).decode()
    return {
        # A member named twice.
        "claims: sub twice": with_claims(compact(claims, '"sub":"' + "9" * 32 + '"')),
        "claims: sub twice, same value": with_claims(compact(claims, '"sub":"' + "0" * 32 + '"')),
        "claims: scope twice": with_claims(compact(claims, '"scope":"admin"')),
        "claims: sub twice, once escaped": with_claims(compact(claims, r'"\u0073ub":"x"')),
        "claims: a name twice, nested": with_claims(compact(claims, '"cnf":{"k":"a","k":"b"}')),
        "header: typ twice, JWT then at+jwt": with_header(
            compact(replaced(header_members(), "typ", "JWT"), '"typ":"at+jwt"')
        ),
        "header: kid twice": with_header(compact(header_members(), f'"kid":"{KID}"')),
        # Not UTF-8 JSON.
        "claims: UTF-8 BOM": with_claims(b"\xef\xbb\xbf" + text.encode()),
        "header: UTF-8 BOM": with_header(b"\xef\xbb\xbf" + header_text.encode()),
        "claims: UTF-16 with BOM": with_claims(text.encode("utf-16")),
        "claims: UTF-16BE": with_claims(text.encode("utf-16-be")),
        "claims: UTF-16LE": with_claims(text.encode("utf-16-le")),
        "claims: UTF-32": with_claims(text.encode("utf-32")),
        "header: UTF-16 with BOM": with_header(header_text.encode("utf-16")),
        "header: UTF-16LE": with_header(header_text.encode("utf-16-le")),
        "claims: a lone surrogate": with_claims(compact(claims, r'"name":"\ud800"')),
        "claims: NaN": with_claims(compact(claims, '"score":NaN')),
        # Extensions, none of which we implement.
        "header: crit []": with_header(compact([*header_members(), ("crit", [])])),
        "header: crit [kid]": with_header(compact([*header_members(), ("crit", ["kid"])])),
        "header: b64 true": with_header(compact([*header_members(), ("b64", True)])),
        # Times that are not whole seconds; a lifetime longer than ours.
        "claims: exp a float": with_claims(compact(replaced(claims, "exp", t + 600.5))),
        "claims: exp a whole float": with_claims(compact(replaced(claims, "exp", t + 600.0))),
        "claims: exp with an exponent": with_claims(
            text.replace(f'"exp":{exp}', f'"exp":{exp}e0').encode()
        ),
        "claims: iat a float": with_claims(compact(replaced(claims, "iat", t - 0.5))),
        "claims: nbf a float": with_claims(compact(replaced(claims, "nbf", t - 0.5))),
        "claims: exp beyond the lifetime": with_claims(
            compact(replaced(claims, "exp", t + MAX_LIFETIME + 1))
        ),
        "claims: exp in 2^62": with_claims(compact(replaced(claims, "exp", 2**62))),
    }


def accepted_tokens() -> dict[str, str]:
    """Valid tokens spelt other ways than ours: the strict checks must let them in."""
    t = now()
    claims = claim_members(t)
    return {
        "ours": with_claims(compact(claims)),
        "indented": forge(
            json.dumps(dict(header_members()), indent=2).encode(),
            json.dumps(dict(claims), indent=2).encode(),
        ),
        "escaped non-ASCII": with_claims(compact(replaced(claims, "preferred_username", "José"))),
        "raw UTF-8": with_claims(
            json.dumps(
                dict(replaced(claims, "preferred_username", "José 😀")),
                ensure_ascii=False,
                separators=(",", ":"),
            ).encode()
        ),
        "an escaped surrogate pair": with_claims(compact(claims, r'"name":"\ud83d\ude00"')),
        "names escaped": with_claims(compact(claims).replace(b'"scope"', rb'"\u0073cope"')),
        "no nbf": with_claims(compact([m for m in claims if m[0] != "nbf"])),
        "exp at the longest lifetime": with_claims(
            compact(replaced(claims, "exp", t + MAX_LIFETIME))
        ),
        "nested objects": with_claims(compact(claims, '"cnf":{"k":"a","j":{"k":1}}')),
    }


def refusal(verify: Callable[[str], dict[str, Any]], token: str) -> InvalidTokenError:
    with pytest.raises(InvalidTokenError) as info:
        verify(token)
    return info.value


# The codec and decode_token ---------------------------------------------------------------


@pytest.mark.parametrize("verifier", sorted(VERIFIERS))
@pytest.mark.parametrize("name", sorted(refused_tokens()))
def test_each_defect_is_refused_as_an_invalid_token(verifier: str, name: str) -> None:
    error = refusal(VERIFIERS[verifier], refused_tokens()[name])
    assert error.code == "invalid_token" and not isinstance(error, TokenExpiredError)
    assert error.status == 401


@pytest.mark.parametrize("verifier", sorted(VERIFIERS))
@pytest.mark.parametrize("name", sorted(accepted_tokens()))
def test_valid_json_spelt_otherwise_is_accepted(verifier: str, name: str) -> None:
    claims = VERIFIERS[verifier](accepted_tokens()[name])
    assert claims["sub"] == "0" * 32


def test_sub_twice_is_refused_not_read_as_the_last() -> None:
    """The issue's case: `sub` twice, the second an admin's. Before, the route saw the
    second; now the token is refused outright."""
    token = with_claims(compact(claim_members(now()), '"sub":"' + "a" * 32 + '"'))
    assert "occurs twice" in str(refusal(CODEC.verify_access_token, token))


@pytest.mark.parametrize("crit", [[], ["kid"], ["exp"], None, "x", {}])
def test_crit_is_refused_whatever_its_value(crit: Any) -> None:
    header = [*header_members(), ("exp", now() + 60), ("crit", crit)]
    assert "'crit'" in str(refusal(CODEC.verify_access_token, with_header(compact(header))))


def test_a_token_whose_lifetime_is_exactly_the_longest_is_accepted_one_more_is_not() -> None:
    t = now()
    for lifetime, accepted in ((MAX_LIFETIME, True), (MAX_LIFETIME + 1, False)):
        token = with_claims(compact(replaced(claim_members(t), "exp", t + lifetime)))
        if accepted:
            assert CODEC.verify_access_token(token)["exp"] == t + lifetime
        else:
            assert "lives" in str(refusal(CODEC.verify_access_token, token))


def test_a_shorter_configured_lifetime_refuses_longer_tokens() -> None:
    """The bound comes from the settings: a codec configured for 5 minutes refuses a
    token of ours that lives 30."""
    short = TokenCodec(make_settings(access_token_expire_minutes=5))
    token = with_claims(compact(claim_members(now())))
    assert CODEC.verify_access_token(token)
    assert "lives" in str(refusal(short.verify_access_token, token))


def test_non_integer_times_are_refused_before_the_expiry_check() -> None:
    """A float exp in the past is an invalid token, not an expired one: its type is
    checked before its value."""
    t = now()
    claims = replaced(replaced(claim_members(t - 3600), "exp", t - 1800.5), "nbf", t - 3600)
    error = refusal(CODEC.verify_access_token, with_claims(compact(claims)))
    assert not isinstance(error, TokenExpiredError) and "whole seconds" in str(error)


def test_issued_tokens_are_read_in_one_pass() -> None:
    """The duplicate check costs one encode when msgspec writes the segment back byte for
    byte; it does for the tokens we issue (compact ASCII JSON). Should joserfc or msgspec
    change their output, this says why first-seen tokens got slower."""
    token, _ = CODEC.issue_access_token(
        user_id="0" * 32, username="bob", session_id="f" * 32, is_admin=True, scopes=["a", "b"]
    )
    for segment in token.split(".")[:2]:
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        assert msgspec.json.encode(msgspec.json.decode(data)) == data
    assert CODEC.verify_access_token(token)["adm"] is True


def test_an_issued_token_with_a_non_ascii_name_is_accepted() -> None:
    """joserfc escapes it (`\\u00e9`), so the second pass checks it, and lets it in."""
    token, _ = CODEC.issue_access_token(
        user_id="0" * 32, username="José", session_id="f" * 32, is_admin=False, scopes=[]
    )
    assert SERVICE.decode_token(token)["preferred_username"] == "José"


@pytest.mark.parametrize("depth", [10, 900, 1500, 3000])
@pytest.mark.parametrize("spacing", ["", " "])
def test_deep_nesting_is_answered_never_raised(depth: int, spacing: str) -> None:
    """Read or refused, never a RecursionError: with a space, the standard library's
    decoder reads it a second time, and it recurses."""
    data = ('{"a":' + spacing + "[" * depth + "]" * depth + "}").encode()
    try:
        assert isinstance(json_object(data), dict)
    except InvalidTokenError:
        assert depth > 10
    token = with_claims(compact(claim_members(now()), '"a":' + spacing + "[" * depth + "]" * depth))
    try:
        CODEC.verify_access_token(token)
    except InvalidTokenError:
        assert depth > 10


def defects(header: Members, claims: Members) -> dict[str, tuple[bytes, bytes]]:
    """A few of the defects above, for a key of any algorithm (header and claims octets)."""
    return {
        "sub twice": (compact(header), compact(claims, '"sub":"x"')),
        "crit []": (compact([*header, ("crit", [])]), compact(claims)),
        "claims in UTF-16": (compact(header), compact(claims).decode().encode("utf-16")),
        "header with a BOM": (b"\xef\xbb\xbf" + compact(header), compact(claims)),
        "exp a float": (compact(header), compact(replaced(claims, "exp", now() + 60.5))),
    }


def test_the_claims_are_read_only_after_the_signature_verifies() -> None:
    """A payload that would be refused (a name twice) under a wrong signature is refused
    for its signature: nothing in it was read first."""
    payload = compact(claim_members(now()), '"sub":"x"')
    token = forge(compact(header_members()), payload, b"not-the-key-" * 4)
    assert "bad_signature" in str(refusal(CODEC.verify_access_token, token))


def test_the_algorithm_is_the_keys_whatever_the_header_says() -> None:
    """Verification does not go through joserfc's `jwt.decode` any more; the allow-list
    of one algorithm, the key's, still holds."""
    claims = b64url(compact(claim_members(now())))

    def signed(alg: str, digest: Any) -> str:
        header = b64url(compact(replaced(header_members(), "alg", alg)))
        mac = hmac.new(SECRET.encode(), header + b"." + claims, digest).digest()
        return (header + b"." + claims + b"." + b64url(mac)).decode()

    tokens = {
        "none": (
            b64url(compact(replaced(header_members(), "alg", "none"))) + b"." + claims
        ).decode()
        + ".",
        "HS512": signed("HS512", hashlib.sha512),
        "HS384": signed("HS384", hashlib.sha384),
        "hs256": signed("hs256", hashlib.sha256),
        "no alg": forge(compact(header_members()[1:]), compact(claim_members(now()))),
    }
    for name, token in tokens.items():
        assert refusal(CODEC.verify_access_token, token).code == "invalid_token", name
    assert CODEC.verify_access_token(signed("HS256", hashlib.sha256))


@pytest.mark.parametrize("parameter", ["jwk", "jku", "x5u"])
def test_keys_named_in_the_header_are_never_used(parameter: str) -> None:
    """A token signed with the caller's own key, which the header names or embeds, is
    refused: the only keys are the configured ones."""
    theirs = b"the-callers-own-key-long-enough-for-hs256"
    named: Any = {
        "jwk": {"kty": "oct", "k": b64url(theirs).decode(), "alg": "HS256"},
        "jku": "https://attacker.example/jwks.json",
        "x5u": "https://attacker.example/cert.pem",
    }[parameter]
    header = compact([*header_members(), (parameter, named)])
    token = forge(header, compact(claim_members(now())), theirs)
    assert refusal(CODEC.verify_access_token, token).code == "invalid_token"


def test_with_several_keys_the_kid_picks_one_and_the_checks_still_hold() -> None:
    other = b"another-secret-key-that-is-long-enough-987654"
    keys = KeySet(
        [
            KeyEntry("one", "HS256", OctKey.import_key(SECRET.encode())),
            KeyEntry("two", "HS256", OctKey.import_key(other)),
        ]
    )
    codec = TokenCodec(SETTINGS, keys=keys)
    header = [("alg", "HS256"), ("typ", "at+jwt"), ("kid", "two")]
    claims = claim_members(now())
    assert codec.verify_access_token(forge(compact(header), compact(claims), other))
    unknown = replaced(header, "kid", "three")
    assert "unknown key" in str(
        refusal(codec.verify_access_token, forge(compact(unknown), compact(claims), other))
    )
    for name, (header_octets, payload) in defects(header, claims).items():
        error = refusal(codec.verify_access_token, forge(header_octets, payload, other))
        assert error.code == "invalid_token", name


def test_the_checks_hold_for_an_asymmetric_key_too() -> None:
    """KeySet holds HMAC keys today; an ES256 key slipped in shows that no strict check
    depends on the algorithm: the same defects are refused, signed with ECDSA (with the
    low S that is accepted, so that each is refused for its defect)."""
    key = ECKey.generate_key("P-256")
    codec = TokenCodec(SETTINGS, keys=KeySet([KeyEntry("ec", "ES256", cast(Any, key))]))
    es256 = JWSRegistry.algorithms["ES256"]

    def forge_es256(header_octets: bytes, payload: bytes) -> str:
        signing_input = b64url(header_octets) + b"." + b64url(payload)
        return (signing_input + b"." + b64url(low_s(es256.sign(signing_input, key)))).decode()

    header = [("alg", "ES256"), ("typ", "at+jwt"), ("kid", "ec")]
    claims = claim_members(now())
    assert codec.verify_access_token(forge_es256(compact(header), compact(claims)))
    for name, (header_octets, payload) in defects(header, claims).items():
        error = refusal(codec.verify_access_token, forge_es256(header_octets, payload))
        assert error.code == "invalid_token", name


# Properties ---------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
blanks = st.sampled_from(["", " ", "\n", "\t", "\r\n  "])


@st.composite
def spelt(draw: st.DrawFn, members: Members) -> bytes:
    """`members` as one JSON object written some valid way: whitespace anywhere it may be,
    any characters of the names escaped, non-ASCII text raw or escaped. Nested `Obj`s are
    written the same way, so they too may name a member twice."""

    def name(text: str) -> str:
        escaped = draw(st.sets(st.integers(0, max(len(text) - 1, 0))))
        return (
            '"'
            + "".join(
                f"\\u{ord(c):04x}" if i in escaped and ord(c) < 0x10000 else json.dumps(c)[1:-1]
                for i, c in enumerate(text)
            )
            + '"'
        )

    def value(v: Any) -> str:
        if isinstance(v, Obj):
            return obj(v)
        return json.dumps(v, ensure_ascii=draw(st.booleans()))

    def obj(pairs: Members) -> str:
        parts = [
            draw(blanks) + name(k) + draw(blanks) + ":" + draw(blanks) + value(v) + draw(blanks)
            for k, v in pairs
        ]
        return "{" + ",".join(parts) + "}"

    return (draw(blanks) + obj(members) + draw(blanks)).encode()


@st.composite
def with_a_name_twice(draw: st.DrawFn) -> tuple[str, str]:
    """(a token, where) with one name given twice: in the header, in the claims, or in an
    object nested in the claims; the second value may equal the first."""
    t = now()
    where = draw(st.sampled_from(["header", "claims", "nested"]))
    members = header_members() if where == "header" else claim_members(t)
    target = members
    if where == "nested":
        target = Obj(draw(st.dictionaries(st.text(max_size=4), json_values, max_size=3)).items())
        members = [*members, ("ext", target)]
    names = [n for n, _ in target]
    twice = draw(st.sampled_from(names) | st.text(max_size=6) if names else st.text(max_size=6))
    if twice not in names:
        target.append((twice, draw(json_values)))
    first = dict(target)[twice]
    target.insert(draw(st.integers(0, len(target))), (twice, draw(st.just(first) | json_values)))
    if where == "header":
        return forge(draw(spelt(members)), compact(claim_members(t))), where
    return forge(compact(header_members()), draw(spelt(members))), where


URL_SAFE = string.ascii_letters + string.digits + "-_"


def decoded_both_ways(raw: bytes) -> tuple[bytes | None, bytes | None]:
    """(our decoding, joserfc's), None for a refusal."""
    try:
        ours: bytes | None = base64url_decode(raw)
    except InvalidTokenError:
        ours = None
    try:
        joserfcs: bytes | None = urlsafe_b64decode(raw)
    except ValueError:
        joserfcs = None
    return ours, joserfcs


@settings(max_examples=500)
@given(
    segment=st.one_of(
        st.text(URL_SAFE, max_size=12),
        st.text(URL_SAFE + "+/= \n.*\x00\xe9", max_size=12),
        st.binary(max_size=9).map(lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()),
    )
)
def test_segments_decode_as_joserfc_decodes_them(segment: str) -> None:
    """Our base64url decoder refuses what joserfc's strict one refuses (padding, "+", "/",
    other characters, bits set past the data) and reads the rest the same."""
    ours, joserfcs = decoded_both_ways(segment.encode())
    assert ours == joserfcs


def test_every_short_tail_decodes_as_joserfc_decodes_it() -> None:
    """A segment one or two characters short of a quantum is canonical only if its last
    character sets no bit past the data: every such tail, tried against joserfc."""
    for prefix in ("", "A", "AAAA", "AAAAA"):
        for first in URL_SAFE + "=":
            for last in URL_SAFE + "=":
                ours, joserfcs = decoded_both_ways((prefix + first + last).encode())
                assert ours == joserfcs, prefix + first + last


@settings(max_examples=200, deadline=None)
@given(case=with_a_name_twice())
def test_any_name_given_twice_is_refused(case: tuple[str, str]) -> None:
    token, where = case
    for verify in VERIFIERS.values():
        error = refusal(verify, token)
        assert error.code == "invalid_token", where
        assert "occurs twice" in str(error), (where, str(error))


@st.composite
def spelt_otherwise(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """(a valid token spelt some valid way, its claims); no name twice."""
    t = now()
    claims = claim_members(t)
    claims = replaced(claims, "preferred_username", draw(st.text(min_size=1, max_size=12)))
    # Prefixed: a registered name (iss, aud) would be checked, not merely carried.
    extra = draw(st.dictionaries(st.text(max_size=5), json_values, max_size=3))
    claims += [("x-" + k, v) for k, v in extra.items()]
    header = draw(st.permutations(header_members()))
    claims = draw(st.permutations(claims))
    return forge(draw(spelt(header)), draw(spelt(claims))), dict(claims)


@settings(max_examples=200, deadline=None)
@given(case=spelt_otherwise())
def test_any_valid_spelling_is_accepted_as_written(case: tuple[str, dict[str, Any]]) -> None:
    token, claims = case
    for verify in VERIFIERS.values():
        assert verify(token) == claims


encodings = st.sampled_from(
    ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"]
)


@settings(max_examples=100, deadline=None)
@given(encoding=encodings, where=st.sampled_from(["header", "claims"]), data=st.data())
def test_any_encoding_but_utf8_without_bom_is_refused(
    encoding: str, where: str, data: st.DataObject
) -> None:
    header = data.draw(spelt(header_members())).decode()
    claims = data.draw(spelt(claim_members(now()))).decode()
    if where == "header":
        token = forge(header.encode(encoding), claims.encode())
    else:
        token = forge(header.encode(), claims.encode(encoding))
    for verify in VERIFIERS.values():
        assert "UTF-8" in str(refusal(verify, token))


non_integers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=2),
    st.integers(-(10**6), 10**6).map(lambda offset: now() + offset + 0.5),
)


@settings(max_examples=150, deadline=None)
@given(claim=st.sampled_from(["exp", "iat", "nbf"]), value=non_integers)
def test_exp_iat_and_nbf_must_be_whole_seconds(claim: str, value: Any) -> None:
    token = with_claims(compact(replaced(claim_members(now()), claim, value)))
    for verify in VERIFIERS.values():
        error = refusal(verify, token)
        assert error.code == "invalid_token" and "whole seconds" in str(error)


@settings(max_examples=100, deadline=None)
@given(lifetime=st.integers(1, 10**12), issued_ago=st.integers(0, 60))
def test_exp_at_most_the_lifetime_after_iat(lifetime: int, issued_ago: int) -> None:
    iat = now() - issued_ago
    claims = replaced(replaced(claim_members(iat), "exp", iat + lifetime), "nbf", iat)
    token = with_claims(compact(claims))
    if lifetime <= MAX_LIFETIME and iat + lifetime > now() + 1:
        assert CODEC.verify_access_token(token)["exp"] == iat + lifetime
    elif lifetime > MAX_LIFETIME:
        assert "lives" in str(refusal(CODEC.verify_access_token, token))


# The middleware, in front of a Starlette app -----------------------------------------------


class WhoAmI:
    """A Starlette app with one route that says whose token it was shown."""

    def __init__(self) -> None:
        self.calls = 0

        async def me(request: Request) -> JSONResponse:
            self.calls += 1
            return JSONResponse({"sub": request.auth.claims["sub"]})

        self.app = Starlette(routes=[Route("/api/me", me)])


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(refused_tokens()))
async def test_the_middleware_answers_401_invalid_token(name: str) -> None:
    inner = WhoAmI()
    middleware = BearerTokenMiddleware(inner.app, SERVICE)
    token = refused_tokens()[name]
    async with asgi_client(middleware) as client:
        for _ in range(2):  # refused again: a refusal is not cached
            response = await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == "invalid_token"
            challenge = response.headers["www-authenticate"]
            assert challenge.startswith('Bearer realm="api", error="invalid_token"')
    assert inner.calls == 0 and len(middleware.cache) == 0


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(accepted_tokens()))
async def test_the_middleware_lets_valid_spellings_through(name: str) -> None:
    inner = WhoAmI()
    middleware = BearerTokenMiddleware(inner.app, SERVICE)
    async with asgi_client(middleware) as client:
        response = await client.get(
            "/api/me", headers={"Authorization": f"Bearer {accepted_tokens()[name]}"}
        )
    assert response.status_code == 200 and response.json() == {"sub": "0" * 32}
    assert inner.calls == 1


@pytest.mark.anyio
@settings(max_examples=100, deadline=None)
@given(case=with_a_name_twice())
async def test_the_middleware_refuses_any_name_given_twice(case: tuple[str, str]) -> None:
    inner = WhoAmI()
    response = await call_http(
        BearerTokenMiddleware(inner.app, SERVICE), http_scope("/api/me", bearer(case[0]))
    )
    assert response.status == 401 and response.json()["code"] == "invalid_token"
    assert inner.calls == 0


@pytest.mark.anyio
async def test_the_middleware_answers_deep_nesting_with_401() -> None:
    """Before, a signed token with a claim nested 1,500 deep raised RecursionError out of
    the middleware: a 500. Now it is refused like any malformed token."""
    deep = "[" * 1500 + "]" * 1500
    inner = WhoAmI()
    middleware = BearerTokenMiddleware(inner.app, SERVICE)
    for spacing in ("", " "):
        token = with_claims(compact(claim_members(now()), '"a":' + spacing + deep))
        response = await call_http(middleware, http_scope("/api/me", bearer(token)))
        assert response.status == 401 and response.json()["code"] == "invalid_token"
    assert inner.calls == 0
