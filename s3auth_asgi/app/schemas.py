"""The request and response bodies of the auth app, as msgspec Structs.

Request bodies forbid unknown fields: a misspelt `pasword` is an error the client hears
about, not a silently missing value. The OpenAPI document is generated from these classes,
so their docstrings and `Meta` descriptions are the API reference. A password, a token or a
client secret shows as `<hidden>` when a body is printed (`hidden_fields`), and is encoded
as it is.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from ..hidden_fields import HidesSecrets
from ..identifiers import ID_PATTERN, SCOPE_MAX
from ..models import PublicUser, SessionInfo
from ..problems import Problem
from ..token_budget import MAX_SCOPES, SCOPES_MAX_BYTES

__all__ = [
    "AdminUserUpdate",
    "ChangePasswordRequest",
    "JsonWebKeySet",
    "LoginRequest",
    "LogoutRequest",
    "Problem",
    "PublicUser",
    "RefreshRequest",
    "RegisterRequest",
    "SessionInfo",
    "SessionList",
    "SessionsEnded",
    "TokenResponse",
    "UpdateProfileRequest",
    "UserListQuery",
    "UserPage",
]

Username = Annotated[
    str,
    Meta(
        description="3-64 letters, digits, '.', '_' or '-', with a letter or a digit, "
        "none that is not drawn and at most four marks on a letter, each once, in one "
        "script (Unicode TR39's moderately restrictive profile), by RFC 5893's Bidi Rule when "
        "it holds right-to-left letters; unique, and so is its look: "
        "a name that looks like a taken one is taken."
    ),
]
Email = Annotated[
    str,
    Meta(
        description="An email address, syntax checked and normalised by email-validator; "
        "unique, case-insensitively."
    ),
]
NEW_PASSWORD = "A new password, held to the service's password policy."
"""The description of a field that sets a password, which the OpenAPI document replaces
with the policy the service runs (`openapi.declare_password_policy`)."""
Password = Annotated[str, Meta(description=NEW_PASSWORD)]
FullName = Annotated[str, Meta(description="Shown to people; at most 200 characters.")]
Profile = Annotated[
    dict[str, Any],
    Meta(description="The application's own fields, as it declares them (`profile_fields`)."),
]
OAuthParameter = Annotated[
    str | None, Meta(description="Accepted for OAuth2 client compatibility and ignored.")
]
Scope = Annotated[
    str, Meta(min_length=1, max_length=SCOPE_MAX, description="Printable, without spaces.")
]
Scopes = Annotated[
    list[Scope],
    Meta(
        max_length=MAX_SCOPES,
        description="OAuth2 scopes put into the user's tokens; `admin` among them makes the "
        f"user an administrator (is_admin), whose tokens grant it. At most {MAX_SCOPES}, "
        f"together at most {SCOPES_MAX_BYTES} bytes joined by spaces (UTF-8, a quote or a "
        "backslash counting two): a token carries them all.",
    ),
]
UserCursor = Annotated[str, Meta(extra_json_schema={"pattern": f"^{ID_PATTERN}$"})]
"""A user's id, which the directory checks (`user_directory`): declared, not decoded, so
that another is refused as the cursor it is not."""
OTHER_GRANTS = "Optional; another grant type is refused with `unsupported_grant_type`."
RefreshTokenField = Annotated[
    str | None,
    Meta(description="The refresh token; in browser mode it comes from the cookie instead."),
]


class RegisterRequest(HidesSecrets, msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A new account."""

    secret_fields: ClassVar[frozenset[str]] = frozenset(("password",))

    username: Username
    email: Email
    password: Password
    full_name: FullName | None = None
    profile: Profile | None = None


