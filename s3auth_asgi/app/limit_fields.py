"""The rate-limit fields in the OpenAPI document, as the app's limiter makes them.

The header objects are `ratelimit.fields`'. Which answers of an operation are counted
is the table's (`Operation.limits`, `handler_limits`, `returned_errors`); which of its
limits count, the limiter's: a name it lacks is not counted, and without a limiter nothing
is, so neither a field nor a 429 is declared for it.
"""

from __future__ import annotations

from ..ratelimit import RateLimiter
from .operations import Operation


def limited_answers(op: Operation, limiter: RateLimiter | None) -> dict[int, list[str]]:
    """By status, the limits of `limiter` whose fields answers of `op` with that status may
    carry; 429 with those that may refuse it, and with none where only limits that show no
    fields (`HandlerLimits.unshown`) may. A status none of whose limits the limiter has is
    left out."""
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
    limited = {status: names for status, names in found.items() if names}
    if handler is not None and any(name in limiter.limits for name in handler.unshown):
        limited.setdefault(429, [])  # refused with Retry-After alone
    return limited
