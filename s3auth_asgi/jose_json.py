"""Strict JOSE JSON: the header and claims of a compact JWS, read one way only.

A recipient base64url-decodes the header and the payload and checks that each is "a UTF-8
representation of a completely valid JSON object" (RFC 7515 §5.2); member names must be
unique, and a parser may either refuse duplicates or keep the last one (RFC 7515 §4, RFC
7519 §4). We refuse: when two parsers disagree on which of two `sub` members counts, a
token one component checked means something else to the next. An object is accepted here
only if it is

- base64url without padding, in its one canonical spelling;
- UTF-8 without a byte-order mark (RFC 8259 §8.1, RFC 8725 §3.7): UTF-16 or UTF-32 text,
  a BOM, invalid UTF-8 and lone surrogates are refused;
- RFC 8259 JSON and nothing after it: no NaN or Infinity, no float beyond a double's range;
- an object, with every member name unique at every depth.

msgspec's decoder refuses all but the last, and keeps the last of duplicate names silently,
as every Python JSON decoder does; so the last check is ours (`json_names`), made cheap for
the tokens we see. Encoding the decoded object again gives back the input, byte for byte,
for compact ASCII JSON without escapes — what this package and most JOSE libraries write —
and a dict cannot hold a name twice, so an exact round trip proves there was no duplicate
for the price of one encode. Any other input (whitespace, escapes, numbers written
differently) is checked by `json_names`, and whatever it cannot read is refused too.

`protected_header` adds the header rules that hold for every algorithm: no `crit`, since
we implement no extension and an empty list is itself invalid (RFC 7515 §4.1.11), no
`b64`, whose unencoded payloads (RFC 7797) only exist with `crit`, and no `cty` naming a
JWT: the payload of a nested JWT is another token (RFC 7519 §7.2 step 8), which we never
unwrap, and a claims set said to be one means one thing to us and another to a recipient
that follows the header.

Every refusal is an InvalidTokenError, so a malformed token is a 401, never a 500; that
includes nesting too deep for either decoder, which both report with RecursionError.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import msgspec

from .errors import InvalidTokenError
from .json_names import RepeatedName, check_unique_names

_DECODER = msgspec.json.Decoder(dict[str, Any])
_ENCODER = msgspec.json.Encoder()
UNSUPPORTED_HEADER_PARAMETERS = ("crit", "b64")
"""Header parameters that ask for an extension; we implement none, so their presence alone
makes a token invalid, whatever their value."""
NESTED_CONTENT_TYPES = frozenset(("jwt", "application/jwt"))
"""A `cty` that makes the payload a nested JWT, lowercased before it is looked up here:
media types compare without regard to case, and `application/` may be left out (RFC 7515
§4.1.10)."""


def _refusal(reason: str) -> InvalidTokenError:
    return InvalidTokenError(f"The token could not be verified ({reason})")


def b64url(data: bytes) -> str:
    """base64url without padding, as every JOSE segment and this package's MACs are."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# base64url to base64, with the characters base64url lacks ("+", "/", "=") turned into one
# the strict decoder refuses, so one translation both converts and screens them.
_TO_BASE64 = bytes.maketrans(b"-_+/=", b"+/***")
# The last character of a segment that is one or two characters short of a quantum carries
# bits past the data's end; canonical base64url has them zero (RFC 4648 §3.5), which
# leaves these characters.
_LAST_CHARACTERS = (b"", b"AEIMQUYcgkosw048", b"AQgw")


def base64url_decode(segment: bytes) -> bytes:
    """The octets of a base64url segment; InvalidTokenError if it is not canonical:
    no padding, no character outside the URL-safe alphabet, no bits set past the data."""
    missing = -len(segment) % 4
    if missing == 3 or (missing and segment[-1] not in _LAST_CHARACTERS[missing]):
        raise _refusal("a segment is not base64url")
    try:
        return binascii.a2b_base64(segment.translate(_TO_BASE64) + b"=" * missing, strict_mode=True)
    except binascii.Error:
        raise _refusal("a segment is not base64url") from None


def json_object(data: bytes) -> dict[str, Any]:
    """The JSON object `data` holds, if it is strict JOSE JSON (see the module);
    InvalidTokenError otherwise."""
    try:
        value = _DECODER.decode(data)
    except msgspec.DecodeError:
        raise _refusal("not a JSON object in UTF-8") from None
    except RecursionError:  # msgspec raises it, not DecodeError, past its depth limit
        raise _refusal("nested too deep") from None
    if _ENCODER.encode(value) != data:
        _check_names_are_unique(data)
    return value


def _check_names_are_unique(data: bytes) -> None:
    """Refuse `data` (valid JSON in UTF-8) if an object in it names a member twice, or if
    the standard library cannot read it (nesting too deep, an integer too long): what
    cannot be checked is refused."""
    try:
        check_unique_names(data)
    except RepeatedName:
        raise _refusal("a member name occurs twice") from None
    except ValueError:
        raise _refusal("its JSON could not be checked for duplicate names") from None


def protected_header(segment: bytes) -> dict[str, Any]:
    """The header of a compact JWS from its first segment; InvalidTokenError unless it is
    strict JOSE JSON asking for no extension."""
    header = json_object(base64url_decode(segment))
    for name in UNSUPPORTED_HEADER_PARAMETERS:
        if name in header:
            raise _refusal(f"the header names {name!r}, an extension not supported")
    cty = header.get("cty")
    if isinstance(cty, str) and cty.lower() in NESTED_CONTENT_TYPES:
        raise _refusal("the header's 'cty' names a nested JWT, not supported")
    return header
