"""Auth events: one record per login, registration, refresh, logout, password or email
change, and administrator action, for a log system to keep and alert on.

An event is an `AuthEvent` Struct: what happened (`name`), how it ended (`outcome`: success;
failure, with the problem code as `reason`; refused, by a rate limit), who (`user_id`, the
account acted on; `actor_id`, the administrator acting, when it is another), which session,
and from which client address and User-Agent; a change of address, the address it had before
(`previous_email`), to put back if the change was not the owner's; a login's second step
or a re-authentication whose code was accepted, how it was given (`second_factor`: the
app's code or a recovery code, and then how many are left: `code_uses`). It never holds a
password, a token, a hash or a name typed at a login (a mistyped password often lands in
the username field): the account of a failed login is not known, and is not guessed at.

`emit` writes an event as one record of the standard logger `s3auth_asgi.events`: INFO for
successes, WARNING for failures and refusals, ERROR for a refresh token presented twice (a
stolen token, or a client bug). The message reads `auth event login failure
invalid_credentials`; the fields are on the record as `record.auth_event` (the Struct) and
as flat attributes `event`, `outcome`, `reason`, `user_id`, `actor_id`, `session_id`,
`client`, `user_agent`, `previous_email`, `second_factor`, `recovery_codes_left`, for
formatters that take attributes (e.g. a JSON formatter).
Route the logger where you keep security logs; nothing is emitted unless a handler or
`logging` config takes INFO from it. A handler that raises (a log shipper whose server is
down) costs that record alone (`log_record`): what the event tells of has happened, and its
request is answered, kept in the audit trail and told to the hooks all the same.

An event is small whoever makes it: the auth app cuts what a client sends before an event
holds it, and a host's code makes events with whatever text it has (`new_event`, then
`emit` and `audit.record`). So every text field is cleaned of control and format characters
and cut to TEXT_MAX as the event is made, built, copied or read back (`__post_init__`): one
trail object or log record holds at most 830 characters of text, a trail object about
3.3 KB (a kept event's user id is one, 32 characters).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Literal, get_args

import msgspec

from .code_uses import SecondFactor
from .identifiers import DEVICE_INFO_MAX, EMAIL_MAX, IP_ADDRESS_MAX, clean_text
from .types import Clock

logger = logging.getLogger("s3auth_asgi.events")
failures = logging.getLogger("s3auth_asgi")

EventName = Literal[
    "register",
    "login",
    "refresh",
    "logout",
    "logout_all",
    "session_end",
    "password_change",
    "profile_change",
    "admin_user_update",
    "admin_user_delete",
    "admin_user_revoke",
    "password_reset_request",
    "password_reset",
    "email_verification_request",
    "email_verify",
    "email_change_request",
    "email_change",
    "admin_user_create",
    "admin_password_set",
    "admin_password_reset",
    "admin_session_end",
    "admin_sessions_end_all",
    "new_device_notice",
    "failed_logins_notice",
    "login_totp",
    "totp_start",
    "totp_confirm",
    "totp_disable",
    "totp_recovery_codes",
    "admin_totp_disable",
    "reauthenticate",
]
Outcome = Literal["success", "failure", "refused"]

ALARMING_REASONS = frozenset({"refresh_token_reused"})
"""Failures that mean an attack more often than a mistake: logged at ERROR."""
_CODE_MAX = 64
"""Twice the longest id, more than twice the longest problem code."""
TEXT_MAX: dict[str, int] = {
    "reason": _CODE_MAX,
    "user_id": _CODE_MAX,
    "actor_id": _CODE_MAX,
    "session_id": _CODE_MAX,
    "client": IP_ADDRESS_MAX,
    "user_agent": DEVICE_INFO_MAX,
    "previous_email": EMAIL_MAX,
}
"""The most characters each text field of an event holds."""


class AuthEvent(msgspec.Struct, frozen=True, kw_only=True):
    name: EventName
    outcome: Outcome
    at: float
    """Unix seconds."""
    reason: str | None = None
    """The problem code of a failure or refusal (`errors.md`)."""
    user_id: str | None = None
    actor_id: str | None = None
    session_id: str | None = None
    client: str | None = None
    """The client address, as the trusted-proxy rules resolve it."""
    user_agent: str | None = None
    """The client's User-Agent, as its session records it (`user_agents`); None for an
    event without a request (the `s3auth` command, the service called from code)."""
    previous_email: str | None = None
    """Of a change of address (`email_change_request`, `email_change`): the account's
    address before it."""
    second_factor: SecondFactor | None = None
    """Of `login_totp` and `reauthenticate` whose code was accepted: the authenticator
    app's code (`totp`) or a recovery code (`recovery_code`)."""
    recovery_codes_left: int | None = None
    """Of a recovery code's use: how many of the account's are left unused."""

    def __post_init__(self) -> None:
        for name, longest in TEXT_MAX.items():
            value = getattr(self, name)
            if isinstance(value, str) and not _kept_as_is(value, longest):
                cut = clean_text(value, name, longest, truncate=True)
                msgspec.structs.force_setattr(self, name, cut)


