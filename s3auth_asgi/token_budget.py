"""What each part of an access token may take, so that every token this package issues fits
in MAX_TOKEN_BYTES, the most any verifier reads (`verifier`): a token past it would be
answered at login and refused by every request that carries it.

A token is `header.payload.signature`, each base64url (4 characters for 3 bytes). Its parts
at their largest:

    signature  RS256 with a SIGNING_RSA_MAX_BITS key: 512 bytes  (ES256, Ed25519, HS512: 64)
    header     alg, typ and a kid of KID_MAX printable ASCII characters, each at most 2
               bytes as JSON (a quote is escaped)
    payload    the claims of the hooks (MAX_CLAIMS_BYTES, `hooks`); the ids, times and
               names: a username of 64 characters of 4 bytes each; the issuer and the
               audience, CLAIM_TEXT_MAX_BYTES each; `amr`, each value of RFC 8176's
               registry once (`auth_methods`); and the scopes, SCOPES_MAX_BYTES
               joined by spaces, with `admin` beside them

which come to about 8,100 characters: tests/test_token_budget.py builds that token and
verifies it. Each bound is held where its part is given: the scopes by `clean_scopes`
(`check_scopes`), the issuer and the audience by the settings, the signing key by
`check_signing_key`, the hooks' claims by `hooks`. The sizes are of JSON as the token's
encoder writes it (`token_json_bytes`): UTF-8, and a float as Python spells it (`1e+16`,
where msgspec writes `1e16`).

A record written before the scopes were bounded may hold more. Its tokens are measured
before a session is opened or rotated (`access_token_length`): one past the limit is
refused with TokenTooLargeError (403 `token_too_large`) rather than issued.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from .errors import S3ValidationError
from .keys.names import UnusableKeyError

MAX_SCOPES = 128
"""The most scopes an account may be given (`admin`, the is_admin flag, among them)."""
SCOPES_MAX_BYTES = 2048
"""The most bytes the scopes given may take together, joined by spaces, as the token's JSON
writes them (UTF-8; a quote or a backslash counts two)."""
CLAIM_TEXT_MAX_BYTES = 256
"""The most bytes of S3AUTH_ISSUER and of S3AUTH_AUDIENCE, as the token's JSON writes them."""
KID_MAX = 128
"""The longest `kid` a signing key may bring (printable ASCII)."""
SIGNING_RSA_MAX_BITS = 4096
"""The largest RSA key that may sign: its signature is as long as its modulus."""
_HMAC_SIGNATURE_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
_CURVE_SIGNATURE_BYTES = 64  # ES256 (r and s, 32 bytes each) and Ed25519 alike


def token_json_bytes(value: object) -> int:
    """The bytes of `value` in JSON as the token's encoder writes the claims (joserfc's:
    compact, UTF-8 kept)."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def check_scopes(scopes: list[str]) -> None:
    """S3ValidationError naming `scopes` when there are more than a token carries."""
    if len(scopes) > MAX_SCOPES:
        raise S3ValidationError(
            f"scopes: at most {MAX_SCOPES}, together at most {SCOPES_MAX_BYTES} bytes "
            f"(not {len(scopes)} scopes): an access token carries them all"
        )
    size = token_json_bytes(" ".join(set(scopes))) - 2  # once each, without the quotes
    if size > SCOPES_MAX_BYTES:
        raise S3ValidationError(
            f"scopes: together at most {SCOPES_MAX_BYTES} bytes, joined by spaces (not "
            f"{size}): an access token carries them all"
        )


def check_signing_key(key: Any, kid: str | None) -> None:
    """UnusableKeyError when a signing key's signature or its `kid` would take the largest
    token past what verifiers read."""
    if key.key_type == "RSA":
        bits = key.public_key.key_size
        if bits > SIGNING_RSA_MAX_BITS:
            raise UnusableKeyError(
                f"an RSA signing key of at most {SIGNING_RSA_MAX_BITS} bits (not {bits}): "
                "every token carries its signature"
            )
    if kid is not None and not (0 < len(kid) <= KID_MAX and kid.isascii() and kid.isprintable()):
        raise UnusableKeyError(
            f"the key's kid must be 1 to {KID_MAX} printable ASCII characters: every token "
            "carries it"
        )


def signature_bytes(algorithm: str, key: Any) -> int:
    """The length of the signatures `key` makes for `algorithm` (a joserfc key; read by
    its type, so that settings can import this module without a cryptography library)."""
    if key.key_type == "oct":
        return _HMAC_SIGNATURE_BYTES[algorithm]
    if key.key_type == "RSA":
        bits: int = key.public_key.key_size
        return math.ceil(bits / 8)
    return _CURVE_SIGNATURE_BYTES


def access_token_length(
    header: Mapping[str, Any], claims: Mapping[str, Any], signature: int
) -> int:
    """The length of the compact JWS of `header` and `claims` with a signature of
    `signature` bytes, as joserfc writes it, without signing."""
    header_bytes = len(json.dumps(header, separators=(",", ":")).encode())
    return (
        _b64_length(header_bytes)
        + 1
        + _b64_length(token_json_bytes(claims))
        + 1
        + (_b64_length(signature))
    )


def _b64_length(size: int) -> int:
    """Characters of base64url without padding for `size` bytes."""
    return (4 * size + 2) // 3
