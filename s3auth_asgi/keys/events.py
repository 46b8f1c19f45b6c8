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
attempt that lost a conditional write to another change, and tried again, logs nothing.

Every other process learns of a change by reading the set, and logs what it found, `by`
`observer` (`keys.observed`): `key_set_changed`, once per process, when a read finds the set
changed from the one it held (the keys `added`, `removed` and given a retirement,
`retiring`, and the kids kept with another key under them, `replaced`), and `key_activated`
when the process first signs with a key other than the one it signed with before
(activation is no write: each process's clock decides it). A JwksVerifier logs
`key_set_changed` for the JWKS it reads, naming the kids added, removed and replaced.

The logger is `s3auth_asgi.events.keys`, a child of the auth events' logger, so a handler
there takes both: INFO for a change, WARNING for a change made at once (`--now`: a leak's),
for a key found replaced under its kid, and for a failure. The record carries the event as
`record.auth_event`, as an auth event's does, so that a formatter of auth events writes key
events unchanged; its flat attributes are those of an auth event (the ones a key event has
not are None) and `kid`, `removed`, `added`, `retiring`, `replaced` (lists of kids) and
`by`. A kid is an id (a thumbprint); one typed for a key that is not there is not logged.
"""

from __future__ import annotations

import logging
from typing import Any, Literal, get_args

import msgspec

from ..events import log_record

logger = logging.getLogger("s3auth_asgi.events.keys")

KeyEventName = Literal["key_create", "key_rotate", "key_retire", "key_set_changed", "key_activated"]
KEY_EVENT_NAMES: frozenset[str] = frozenset(get_args(KeyEventName))
Outcome = Literal["success", "failure"]
Actor = Literal["cli", "service"]
"""Who changes the keys: `s3auth keys`, or a process of the service (or a host's code)."""
By = Literal[Actor, "observer"]
"""Who logs an event: the writer of the change, or a process that read it (`observer`)."""

REFUSED = "refused"
"""The reason of a change refused by the rules of the key set (`keys.stored`)."""
_AUTH_EVENT_ONLY = (
    "user_id",
    "actor_id",
    "session_id",
    "client",
    "user_agent",
    "previous_email",
    "second_factor",
    "recovery_codes_left",
)
"""An auth event's flat attributes a key event has not: None on its record, so that a
formatter naming them takes both."""


class KeyTimes(msgspec.Struct, frozen=True):
    """A key an observer found added or given a retirement: its kid and times (None for
    a JWKS's key, which carries none)."""

    kid: str
    activates_at: float | None = None
    retires_at: float | None = None


class KeyEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One change of the stored signing keys, as its writer or an observer logs it
    (`record.auth_event` of its log record)."""

    name: KeyEventName
    outcome: Outcome
    at: float
    """Unix seconds, on the writer's clock (the `now` of the change), or the observer's when
    it read the set or signed."""
    by: By
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
    """The kids the write took out of the stored set (an observer's: that the set it read
    no longer has)."""
    added: tuple[KeyTimes, ...] = ()
    """Of `key_set_changed`: the keys the set read has and the one held had not."""
    retiring: tuple[KeyTimes, ...] = ()
    """Of `key_set_changed`: the keys given a retirement (or another) since the set held."""
    replaced: tuple[str, ...] = ()
    """Of `key_set_changed`: the kids the set read has with another key under them (another
    RFC 7638 thumbprint) than the set held: never a rotation of this package's."""


def level_of(event: KeyEvent) -> int:
    usual = event.outcome == "success" and not event.immediately and not event.replaced
    return logging.INFO if usual else logging.WARNING


def tell(
    name: KeyEventName, at: float, by: By, *, outcome: Outcome = "success", **fields: Any
) -> None:
    """Emit the event of a change (`KeyEvent`'s other fields as keywords)."""
    emit(KeyEvent(name=name, outcome=outcome, at=at, by=by, **fields))


def emit(event: KeyEvent) -> None:
    """Write `event` to the `s3auth_asgi.events.keys` logger."""
    level = level_of(event)
    if not logger.isEnabledFor(level):
        return
    added = [k.kid for k in event.added]
    retiring = [k.kid for k in event.retiring]
    fields: dict[str, object] = dict.fromkeys(_AUTH_EVENT_ONLY)
    fields.update(
        auth_event=event,
        event=event.name,
        outcome=event.outcome,
        reason=event.reason,
        kid=event.kid,
        removed=list(event.removed),
        added=added,
        retiring=retiring,
        replaced=list(event.replaced),
        by=event.by,
    )
    reason = f" {event.reason}" if event.reason else ""
    kids = "".join(
        f" {label}={','.join(named)}"
        for label, named in (
            ("added", added),
            ("retiring", retiring),
            ("removed", event.removed),
            ("replaced", event.replaced),
        )
        if named
    )
    log_record(
        logger,
        level,
        "key event %s %s%s kid=%s by %s%s",
        event.name,
        event.outcome,
        reason,
        event.kid,
        event.by,
        kids,
        fields=fields,
    )
