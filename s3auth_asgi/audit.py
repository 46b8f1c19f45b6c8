"""The audit trail: each user's security events, kept in the store for the user and the
administrators to read (`GET /auth/me/events`, `GET /auth/admin/users/{id}/events`).

One object per event, `audit/{user_id}/{age}.{random}` (`storage.keys`), written with one
create and no read: nothing is ever rewritten, so concurrent events cannot lose each other
and an event costs 1 PUT. `age` counts down with time, so a listing, which is in key
order, gives the newest first, and a page is a LIST from a cursor plus a GET per event.
The sweep (`cleanup_expired_tokens`) deletes events older than S3AUTH_AUDIT_RETENTION_DAYS,
judging from the keys alone; 0 keeps none (and the sweep deletes what is left).

Kept: the events in AUDITED that name a user, whatever their outcome (a refused password
change is worth knowing about), and a refresh token presented twice (`ALARMING_REASONS`),
which ended the session it names. A failed login is kept for the account whose name was
typed; under a name that is nobody's, in a decoy trail (of the user id that name's decoy
reads, which no user has), so that the failure costs the store the same either way. A
login refused by the account's failure budget is kept once per time the budget is spent,
written beside the failure that spent it (`app.events.spent_of`): the refusals themselves
write nothing. An event holds what the event log holds (`events`): never a password, a
token or a hash, and no more text than its bound.

The administrators read a trail as it is kept. Its owner reads it through `owner_view`: an
administrator's action on the account says so (`by_administrator`) and shows neither who
(`actor_id`) nor the session, address or User-Agent it came from, which are the
administrator's and not the owner's to know; the owner's own events keep the owner's
session, address and User-Agent (the owner's own, no secret from the owner), an admin
operation that refused the owner as no administrator (`CALLER_REFUSED`) too.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Annotated, get_args

import msgspec

from .errors import S3ValidationError
from .events import ALARMING_REASONS, AuthEvent, EventName
from .identifiers import is_id
from .storage import Store, keys
from .storage.access import check_page_size, gather, get_or_none, named_page
from .storage.batching import delete_as_listed
from .types import Clock

AUDITED: frozenset[EventName] = frozenset(
    (
        "register",
        "login",
        "logout",
        "logout_all",
        "session_end",
        "password_change",
        "password_reset",
        "email_verify",
        "email_change_request",
        "email_change",
        "profile_change",
        "admin_user_create",
        "admin_user_update",
        "admin_user_delete",
        "admin_user_revoke",
        "admin_password_set",
        "admin_password_reset",
        "admin_session_end",
        "login_totp",
        "totp_start",
        "totp_confirm",
        "totp_disable",
        "totp_recovery_codes",
        "admin_totp_disable",
        "reauthenticate",
    )
)
"""A deleted user's trail stays until the retention has passed: it is the record of what
happened to the account, deletion included, and an administrator can still read it."""
BY_ADMINISTRATORS: frozenset[EventName] = frozenset(
    name for name in get_args(EventName) if name.startswith("admin_")
)
"""The events of the administrators' tools (the admin endpoints and the CLI): their names
say so."""
CALLER_REFUSED: frozenset[str] = frozenset(("insufficient_scope", "invalid_token"))
"""The reasons an admin operation refuses its caller for the caller's own standing (not
an administrator, or its account gone or disabled): the event names the caller, and is
the caller's own, no administrator's (`app.endpoint`)."""
CURSOR_MAX = 64
EVENT_ID_PATTERN = r"[0-9]+\.[A-Za-z0-9]+"
"""An event's key after its trail's prefix (`keys`): its age, then a random suffix."""
_EVENT_ID = re.compile(EVENT_ID_PATTERN)


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """An event as listed: the event, and its id (the cursor of the next page)."""

    id: str
    event: AuthEvent


class OwnerEvent(AuthEvent, frozen=True, kw_only=True):
    """An event as the account's owner reads it. An administrator's action shows neither
    the administrator nor their session, address or User-Agent: `session_id`, `client` and
    `user_agent` are null."""

    actor_id: None = None
    by_administrator: Annotated[
        bool, msgspec.Meta(description="Whether an administrator did this to the account.")
    ]


class OwnerAuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """An event as its owner reads it, and its id (the cursor of the next page)."""

    id: str
    event: OwnerEvent


def owner_view(entry: AuditEntry) -> OwnerAuditEntry:
    """`entry` as the account's owner may read it."""
    event = entry.event
    # By the name, not by `actor_id`: the CLI names no actor, and an administrator acting
    # on their own account reads the full record in the administrators' view. A call the
    # operation refused for the caller's own standing is the caller's, no administrator's.
    by_administrator = event.name in BY_ADMINISTRATORS and event.reason not in CALLER_REFUSED
    shown = msgspec.structs.asdict(event) | {"actor_id": None}
    if by_administrator:
        shown.update(session_id=None, client=None, user_agent=None)
    return OwnerAuditEntry(
        id=entry.id, event=OwnerEvent(**shown, by_administrator=by_administrator)
    )


