"""The request and response bodies of the account-lifecycle endpoints (password reset,
email verification, the audit trail) and of the administrators' account tools. Their
passwords and tokens show as `<hidden>` when a body is printed (`hidden_fields`)."""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec
from msgspec import UNSET, Meta, UnsetType

from ..audit import CURSOR_MAX, EVENT_ID_PATTERN, AuditEntry, OwnerAuditEntry
from ..hidden_fields import HidesSecrets
from ..models import SessionInfo
from .schemas import Email, FullName, Password, Profile, Scopes, Username

MailedToken = Annotated[
    str, Meta(description="The token from the mailed link (after `#token=`).", max_length=256)
]
EventCursor = Annotated[
    str, Meta(extra_json_schema={"pattern": f"^{EVENT_ID_PATTERN}$", "maxLength": CURSOR_MAX})
]
"""An event's id, which the trail checks (`audit`): declared, not decoded, so that another
is refused as the cursor it is not."""
AnyName = Annotated[
    str, Meta(description="The username or the email address.", min_length=1, max_length=320)
]


class ForgotPasswordRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Whose password to reset."""

    username: AnyName


class ResetPasswordRequest(HidesSecrets, msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    secret_fields: ClassVar[frozenset[str]] = frozenset(("token", "new_password"))

    token: MailedToken
    new_password: Password


class VerifyEmailRequest(HidesSecrets, msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    secret_fields: ClassVar[frozenset[str]] = frozenset(("token",))

    token: MailedToken


class ResendVerificationRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Whose address to verify."""

    username: AnyName


class Accepted(msgspec.Struct, kw_only=True):
    """The one answer, whether or not the name is an account's."""

    detail: str


class EventsQuery(msgspec.Struct, kw_only=True):
    """Query parameters of an audit-trail page (unknown parameters are ignored)."""

    after: Annotated[
        EventCursor | None, Meta(description="The `next_cursor` of the previous page.")
    ] = None
    limit: Annotated[int, Meta(ge=1, le=200, description="Events per page.")] = 50


NextCursor = Annotated[
    str | None, Meta(description="Pass as `after` for the next page; null on the last.")
]


class EventPage(msgspec.Struct, kw_only=True):
    """Security events of one account, newest first."""

    events: list[AuditEntry]
    next_cursor: NextCursor


class OwnerEventPage(msgspec.Struct, kw_only=True):
    """Security events of the caller's account, newest first, as its owner reads them."""

    events: list[OwnerAuditEntry]
    next_cursor: NextCursor


class AdminUserCreate(HidesSecrets, msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A new account made by an administrator; without a password, one that no password
    opens until its owner chooses one through a reset link."""

    secret_fields: ClassVar[frozenset[str]] = frozenset(("password",))

    username: Username
    email: Email
    password: Password | UnsetType = UNSET
    full_name: FullName | None = None
    is_admin: Annotated[
        bool | UnsetType,
        Meta(description="Absent: an administrator exactly when `admin` is among the scopes."),
    ] = UNSET
    scopes: Scopes = msgspec.field(default_factory=list)
    email_verified: Annotated[
        bool, Meta(description="The administrator vouches for the address.")
    ] = False
    profile: Profile | None = None


class AdminSetPassword(HidesSecrets, msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A password set without the old one: every session of the account ends."""

    secret_fields: ClassVar[frozenset[str]] = frozenset(("new_password",))

    new_password: Password


class AdminPasswordReset(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A reset link mailed to the owner, who chooses the new password."""

    end_sessions: Annotated[
        bool, Meta(description="End every session of the account too, at once.")
    ] = False


class ResetStarted(msgspec.Struct, kw_only=True):
    """The link is on its way to the account's address."""

    detail: str
    sessions_ended: Annotated[int, Meta(description="0 unless `end_sessions` was asked for.")]


class EverySessionEnded(msgspec.Struct, kw_only=True):
    not_before: Annotated[
        float,
        Meta(
            description="The cut-off, in seconds since the epoch: every session of every "
            "user opened before it has ended."
        ),
    ]


class AdminSessionList(msgspec.Struct, kw_only=True):
    """An account's live sessions, newest first."""

    sessions: list[SessionInfo]
