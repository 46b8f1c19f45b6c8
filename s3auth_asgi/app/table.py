"""The table of the auth app's operations: each endpoint's method, path, handler, access,
inputs and outputs. The dispatcher enforces what it declares and the OpenAPI document is
generated from it, so adding an endpoint is adding a row here and a handler in `routes`."""

from __future__ import annotations

from dataclasses import replace

from ..errors import ConflictError, EmailTakenError, InvalidEmailError, UsernameTakenError
from ..models import PublicUser
from . import problem_codes as codes
from . import schemas
from .devices import DEVICE_HEADER
from .errors import AccountExistsError, OwnAccountError, RepeatedCookieError
from .lifecycle_routes import LifecycleRoutes
from .lifecycle_table import lifecycle_operations
from .limits import REGISTRATION, password_attempt
from .operations import ADMINS_SEE_NAMES, LOST_TO_A_CONCURRENT_CHANGE, Operation
from .preconditions import DELETE_HEADER, IF_MATCH_ADVICE, IF_MATCH_DELETE, IF_MATCH_DESCRIPTION
from .reauth_routes import reauth_operations
from .routes import AuthRoutes
from .totp_routes import TotpRoutes
from .totp_table import totp_operations

DEVICE_HEADER_DESCRIPTION = (
    "The value of the `s3auth_device` cookie an earlier login of this account set, for "
    "clients that keep no cookies: its wrong passwords then count against this device "
    "only (where a device limit is set), and it may wait in the password-hashing places "
    "kept for known devices, so an attack on the account, or a flood of logins, from "
    "elsewhere does not lock it out. Ignored when not valid for the account."
)

OWN_ACCOUNT_REFUSED = (
    "An administrator's own account cannot lose its administration here (`is_admin: "
    "false`, `is_active: false`, a deletion): 409 `own_account`, so that no administrator "
    "locks themself out by accident; another administrator, or the CLI, does it."
)


def _taken(routes: AuthRoutes, *taken: type[ConflictError]) -> tuple[type[ConflictError], ...]:
    """The 409s a taken name gets where the answer may hide which one it is (as
    `AuthRoutes` decides: one `account_exists` under enumeration protection)."""
    return (AccountExistsError,) if routes.settings.enumeration_protection else taken


def operations_of(routes: AuthRoutes, lifecycle: LifecycleRoutes | None = None) -> list[Operation]:
    """Every operation; `lifecycle`: the handlers of `lifecycle_table`'s rows (by default
    new ones on `routes`)."""
    lifecycle = lifecycle or LifecycleRoutes(routes)
    operations = [
        *_account_operations(routes, lifecycle),
        *totp_operations(TotpRoutes(routes), DEVICE_HEADER_DESCRIPTION),
        *reauth_operations(routes),
        *lifecycle_operations(lifecycle),
    ]
    # Every administrator operation, reading ones too: they show every account's data.
    max_age = routes.settings.admin_max_age_seconds
    if not max_age:
        return operations
    return [replace(op, max_age=max_age) if op.access == "admin" else op for op in operations]


