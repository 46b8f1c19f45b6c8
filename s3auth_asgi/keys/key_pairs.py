"""Whether a private JWK's public members are the ones its private part makes.

A JWK carries both halves of a key pair, and nothing in it ties them: an Ed25519 key is
rebuilt from `d` alone, so a JWK whose `x` is another key's would sign with one key and
publish the other (no token it signs verifies), or make a verifier given its public half
trust a key the signer does not hold. The cryptography library refuses some mismatches of
EC and RSA keys, with a message that does not say what is wrong; this says it, for every
key type, before the key is built.
"""

from __future__ import annotations

import base64
import math
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from .names import UnusableKeyError

_CURVES: dict[str, ec.EllipticCurve] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
}

_MISMATCH = "the key's public part does not match its private part (`{member}` is another key's)"


def check_key_pair(jwk: dict[str, Any]) -> None:
    """UnusableKeyError if `jwk` has a private part and a public member it does not make.
    Members that cannot be read are left to the key's import, which refuses them."""
    if "d" not in jwk:
        return
    kty = jwk.get("kty")
    if kty == "OKP" and jwk.get("crv") == "Ed25519":
        private = ed25519.Ed25519PrivateKey.from_private_bytes(_octets(jwk["d"]))
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        _same(jwk, {"x": raw})
    elif kty == "EC" and jwk.get("crv") in _CURVES:
        point = ec.derive_private_key(_integer(jwk["d"]), _CURVES[jwk["crv"]]).public_key()
        numbers = point.public_numbers()
        _same(jwk, {"x": numbers.x, "y": numbers.y})
    elif kty == "RSA" and "p" in jwk and "q" in jwk:
        p, q, d = _integer(jwk["p"]), _integer(jwk["q"]), _integer(jwk["d"])
        _same(jwk, {"n": p * q})
        given = jwk.get("e")
        # e must undo d modulo λ(n): otherwise what d signs does not verify under e.
        if (
            isinstance(given, str)
            and p > 1
            and q > 1
            and _integer(given) * d % math.lcm(p - 1, q - 1) != 1
        ):
            raise UnusableKeyError(_MISMATCH.format(member="e"))


def _same(jwk: dict[str, Any], made: dict[str, bytes | int]) -> None:
    for member, value in made.items():
        given = jwk.get(member)
        if not isinstance(given, str):
            continue  # missing or not text: the import refuses it
        ours = _octets(given) if isinstance(value, bytes) else _integer(given)
        if ours != value:
            raise UnusableKeyError(_MISMATCH.format(member=member))


def _octets(text: object) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not base64url text")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _integer(text: object) -> int:
    return int.from_bytes(_octets(text), "big")
