"""ECDSA signatures in their low-S form only, so that a token has one spelling.

An ECDSA signature (r, s) verifies exactly when (r, n - s) does, n the order of the curve:
anyone holding a token can write its twin, the same header and claims, without the key.
Where a token is known by its bytes rather than its claims (the middleware's
verified-token cache; a host's own logs, caches or deduplication) the twin would pass for
another token. So tokens are signed with the smaller of the two values, s <= n/2, and a
signature with the larger is refused: ES256 tokens then have one spelling, like those of
the other algorithms (an HMAC is one value, Ed25519 refuses S at or above its order, and
a signature segment is read in its one canonical base64url).

ES256 is the one ECDSA algorithm here; its JWS signature is r then s, 32 big-endian bytes
each (RFC 7518 §3.4).
"""

from __future__ import annotations

from ..jose_json import b64url, base64url_decode

LOW_S_ALGORITHMS = frozenset(("ES256",))
"""The algorithms whose signatures are held to the low-S form."""

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_SIZE = 32
# Fixed-length big-endian bytes compare as the numbers they hold: no int is built on the
# verification path.
_HALF_ORDER = (P256_ORDER // 2).to_bytes(_SIZE, "big")


def is_high_s(signature: bytes) -> bool:
    """Whether an ES256 signature's s is above n/2. A signature of another length is not
    judged here: the signature check refuses it."""
    return len(signature) == 2 * _SIZE and signature[_SIZE:] > _HALF_ORDER


def low_s(signature: bytes) -> bytes:
    """The low-S one of the two signatures `signature` is one of."""
    if not is_high_s(signature):
        return signature
    s = int.from_bytes(signature[_SIZE:], "big")
    return signature[:_SIZE] + (P256_ORDER - s).to_bytes(_SIZE, "big")


def low_s_compact(token: str) -> str:
    """A compact ES256 JWS with its signature in the low-S form."""
    signed_part, _, segment = token.rpartition(".")
    signature = base64url_decode(segment.encode("ascii"))
    canonical = low_s(signature)
    return token if canonical is signature else f"{signed_part}.{b64url(canonical)}"
