"""Every Project Wycheproof JWS and JWK vector gives its expected verdict through the key
set and the JWS verification every token goes through (`keys.jws.verify_compact`).

A vector is accepted only if a key set can be built from its keys and the JWS verifies with
it. Expected: `valid` vectors of the algorithms this package supports are accepted, every
other vector (invalid ones, and valid ones of algorithms it does not support: PS*, RS384,
ES521, ...) is refused."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from test_tokens_low_s import P256_ORDER

from s3auth_asgi.errors import InvalidTokenError
from s3auth_asgi.keys.jws import verify_compact
from s3auth_asgi.keys.keyset import KeyEntry, KeySet
from s3auth_asgi.keys.material import import_key
from s3auth_asgi.keys.names import ALGORITHMS, UnusableKeyError

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "wycheproof"
FILES = ("json_web_signature_test.json", "json_web_key_test.json")
DEFECTS = frozenset((367, 370))
"""Vectors of this snapshot that carry exactly the token of a valid vector, marked invalid."""
EITHER = frozenset((372, 373))
"""A character outside the base64url alphabet, marked valid: refusing it is correct too."""

pytestmark = [
    pytest.mark.skipif(not VECTORS.is_dir(), reason="the shared vectors are absent"),
    # joserfc warns as it reads a short RSA key; check_key then refuses it.
    pytest.mark.filterwarnings("ignore:Key size should be"),
]


def key_set_for(group: dict[str, Any]) -> KeySet | None:
    """The key set a verifier would hold, or None when its keys are refused."""
    material = group.get("public") or group.get("private")
    if material is None:
        return None
    jwks = material.get("keys", [material])
    try:
        if any(jwk.get("kty") == "oct" for jwk in jwks):
            # Secret keys: as a service holds its HMAC key, never from a published JWKS.
            entries = []
            for jwk in jwks:
                key, kid = import_key(jwk.get("alg") if jwk.get("alg") in ALGORITHMS else "", jwk)
                entries.append(KeyEntry(kid or "", jwk["alg"], key))
            return KeySet(entries)
        return KeySet.from_jwks({"keys": jwks})
    except (UnusableKeyError, KeyError):
        return None


def accepted(keys: KeySet | None, token: str) -> bool:
    if keys is None:
        return False
    try:
        verify_compact(token, keys, now=0)
    except InvalidTokenError:
        return False
    return True


def vectors() -> list[Any]:
    found = []
    for name in FILES:
        path = VECTORS / "testvectors_v1" / name
        if not path.is_file():
            continue
        for group in json.loads(path.read_text())["testGroups"]:
            for test in group["tests"]:
                if "jws" in test and test["tcId"] not in DEFECTS:
                    found.append(pytest.param(group, test, id=f"{name[9:12]}-{test['tcId']}"))
    return found


def header_of(token: str) -> dict[str, Any]:
    header: dict[str, Any] = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "==="))
    return header


def supported(group: dict[str, Any], token: str) -> bool:
    return header_of(token).get("alg") in ALGORITHMS and not high_s(token)


def high_s(token: str) -> bool:
    """An ES256 signature whose s is above n/2: valid ECDSA, refused here all the same,
    since its twin with n - s would verify too (`keys.low_s`)."""
    if header_of(token).get("alg") != "ES256":
        return False
    segment = token.split(".")[2]
    signature = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    return len(signature) == 64 and int.from_bytes(signature[32:], "big") > P256_ORDER // 2


@pytest.mark.parametrize(("group", "test"), vectors())
def test_vector_verdict(group: dict[str, Any], test: dict[str, Any]) -> None:
    token = test["jws"]
    verdict = accepted(key_set_for(group), token)
    if test["tcId"] in EITHER:
        return
    try:
        expected = test["result"] == "valid" and supported(group, token)
    except ValueError:
        expected = False
    assert verdict is expected, (test["tcId"], test["comment"], test["flags"])


def test_the_vectors_cover_each_supported_family() -> None:
    """The vectors run include accepted ones of HS256, ES256 and RS256, and refusals of
    signature malleability, invalid curve points, short and ROCA RSA keys, and of a valid
    ES256 signature whose s is the high one."""
    cases = vectors()
    comments = {p.values[1]["comment"] for p in cases}
    assert len(cases) > 400
    valid = [test for _, test in (p.values for p in cases) if test["result"] == "valid"]
    assert any(high_s(test["jws"]) for test in valid)
    for expected in (
        "rejectsKeyWithRocaVulnerability",
        "rejects1024bitRsaKey",
        "rejectsModifiedKey",
    ):
        assert expected in comments
    valid_algs = set()
    for p in cases:
        group, test = p.values
        if test["result"] == "valid" and accepted(key_set_for(group), test["jws"]):
            valid_algs.add((group.get("public") or group.get("private", {})).get("alg"))
    assert {"HS256", "ES256", "RS256"} <= valid_algs