def _account_operations(routes: AuthRoutes, admin: LifecycleRoutes) -> list[Operation]:
    return [
        Operation(
            method="POST",
            path="/register",
            handler=routes.register,
            operation_id="register",
            event="register",
            summary="Create an account",
            tag="account",
            request=schemas.RegisterRequest,
            response=PublicUser,
            status=201,
            handler_limits=REGISTRATION,
            raises=codes.REGISTRATION,
            conflicts=_taken(routes, UsernameTakenError, EmailTakenError),
            description="Duplicate usernames and emails get one 409 that does not say "
            "which exists (unless enumeration protection is off). Rate-limited per "
            "client address and per address + username.",
        ),
        Operation(
            method="POST",
            path="/login",
            handler=routes.login,
            operation_id="login",
            event="login",
            summary="Log in (OAuth2 password grant)",
            tag="tokens",
            request=schemas.LoginRequest,
            form=True,
            headers=((DEVICE_HEADER, DEVICE_HEADER_DESCRIPTION),),
            response=schemas.TokenResponse,
            token_response=True,
            token_endpoint=True,
            handler_limits=password_attempt(401, devices=True),
            raises=codes.LOGIN,
            forbidden="The right password of an account whose second factor is on, code "
            "`mfa_required`, with the `mfa_token` for `POST /login/totp`; of an account "
            "whose address is not verified, where S3AUTH_REQUIRE_VERIFIED_EMAIL requires one, "
            "code `email_not_verified`; or "
            "of an account given more scopes than an access token can carry, code "
            "`token_too_large`",
            description="An OAuth2 password-grant form (what Swagger UI's Authorize "
            "button and OAuth2PasswordBearer send) or the same fields as JSON. Unknown "
            "user and wrong password get the same 401. Wrong passwords are limited per "
            "account (from any address) and per client address, or, for a client showing "
            "a device cookie of the account, per device; a spent limit answers 429 even to "
            "the right password, and so does one whose rest the attempts being checked at "
            "once could spend. A successful login sets the `s3auth_device` cookie, which "
            "also lets a later login wait in hash places kept for known devices. With "
            "S3AUTH_REQUIRE_VERIFIED_EMAIL, the right password of an account whose address "
            "is not verified is 403 `email_not_verified`. The right password of an account "
            "whose second factor is on is 403 `mfa_required`, no tokens: its `mfa_token` "
            "and a code go to `POST /login/totp`. An account given more scopes than an "
            "access token can carry (before they were bounded) is 403 `token_too_large`, "
            "and no session is opened.",
        ),
        Operation(
            method="POST",
            path="/refresh",
            handler=routes.refresh,
            operation_id="refresh",
            event="refresh",
            summary="Exchange a refresh token",
            tag="tokens",
            request=schemas.RefreshRequest,
            form=True,
            body_optional=True,
            refresh_cookie=routes.browser_mode,
            response=schemas.TokenResponse,
            token_response=True,
            token_endpoint=True,
            limits=("token",),
            # In browser mode a refused token's answer clears the cookie: the handler's.
            returned_errors=(401,) if routes.browser_mode else (),
            raises=(*codes.REFRESH, *((RepeatedCookieError,) if routes.browser_mode else ())),
            forbidden="A session of an account given more scopes than an access token can "
            "carry, code `token_too_large`",
            description="Rotates: the refresh token sent is spent, a new one comes back. "
            "Presenting a spent one again ends the session (reuse detection). In browser "
            "mode the token is the `s3auth_refresh` cookie's; a request sending that cookie "
            "more than once (one another host of the site set) is 400 `repeated_cookie`, "
            "and neither is used nor cleared. A session of an account given more scopes "
            "than an access token can carry is 403 `token_too_large`, and not rotated.",
        ),
        Operation(
            method="POST",
            path="/logout",
            handler=routes.logout,
            operation_id="logout",
            event="logout",
            summary="End this session",
            tag="tokens",
            access="bearer_or_refresh_token",
            reads_account=False,  # ending one's own session needs no account
            request=schemas.LogoutRequest,
            form=True,
            body_optional=True,
            limits=("token", "token_account"),
            description="Ends the session of the refresh token in the body, or else of "
            "the bearer token; its access tokens stop working too.",
        ),
        Operation(
            method="POST",
            path="/logout-all",
            handler=routes.logout_all,
            operation_id="logout_all",
            event="logout_all",
            summary="End every session",
            tag="tokens",
            access="bearer",
            response=schemas.SessionsEnded,
            limits=("token", "token_account"),
            description="Every session of the caller, and every access token issued before now.",
        ),
        Operation(
            method="GET",
            path="/sessions",
            handler=routes.sessions,
            operation_id="list_sessions",
            summary="The caller's sessions",
            tag="sessions",
            access="bearer",
            response=schemas.SessionList,
        ),
        Operation(
            method="DELETE",
            path="/sessions/{session_id}",
            handler=routes.end_session,
            operation_id="end_session",
            event="session_end",
            summary="End one of the caller's sessions",
            tag="sessions",
            access="bearer",
            description="Ending the session of the calling token is a logout: in browser "
            "mode the answer clears the `s3auth_refresh` cookie.",
        ),
        Operation(
            method="GET",
            path="/me",
            handler=routes.me,
            operation_id="get_me",
            summary="The caller's profile",
            tag="account",
            access="bearer",
            response=PublicUser,
        ),
        Operation(
            method="PATCH",
            path="/me",
            handler=routes.update_me,
            operation_id="update_me",
            event="profile_change",
            summary="Change the caller's profile",
            tag="account",
            access="bearer",
            reads_account=False,  # the update reads the record, and judges it the same
            request=schemas.UpdateProfileRequest,
            response=PublicUser,
            limits=("profile", "profile_account"),
            handler_limits=password_attempt(403, devices=False, mails=True),  # a new `email`
            raises=codes.PROFILE_CHANGE,
            conflicts=(*_taken(routes, EmailTakenError), ConflictError),
            description="A new `email` needs `current_password`: 403 "
            "`current_password_required` without it, 403 `wrong_password` when it is wrong "
            "(counted against the account's and the address's login limits). With a mailer, "
            "the new address waits (`pending_email`) until the link mailed to it is opened "
            "(`POST /email/verify`); the account keeps its address, verified or not, for "
            "logins, resets and mail until then, and that address is told of the request. "
            "Both mails count against the budgets of the inbox each goes to "
            "(`recovery_account`, `recovery_inbox`): past them, 429 with `Retry-After` "
            "alone, and nothing is written or mailed. The address the account has (as "
            "stored: one that only folds alike, `Alice@` for `alice@`, waits as any other) "
            "withdraws a request. Without a mailer it applies "
            "at once, unverified, or is 403 `email_change_unavailable` where a verified "
            "address is required. Event `email_change_request` (`email_change` when applied "
            "at once). An email that is taken is a 409 (`account_exists` with enumeration "
            "protection on, as at registration). " + LOST_TO_A_CONCURRENT_CHANGE,
        ),
        Operation(
            method="POST",
            path="/password",
            handler=routes.change_password,
            operation_id="change_password",
            event="password_change",
            summary="Change the caller's password",
            tag="account",
            access="bearer",
            reads_account=False,  # the change reads the record, and judges it the same
            request=schemas.ChangePasswordRequest,
            response=schemas.TokenResponse,
            token_response=True,
            handler_limits=password_attempt(403, devices=False, mails=True),
            raises=codes.PASSWORD_CHANGE,
            conflicts=(ConflictError,),
            description="Ends every session (the caller's too) and returns a new token "
            "pair for the caller. A wrong current password is a 403, and counts against "
            "the account's and the address's login limits. With a mailer the account's "
            "address is told, and the notice counts against its inbox's budgets "
            "(`recovery_account`, `recovery_inbox`): past them, 429 with `Retry-After` alone, "
            "and nothing is changed. " + LOST_TO_A_CONCURRENT_CHANGE,
        ),
        Operation(
            method="GET",
            path="/admin/users",
            handler=admin.list_users,
            operation_id="list_users",
            summary="List users, a page at a time",
            tag="admin",
            access="admin",
            query=schemas.UserListQuery,
            response=schemas.UserPage,
        ),
        Operation(
            method="PATCH",
            path="/admin/users/{user_id}",
            handler=admin.update_user,
            operation_id="update_user",
            event="admin_user_update",
            summary="Change an account (enable, disable, admin flag, scopes, profile)",
            tag="admin",
            access="admin",
            request=schemas.AdminUserUpdate,
            headers=(("If-Match", IF_MATCH_DESCRIPTION),),
            response=PublicUser,
            versioned=True,
            raises=(InvalidEmailError, *codes.CONDITIONAL_CHANGE),
            conflicts=(EmailTakenError, ConflictError, OwnAccountError),
            description=f"A taken email is 409 `email_taken`. {ADMINS_SEE_NAMES} "
            + OWN_ACCOUNT_REFUSED
            + " New `scopes` of the caller's own account end the caller's session with the "
            "others: the answer clears the `s3auth_refresh` cookie in browser mode. "
            + LOST_TO_A_CONCURRENT_CHANGE
            + " "
            + IF_MATCH_ADVICE,
        ),
        Operation(
            method="DELETE",
            path="/admin/users/{user_id}",
            handler=admin.delete_user,
            operation_id="delete_user",
            event="admin_user_delete",
            summary="Delete an account and its sessions",
            tag="admin",
            access="admin",
            headers=(DELETE_HEADER,),
            raises=codes.CONDITIONAL_CHANGE,
            conflicts=(OwnAccountError, ConflictError),
            description=f"{OWN_ACCOUNT_REFUSED} {LOST_TO_A_CONCURRENT_CHANGE} {IF_MATCH_DELETE}",
        ),
        Operation(
            method="POST",
            path="/admin/users/{user_id}/revoke",
            handler=admin.revoke_user,
            operation_id="revoke_user",
            event="admin_user_revoke",
            summary="End every session of an account",
            tag="admin",
            access="admin",
            response=schemas.SessionsEnded,
            description="The caller's own account: a logout everywhere, whose answer clears "
            "the `s3auth_refresh` cookie in browser mode.",
        ),
        Operation(
            method="GET",
            path="/.well-known/jwks.json",
            handler=routes.jwks,
            operation_id="jwks",
            summary="Public keys for verifying access tokens",
            tag="keys",
            response=schemas.JsonWebKeySet,
            headers=(("If-None-Match", "The ETag of a copy held: 304 if it is current"),),
            cacheable=True,
            description=(
                "RFC 7517: the public keys of ES256, EdDSA/Ed25519 and RS256 tokens, by kid, "
                "including keys published before they sign and keys that stopped signing "
                "but whose tokens may still be valid. Empty with HS*, whose key must stay "
                "secret. Cacheable for S3AUTH_JWKS_MAX_AGE_SECONDS, less than a key is "
                "published before it signs; the same document can also be written to "
                "S3AUTH_JWKS_PUBLISH_URL."
            ),
        ),
    ]
