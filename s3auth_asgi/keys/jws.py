"""Verify a compact JWS against a key set: strict header, key by kid, algorithm by key.

In this order, each step refusing with InvalidTokenError: three base64url segments; a
protected header that is strict JOSE JSON asking for no extension (`jose_json`); the
header and the signature within joserfc's bounds on their size (all of which
`compact_parts` checks with no key at all); a `kid` naming a live key of the set
(UnknownSigningKeyError otherwise, a refusal a verifier may answer by reading its keys
again); an `alg` that is a string and one the key is pinned to; for ES256, an s in the low
half (`low_s`: a token has one spelling); the signature, over the segments as received.
The payload is returned unread. An `alg` or a signature that does not match the key is a
KeyMismatchError naming the kid: where keys come from a source that may put another key
under a kid (a JWKS), that too is worth a read. `check_form` is what a verifier can refuse
before it has read a key: what `compact_parts` refuses, and an `alg` no key it may ever
hold is pinned to.

Nothing in the header chooses where keys come from: `jku`, `x5u`, `jwk` and `x5c` are
never read, so no request is made and no key is trusted because a token says so.

joserfc's own decoding reads the header with the lenient `json.loads` (a BOM, UTF-16 and
duplicate names pass), so it is not used: `validate_compact` gets the strict header and
checks the parameters, the algorithm against the key's and the signature.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from joserfc.errors import JoseError
from joserfc.jws import CompactSignature, JWSRegistry, validate_compact

from ..errors import InvalidTokenError, KeyMismatchError, UnknownSigningKeyError
from ..jose_json import base64url_decode, protected_header
from .keyset import KeySet
from .low_s import is_high_s

Parts = tuple[dict[str, Any], bytes, bytes, bytes]
"""A compact JWS read as far as no key is needed: its header, and its three segments."""

# joserfc's bounds on a header and a signature: a key's registry (`KeyEntry.registry`) has
# the same, so that they are checked once, before a key is looked for.
_SIZES = JWSRegistry()


def compact_parts(token: str | bytes) -> Parts:
    """The header and the segments of what may be a compact JWS, checked as far as that
    needs no key (see the module); InvalidTokenError otherwise."""
    try:
        raw = token.encode("ascii") if isinstance(token, str) else token
    except UnicodeEncodeError:
        raise InvalidTokenError("The token could not be verified (not ASCII)") from None
    segments = raw.split(b".")
    if len(segments) != 3:
        raise InvalidTokenError("The token could not be verified (not a compact JWS)")
    header_segment, payload_segment, signature_segment = segments
    header = protected_header(header_segment)
    try:
        _SIZES.validate_header_size(header_segment)
        _SIZES.validate_signature_size(signature_segment)
    except JoseError as exc:
        raise InvalidTokenError(f"The token could not be verified ({reason(exc)})") from None
    return header, header_segment, payload_segment, signature_segment


def check_form(token: str | bytes, algorithms: Container[str]) -> None:
    """InvalidTokenError unless `token` passes `compact_parts` and names in `alg` one of
    `algorithms`, those a key its verifier may ever hold could be pinned to: what can be
    refused before a key is read."""
    alg = compact_parts(token)[0].get("alg")
    if not isinstance(alg, str) or alg not in algorithms:
        raise InvalidTokenError("The token could not be verified (an algorithm no key has)")


def verify_compact(token: str | bytes, keys: KeySet, now: float) -> tuple[dict[str, Any], bytes]:
    """The header and the payload octets of a compact JWS signed by a key of `keys`."""
    header, header_segment, payload_segment, signature_segment = compact_parts(token)
    entry = keys.get(header.get("kid"), now)
    if entry is None:
        raise UnknownSigningKeyError("The token names an unknown key")
    alg = header.get("alg")
    # A str first (RFC 7515 §4.1.1): a list or an object is not hashable, and set
    # membership would raise TypeError for it, not refuse it.
    if not isinstance(alg, str) or alg not in entry.accepted:
        raise KeyMismatchError("The token's algorithm does not match its key", kid=entry.kid)
    if entry.low_s and is_high_s(base64url_decode(signature_segment)):
        raise InvalidTokenError("The token could not be verified (high_s)")
    signed = CompactSignature(header, base64url_decode(payload_segment))
    signed.segments = {
        "header": header_segment,
        "payload": payload_segment,
        "signature": signature_segment,
    }
    try:
        valid = validate_compact(signed, entry.key, registry=entry.registry)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        detail = f"The token could not be verified ({reason(exc)})"
        raise KeyMismatchError(detail, kid=entry.kid) from None
    if not valid:
        detail = "The token could not be verified (bad_signature)"
        raise KeyMismatchError(detail, kid=entry.kid)
    return header, signed.payload


def reason(exc: Exception) -> str:
    """A short name for why joserfc refused, fit for a problem detail."""
    error = getattr(exc, "error", None)
    return str(error) if error else type(exc).__name__
