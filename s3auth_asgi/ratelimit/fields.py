"""The rate-limit fields as OpenAPI header objects, for any document that declares them:
the auth app's (`app.limit_fields`) and a host's (`ratelimit.openapi`).

An answer counted against a limit carries `RateLimit-Policy` and `RateLimit` (the IETF
httpapi draft "RateLimit header fields for HTTP"), and `X-RateLimit-Limit`, `-Remaining`
and `-Reset` too where the limiter sends the legacy fields (`RateLimiter.header_items`);
a refusal is a 429 with them and `Retry-After`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

_TEXT = {"type": "string"}
_SECONDS_OR_COUNT = {"type": "integer", "minimum": 0}

REFUSAL_DESCRIPTION = "Rate-limited; see Retry-After"
"""What a 429 of a limit means, in the document."""

RETRY_AFTER: dict[str, dict[str, Any]] = {
    "Retry-After": {"description": "Seconds to wait before retrying", "schema": _TEXT}
}

LEGACY_FIELDS: dict[str, dict[str, Any]] = {
    "X-RateLimit-Limit": {
        "description": "The requests the limit closest to refusing admits per window "
        "(`q` of its RateLimit-Policy item); one limit only, where RateLimit lists each",
        "schema": _SECONDS_OR_COUNT,
    },
    "X-RateLimit-Remaining": {
        "description": "The requests that limit still admits now (`r` of its RateLimit item)",
        "schema": _SECONDS_OR_COUNT,
    },
    "X-RateLimit-Reset": {
        "description": "Seconds until that limit admits one more request (`t`)",
        "schema": _SECONDS_OR_COUNT,
    },
}


def field_headers(names: Sequence[str], legacy: bool) -> dict[str, dict[str, Any]]:
    """The header objects of the fields an answer under the limits `names` carries;
    `legacy`: the limiter's `legacy_headers`."""
    listed = ", ".join(f"`{name}`" for name in names)
    headers: dict[str, dict[str, Any]] = {
        "RateLimit-Policy": {
            "description": f"One item per limit the request is under, of {listed}: "
            '`"name";q=<requests>;w=<window, seconds>` (IETF draft "RateLimit header '
            'fields for HTTP")',
            "schema": _TEXT,
        },
        "RateLimit": {
            "description": "What each of those limits still admits: "
            '`"name";r=<requests now>;t=<seconds until one more>`',
            "schema": _TEXT,
        },
    }
    if legacy:
        headers.update(LEGACY_FIELDS)
    return copy.deepcopy(headers)
