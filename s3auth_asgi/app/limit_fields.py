"""The rate-limit fields in the OpenAPI document, as the app's limiter makes them.

An answer counted against a limit carries `RateLimit-Policy` and `RateLimit` (the IETF
httpapi draft "RateLimit header fields for HTTP"), and `X-RateLimit-Limit`, `-Remaining`
and `-Reset` too where the limiter sends the legacy fields (`RateLimiter.header_items`);
a refusal is a 429 with them and `Retry-After`. Which answers of an operation are counted
is the table's (`Operation.limits`, `handler_limits`, `returned_errors`); which of its
limits count, the limiter's: a name it lacks is not counted, and without a limiter nothing
is, so neither a field nor a 429 is declared for it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from ..ratelimit import RateLimiter
from .operations import Operation

_TEXT = {"type": "string"}
_SECONDS_OR_COUNT = {"type": "integer", "minimum": 0}

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


def limited_answers(op: Operation, limiter: RateLimiter | None) -> dict[int, list[str]]:
    """By status, the limits of `limiter` whose fields answers of `op` with that status may
    carry; 429 with those that may refuse it. A status none of whose limits the limiter
    has is left out."""
    if limiter is None:
        return {}
    shown: dict[int, list[str]] = {op.success_status: [*op.limits], 429: [*op.limits]}
    for status in op.returned_errors:
        shown.setdefault(status, []).extend(op.limits)
    handler = op.handler_limits
    if handler is not None:
        shown[op.success_status] += handler.shown
        shown[429] += handler.counted
        for status in handler.charged:
            shown.setdefault(status, []).extend(handler.shown)
    found = {
        status: [name for name in dict.fromkeys(names) if name in limiter.limits]
        for status, names in shown.items()
    }
    return {status: names for status, names in found.items() if names}


def field_headers(names: Sequence[str], legacy: bool) -> dict[str, dict[str, Any]]:
    """The header objects of the fields an answer under `names` carries; `legacy`: the
    limiter's `legacy_headers`."""
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
