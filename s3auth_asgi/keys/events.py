"""Key events: one record per change of the signing keys kept in the store, for the log
system that keeps the auth events (`events`) to keep and alert on.

A `KeyEvent` says what changed (`name`: `key_create`, the first key set, made by the first
process to find none; `key_rotate`, a key added; `key_retire`, a key's retirement set), how
it ended (`outcome`: success, or failure with `reason`), which key (`kid`: never its
material), when it signs or retires, what the write took out of the set (`removed`: keys
withdrawn by a rotation at once, the key a retirement at once drops, keys past their
retirement), and who: `by` is `cli` (`s3auth keys`) or `service` (a process of the
service, or the host's own code calling `KeyStore`); the record's own `process` attribute is
its pid. It is emitted once the write has landed, by the writer whose write it was: an
attempt that lost a conditional write to another change, and tried again, logs nothing,
nor does a read that found the set changed by another.

The logger is `s3auth_asgi.events.keys`, a child of the auth events' logger, so a handler
there takes both: INFO for a change, WARNING for a change made at once (`--now`: a leak's)
and for a failure. The record carries the event as `record.auth_event`, as an auth event's
does, so that a formatter of auth events writes key events unchanged; its flat attributes
are those of an auth event (the ones a key event has not are None) and `kid`, `removed`,
`by`. A kid is an id (a thumbprint); one typed for a key that is not there is not logged.
"""

from __future__ import annotations

import logging
from typing import Any, Literal, get_args

import msgspec

logger = logging.getLogger("s3auth_asgi.events.keys")

KeyEventName = Literal["key_create", "key_rotate", "key_retire"]
KEY_EVENT_NAMES: frozenset[str] = frozenset(get_args(KeyEventName))
Outcome = Literal["success", "failure"]
Actor = Literal["cli", "service"]
"""Who changes the keys: `s3auth keys`, or a process of the service (or a host's code)."""

REFUSED = "refused"
"""The reason of a change refused by the rules of the key set (`keys.stored`)."""
_AUTH_EVENT_ONLY = ("user_id", "actor_id", "session_id", "client", "previous_email")
"""An auth event's flat attributes a key event has not: None on its record, so that a
formatter naming them takes both."""


class KeyEvent(msgspec.Struct, frozen=True, kw_only=True):
    name: KeyEventName
    outcome: Outcome
    at: float
    """Unix seconds, on the writer's clock (the `now` of the change)."""
    by: Actor
    kid: str | None = None
    """The key made, added or retired; None for a failure before a key was found."""
    reason: str | None = None
    """Of a failure: `refused` (a rule of the key set), or a problem code
    (`store_unavailable`)."""
    activates_at: float | None = None
    """Of a key added: when it signs."""
    retires_at: float | None = None
    """Of a retirement: when the key stops being published and accepted."""
    immediately: bool = False
    """A rotation or retirement made at once (`--now`), as for a key that leaked."""
    removed: tuple[str, ...] = ()
    """The kids the write took out of the stored set."""


def level_of(event: KeyEvent) -> int:
    return logging.INFO if event.outcome == "success" and not event.immediately else logging.WARNING


def tell(
    name: KeyEventName, at: float, by: Actor, *, outcome: Outcome = "success", **fields: Any
) -> None:
    """Emit the event of a change (`KeyEvent`'s other fields as keywords)."""
    emit(KeyEvent(name=name, outcome=outcome, at=at, by=by, **fields))


def emit(event: KeyEvent) -> None:
    """Write `event` to the `s3auth_asgi.events.keys` logger."""
    level = level_of(event)
    if not logger.isEnabledFor(level):
        return
    fields: dict[str, object] = dict.fromkeys(_AUTH_EVENT_ONLY)
    fields.update(
        auth_event=event,
        event=event.name,
        outcome=event.outcome,
        reason=event.reason,
        kid=event.kid,
        removed=list(event.removed),
        by=event.by,
    )
    reason = f" {event.reason}" if event.reason else ""
    logger.log(
        level,
        "key event %s %s%s kid=%s by %s",
        event.name,
        event.outcome,
        reason,
        event.kid,
        event.by,
        extra=fields,
    )
