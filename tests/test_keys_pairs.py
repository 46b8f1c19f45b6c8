"""A private JWK's public members must be the ones its private part makes: a JWK carrying
another key's `x` (or `y`, `n`, `e`) would sign with one key and publish another, so no
token it signs verifies anywhere, or a verifier given its public half trusts a key the
signer does not hold. Refused with a message that says so, for every key type, wherever
the JWK comes from: import, the store, S3AUTH_SIGNING_KEY."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import make_settings

from s3auth_asgi import ConfigurationError
from s3auth_asgi.keys.algorithms import generate_key
from s3auth_asgi.keys.material import import_key, private_jwk, thumbprint
from s3auth_asgi.keys.names import UnusableKeyError
from s3auth_asgi.keys.ring import environment_keys
from s3auth_asgi.keys.stored import KeyStore, StoredKey, StoredKeySet
from s3auth_asgi.storage import ObjectStore

PUBLIC_MEMBERS = {"EdDSA": ("x",), "ES256": ("x", "y"), "RS256": ("n", "e")}
KEYS = {
    algorithm: (generate_key(algorithm), generate_key(algorithm)) for algorithm in PUBLIC_MEMBERS
}
CASES = [(algorithm, member) for algorithm, members in PUBLIC_MEMBERS.items() for member in members]


def mismatched(algorithm: str, member: str) -> dict[str, Any]:
    one, other = KEYS[algorithm]
    jwk = private_jwk(one)
    replacement = (
        private_jwk(other)[member] if member != "e" else "AQAB" if jwk["e"] != "AQAB" else "Aw"
    )
    return {**jwk, member: replacement}


@pytest.mark.parametrize(("algorithm", "member"), CASES)
def test_a_public_member_that_is_not_the_private_parts_is_refused(
    algorithm: str, member: str
) -> None:
    with pytest.raises(UnusableKeyError, match="public part does not match its private part"):
        import_key(algorithm, mismatched(algorithm, member))
    with pytest.raises(UnusableKeyError, match="public part does not match its private part"):
        import_key(algorithm, json.dumps(mismatched(algorithm, member)))


@pytest.mark.parametrize(("algorithm", "member"), CASES)
def test_a_stored_key_whose_parts_do_not_match_is_refused(algorithm: str, member: str) -> None:
    jwk = mismatched(algorithm, member)
    public = {k: v for k, v in jwk.items() if k in ("kty", "crv", "x", "y", "n", "e")}
    try:  # the kid of the public part it would publish, as whoever wrote it would give
        kid = thumbprint(import_key(algorithm, public)[0])
    except UnusableKeyError:  # an RSA exponent this package refuses anyway
        kid = thumbprint(KEYS[algorithm][0])
    record = StoredKey(
        kid=kid,
        alg=algorithm,
        created_at=0,
        activates_at=0,
        jwk=mismatched(algorithm, member),
    )
    with pytest.raises(ConfigurationError, match="does not match"):
        KeyStore(ObjectStore.from_url("memory://")).key_set(StoredKeySet(keys=[record]))


@pytest.mark.parametrize(("algorithm", "member"), CASES)
def test_a_signing_key_variable_whose_parts_do_not_match_is_refused(
    algorithm: str, member: str
) -> None:
    settings = make_settings(
        algorithm=algorithm, signing_key=json.dumps(mismatched(algorithm, member))
    )
    with pytest.raises(ConfigurationError, match=r"S3AUTH_SIGNING_KEY: .*does not match"):
        environment_keys(settings, settings.signing_key)


@pytest.mark.parametrize("algorithm", ["EdDSA", "Ed25519", "ES256", "RS256"])
def test_a_key_whose_parts_match_is_accepted(algorithm: str) -> None:
    """The control: each key type's own private JWK, and its public JWK alone."""
    key = KEYS["EdDSA" if algorithm == "Ed25519" else algorithm][0]
    jwk = private_jwk(key)
    assert import_key(algorithm, jwk)[0].as_dict(private=False) == key.as_dict(private=False)
    public = {k: v for k, v in jwk.items() if k in ("kty", "crv", "x", "y", "n", "e")}
    assert not import_key(algorithm, public)[0].is_private
