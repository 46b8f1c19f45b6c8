"""The signing algorithms tokens may use, by name: what key each needs and which names a
token signed by that key may carry. No key material here, so settings can check a name
without loading a cryptography library.

    algorithm        key type  curve / size          family
    HS256/384/512    oct       >= the hash's length   symmetric (the secret key)
    ES256            EC        P-256                  asymmetric
    EdDSA, Ed25519   OKP       Ed25519                asymmetric (one algorithm, two names)
    RS256            RSA       >= 2048 bits           asymmetric
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

from ..errors import ConfigurationError


class Algorithm(NamedTuple):
    name: str
    kty: str
    curve: str | None
    min_bits: int


ALGORITHMS: dict[str, Algorithm] = {
    "HS256": Algorithm("HS256", "oct", None, 256),
    "HS384": Algorithm("HS384", "oct", None, 384),
    "HS512": Algorithm("HS512", "oct", None, 512),
    "ES256": Algorithm("ES256", "EC", "P-256", 256),
    "EdDSA": Algorithm("EdDSA", "OKP", "Ed25519", 256),
    "Ed25519": Algorithm("Ed25519", "OKP", "Ed25519", 256),
    "RS256": Algorithm("RS256", "RSA", None, 2048),
}
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
ASYMMETRIC_ALGORITHMS = ("ES256", "EdDSA", "Ed25519", "RS256")
ED25519_NAMES = frozenset(("EdDSA", "Ed25519"))
"""RFC 8037 named the algorithm `EdDSA` (the curve chosen by the key); RFC 9864 added the
fully specified `Ed25519`. Tokens carry the configured name; either verifies."""

# RFC 9864 deprecates the name, not the signature: with an Ed25519 key pinned by kid, an
# `EdDSA` token is the same algorithm, chosen by the operator for verifiers that know no
# other name. joserfc warns on every such token; the choice is documented instead.
warnings.filterwarnings("ignore", message="EdDSA is deprecated via RFC 9864")


class UnusableKeyError(ConfigurationError):
    """The key cannot be used for the algorithm (wrong type, curve or size, or weak)."""

    code = "unusable_key"


def accepted_names(algorithm: str) -> frozenset[str]:
    """The `alg` values a token signed by a key of `algorithm` may carry."""
    return ED25519_NAMES if algorithm in ED25519_NAMES else frozenset((algorithm,))


def is_symmetric(algorithm: str) -> bool:
    return ALGORITHMS[algorithm].kty == "oct"


def algorithm_for(name: object) -> Algorithm:
    algorithm = ALGORITHMS.get(name) if isinstance(name, str) else None
    if algorithm is None:
        raise UnusableKeyError(
            f"unsupported algorithm {name!r}: use one of {', '.join(ALGORITHMS)}"
        )
    return algorithm