class LoginRequest(HidesSecrets, msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """OAuth2 resource-owner password credentials (RFC 6749 §4.3.2), as a form or JSON."""

    secret_fields: ClassVar[frozenset[str]] = frozenset(("password", "client_secret"))
    accepted_grant_type: ClassVar[str] = "password"
    """Another `grant_type` is refused before the fields are (`body.check_grant_type`)."""

    username: Annotated[str, Meta(description="The username or the email address.")]
    password: str
    grant_type: Annotated[Literal["password"] | None, Meta(description=OTHER_GRANTS)] = None
    scope: OAuthParameter = None
    client_id: OAuthParameter = None
    client_secret: OAuthParameter = None


class RefreshRequest(HidesSecrets, msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A refresh token to exchange for a new pair (RFC 6749 §6)."""

    secret_fields: ClassVar[frozenset[str]] = frozenset(("refresh_token", "client_secret"))
    accepted_grant_type: ClassVar[str] = "refresh_token"

    refresh_token: RefreshTokenField = None
    grant_type: Annotated[Literal["refresh_token"] | None, Meta(description=OTHER_GRANTS)] = None
    scope: OAuthParameter = None
    client_id: OAuthParameter = None
    client_secret: OAuthParameter = None


class LogoutRequest(HidesSecrets, msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Which session to end: the one of this refresh token, else the bearer token's."""

    secret_fields: ClassVar[frozenset[str]] = frozenset(("refresh_token",))

    refresh_token: RefreshTokenField = None


def fields_set(update: msgspec.Struct) -> dict[str, Any]:
    """The fields a PATCH body sets (msgspec leaves the others UNSET)."""
    return {
        name: value
        for name in update.__struct_fields__
        if (value := getattr(update, name)) is not UNSET
    }


class UpdateProfileRequest(HidesSecrets, msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The fields to change; absent fields stay as they are, `full_name: null` clears it."""

    secret_fields: ClassVar[frozenset[str]] = frozenset(("current_password",))

    full_name: FullName | UnsetType | None = UNSET
    email: Email | UnsetType = UNSET
    """A new address waits (`pending_email`) until the link mailed to it is opened."""
    current_password: str | UnsetType = UNSET
    """Required with `email`: a new address is where every reset goes."""
    profile: (
        Annotated[
            dict[str, Any], Meta(description="Fields to change; the others stay as they are.")
        ]
        | UnsetType
    ) = UNSET


class ChangePasswordRequest(HidesSecrets, msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    secret_fields: ClassVar[frozenset[str]] = frozenset(("current_password", "new_password"))

    current_password: str
    new_password: Password


class AdminUserUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """An administrator's change to an account. Disabling it or changing its privileges
    ends its sessions at once."""

    is_active: bool | UnsetType = UNSET
    is_admin: bool | UnsetType = UNSET
    full_name: FullName | UnsetType | None = UNSET
    email: Email | UnsetType = UNSET
    scopes: Scopes | UnsetType = UNSET
    email_verified: bool | UnsetType = UNSET
    profile: (
        Annotated[dict[str, Any], Meta(description="Fields to change; the others stay.")]
        | UnsetType
    ) = UNSET


class UserListQuery(msgspec.Struct, kw_only=True):
    """Query parameters of the user list (unknown parameters are ignored, as caches add
    their own)."""

    after: Annotated[
        UserCursor | None, Meta(description="The `next_cursor` of the previous page.")
    ] = None
    limit: Annotated[int, Meta(ge=1, le=1000, description="Users per page.")] = 50
    search: (
        Annotated[
            str,
            Meta(
                min_length=1,
                max_length=100,
                description="Only the users of the page whose id, username, email or full name "
                "contain this (case-insensitively): a page may hold fewer, even none, while "
                "`next_cursor` goes on.",
            ),
        ]
        | None
    ) = None


class TokenResponse(HidesSecrets, msgspec.Struct, kw_only=True):
    """The token response of RFC 6749 §5.1 (sent with `Cache-Control: no-store`)."""

    secret_fields: ClassVar[frozenset[str]] = frozenset(("access_token", "refresh_token"))

    access_token: str
    token_type: Annotated[str, Meta(description='Always "bearer".')]
    expires_in: Annotated[int, Meta(description="Seconds the access token is valid.")]
    refresh_token: (
        Annotated[str, Meta(description="Absent in browser mode, where a cookie carries it.")]
        | UnsetType
    ) = UNSET
    refresh_expires_in: Annotated[
        int,
        Meta(
            description="Seconds the refresh token stays valid: the session's idle lifetime, "
            "or what is left of its absolute lifetime when that is less."
        ),
    ]


class SessionList(msgspec.Struct, kw_only=True):
    """The caller's live sessions, newest first; `current` marks the one asking."""

    sessions: list[SessionInfo]


class SessionsEnded(msgspec.Struct, kw_only=True):
    sessions_ended: Annotated[int, Meta(description="How many sessions were ended.")]


class UserPage(msgspec.Struct, kw_only=True):
    users: list[PublicUser]
    next_cursor: Annotated[
        str | None, Meta(description="Pass as `after` for the next page; null on the last.")
    ]


class JsonWebKeySet(msgspec.Struct, kw_only=True):
    """RFC 7517 §5: the public keys access tokens can be verified with (none for HS*)."""

    keys: list[dict[str, Any]]