def _kept_as_is(value: str, longest: int) -> bool:
    """Whether `value` is what `clean_text` would make of it: the events the package makes
    are, and skip its walk through each character."""
    return 0 < len(value) <= longest and value.isprintable() and value == value.strip()


EVENT_NAMES: frozenset[str] = frozenset(get_args(EventName))


def new_event(
    name: EventName,
    outcome: Outcome,
    *,
    reason: str | None = None,
    user_id: str | None = None,
    actor_id: str | None = None,
    session_id: str | None = None,
    client: str | None = None,
    user_agent: str | None = None,
    previous_email: str | None = None,
    second_factor: SecondFactor | None = None,
    recovery_codes_left: int | None = None,
    clock: Clock,
) -> AuthEvent:
    """An event, stamped by `clock`: the service's, so that an event's time, its place in
    the audit trail and its retention agree with every other time the service keeps. An
    actor who is the user acted on is not named twice."""
    return AuthEvent(
        name=name,
        outcome=outcome,
        at=clock(),
        reason=reason,
        user_id=user_id,
        actor_id=actor_id if actor_id != user_id else None,
        session_id=session_id,
        client=client,
        user_agent=user_agent,
        previous_email=previous_email,
        second_factor=second_factor,
        recovery_codes_left=recovery_codes_left,
    )


def level_of(event: AuthEvent) -> int:
    if event.outcome == "success":
        return logging.INFO
    if event.reason in ALARMING_REASONS:
        return logging.ERROR
    return logging.WARNING


def log_fields(event: AuthEvent) -> dict[str, object]:
    """`event` as a log record's attributes: the Struct, and its fields flat."""
    return {
        "auth_event": event,
        "event": event.name,
        "outcome": event.outcome,
        "reason": event.reason,
        "user_id": event.user_id,
        "actor_id": event.actor_id,
        "session_id": event.session_id,
        "client": event.client,
        "user_agent": event.user_agent,
        "previous_email": event.previous_email,
        "second_factor": event.second_factor,
        "recovery_codes_left": event.recovery_codes_left,
    }


def emit(event: AuthEvent) -> None:
    """Write `event` to the `s3auth_asgi.events` logger."""
    level = level_of(event)
    if not logger.isEnabledFor(level):
        return
    reason = f" {event.reason}" if event.reason else ""
    fields = log_fields(event)
    log_record(
        logger, level, "auth event %s %s%s", event.name, event.outcome, reason, fields=fields
    )


def log_record(
    log: logging.Logger, level: int, message: str, *args: object, fields: Mapping[str, object]
) -> None:
    """`log.log`, for an event of something that has happened: a handler that raises (one
    that does not catch its own failures, as `logging.Handler.handleError` asks) loses this
    record, and must not turn an answered operation into a 500, or a key change that landed
    into a reported failure that an administrator repeats. The failure is logged on the
    package's logger with its traceback, unless that logger's handlers fail too."""
    try:
        log.log(level, message, *args, extra=dict(fields))
    except Exception:
        with contextlib.suppress(Exception):
            failures.exception("%s not logged: a handler of %s failed", message % args, log.name)