class AuditTrail:
    def __init__(self, store: Store, *, clock: Clock, retention_seconds: int) -> None:
        self.store = store
        self.clock = clock
        self.retention_seconds = retention_seconds

    def keeps(self, event: AuthEvent) -> bool:
        """Whether `event` goes into a trail: never with a retention of 0 (the trail is
        off, and a login costs no request for it), nor for an operation that found no such
        user (an administrator's mistyped id would start a trail of nobody's)."""
        return (
            self.retention_seconds > 0
            and event.user_id is not None
            and is_id(event.user_id)
            and (event.name in AUDITED or event.reason in ALARMING_REASONS)
            and event.reason != "user_not_found"
        )

    async def record(self, event: AuthEvent) -> bool:
        """Append `event` to its user's trail (1 PUT) if it is kept; whether it was."""
        if not self.keeps(event):
            return False
        assert event.user_id is not None
        written_ms = int(event.at * 1000)
        key = keys.audit_event(event.user_id, written_ms, secrets.token_hex(6))
        await self.store.create(key, event)
        return True

    async def page(
        self, user_id: str, *, after: str | None = None, limit: int = 50
    ) -> tuple[list[AuditEntry], str | None]:
        """A page of the user's events, newest first, and the cursor of the next (None at
        the end): 1 LIST and 1 GET per event. Only an event's key (`{age}.{random}`) is
        one: another tool's objects in the trail (a backup beside an event, notes) are
        neither read nor shown, and no page ends at one (1 LIST more per page of them
        alone), so the cursor is always an event's id."""
        check_page_size(limit, 200)
        if after is not None and not _is_event_id(after):
            raise S3ValidationError("The cursor is not valid")
        prefix = keys.user_audit(user_id)
        offset = prefix + after if after is not None else None
        ids, more = await named_page(self.store, prefix, offset, limit, _event_id_in(prefix))
        found = await gather([get_or_none(self.store, prefix + i, AuthEvent) for i in ids])
        entries = [
            AuditEntry(id=event_id, event=item.value)
            for event_id, item in zip(ids, found, strict=True)
            if item is not None
        ]
        return entries, ids[-1] if more and ids else None

    async def cleanup(self) -> int:
        """Delete the events older than the retention; returns how many."""
        oldest_kept_ms = (self.clock() - self.retention_seconds) * 1000
        expired = (
            info.key
            async for info in self.store.list(keys.AUDIT)
            if (written := keys.audit_written_ms(info.key)) is not None and written < oldest_kept_ms
        )
        return await delete_as_listed(self.store, expired)


def _event_id_in(prefix: str) -> Callable[[str], str | None]:
    """The event id of a key listed under the trail `prefix`; None for another object."""

    def event_id(key: str) -> str | None:
        name = key.removeprefix(prefix)
        return name if _is_event_id(name) else None

    return event_id


def _is_event_id(name: str) -> bool:
    """Whether `name` is what an event's key has after its trail's prefix (`keys`)."""
    return len(name) <= CURSOR_MAX and _EVENT_ID.fullmatch(name) is not None
