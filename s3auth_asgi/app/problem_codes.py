"""The problem codes of each operation, by status: those its table row implies (the body,
the query, the access, the path parameters, the limits, the store, where requests come
from) and those its handler raises (`Operation.raises`, `Operation.conflicts`). The OpenAPI
document lists them per answer, so a client knows every `code` a status can carry, and
the answers the app gives are checked against that list wherever a test drives it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..account_tokens import InvalidAccountTokenError
from ..breached_passwords import BreachCheckUnavailableError, BreachedPasswordError
from ..errors import (
    AuthenticationRequiredError,
    EmailChangeUnavailableError,
    HashingBusyError,
    InvalidCredentialsError,
    InvalidEmailError,
    InvalidTokenError,
    InvalidUsernameError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    RateLimitedError,
    RefreshTokenReuseError,
    S3AuthError,
    S3ValidationError,
    SessionNotFoundError,
    TokenExpiredError,
    TokenRevokedError,
    TokenTooLargeError,
    UserNotFoundError,
    WeakPasswordError,
)
from ..hooks import HOOK_REFUSALS, HookFailedError
from ..keys.remote import KeysUnavailableError
from ..refusal_codes import BEARER_TOKEN as BEARER_TOKEN
from ..refusal_codes import RECENT
from ..refusal_codes import SCOPES as SCOPES
from ..refusal_codes import STORE as STORE
from ..refusal_codes import Raised as Raised
from ..refusal_codes import by_status as by_status
from ..step_up import ReauthenticationRequiredError
from ..totp_errors import InvalidMfaTokenError, MfaRequiredError, WrongTotpCodeError
from .errors import (
    BodyTooLargeError,
    CrossOriginRequestError,
    CurrentPasswordRequiredError,
    EmailNotVerifiedError,
    MalformedBodyError,
    MalformedIfMatchError,
    UnsupportedGrantTypeError,
    UnsupportedMediaTypeError,
    WrongCurrentPasswordError,
)

if TYPE_CHECKING:
    from .operations import Operation

BODY: Raised = (
    MalformedBodyError,
    BodyTooLargeError,
    UnsupportedMediaTypeError,
    S3ValidationError,
)
"""What reading a body refuses (`body`); a token request's grant type, too."""
QUERY: Raised = (S3ValidationError,)
ADMIN: Raised = (PermissionDeniedError,)
NEW_PASSWORD: Raised = (
    WeakPasswordError,
    BreachedPasswordError,
    HashingBusyError,
    BreachCheckUnavailableError,
)
"""What setting a password refuses (`new_passwords`): the policy, a breached password, or
no room to hash it now, or no answer about it (where that refuses it)."""
NEW_NAMES: Raised = (InvalidUsernameError, InvalidEmailError)
NEW_ACCOUNT: Raised = (*NEW_NAMES, *NEW_PASSWORD)
MAILED_TOKEN: Raised = (InvalidAccountTokenError,)
REFRESH_TOKEN: Raised = (
    AuthenticationRequiredError,
    InvalidTokenError,
    TokenExpiredError,
    TokenRevokedError,
    RefreshTokenReuseError,
    KeysUnavailableError,
)
"""What a refresh refuses: no token, one invalid, expired, revoked or spent, or no keys
to sign the new one with."""

# What the handlers of the account operations raise (`table`): their rows' `raises`.
REGISTRATION: Raised = (*NEW_ACCOUNT, *HOOK_REFUSALS, HookFailedError)
LOGIN: Raised = (
    InvalidCredentialsError,
    EmailNotVerifiedError,
    MfaRequiredError,
    TokenTooLargeError,
    HashingBusyError,
    KeysUnavailableError,
)
REFRESH: Raised = (*REFRESH_TOKEN, TokenTooLargeError)
PROFILE_CHANGE: Raised = (
    CurrentPasswordRequiredError,
    WrongCurrentPasswordError,
    EmailChangeUnavailableError,
    InvalidEmailError,
    HashingBusyError,
)
"""`PATCH /me`: a new address needs the current password, and a mailer where a verified
address is required."""
CONDITIONAL_CHANGE: Raised = (MalformedIfMatchError, PreconditionFailedError)
"""A change with `If-Match`: a header that cannot be read, an account at another version
(`preconditions`)."""
PASSWORD_CHANGE: Raised = (WrongCurrentPasswordError, *NEW_PASSWORD, TokenTooLargeError)
TOTP_LOGIN: Raised = (
    InvalidMfaTokenError,
    WrongTotpCodeError,
    EmailNotVerifiedError,
    HashingBusyError,
    InvalidCredentialsError,
    TokenTooLargeError,
    KeysUnavailableError,
)
"""The login's second step: the challenge gone, a wrong code, an address no longer verified
where one is required, no room to verify a recovery code now, the account changed as the
session was opened."""
TOTP_START: Raised = (WrongCurrentPasswordError, HashingBusyError)
TOTP_CONFIRM: Raised = (WrongTotpCodeError,)
TOTP_RECOVERY: Raised = (WrongCurrentPasswordError, HashingBusyError)
TOTP_DISABLE: Raised = (WrongCurrentPasswordError, WrongTotpCodeError, HashingBusyError)
PATH_ID_ERRORS: dict[str, type[NotFoundError]] = {
    "user_id": UserNotFoundError,
    "session_id": SessionNotFoundError,
}
"""The 404 each path parameter answers with when no such id can exist."""


def implied(op: Operation, cross_origin: bool = False) -> Raised:
    """The errors the dispatcher raises for `op` before and around its handler
    (`endpoint.Endpoint`), as its row declares it; `cross_origin`: where the app's origin
    check applies to it (browser mode)."""
    raised: list[type[S3AuthError]] = []
    if op.request is not None:
        raised += BODY
        if op.token_endpoint:
            raised.append(UnsupportedGrantTypeError)
    if op.query is not None:
        raised += QUERY
    if op.access != "public":
        raised += BEARER_TOKEN
    if op.access == "admin":
        raised += ADMIN
    if op.max_age is not None:
        raised.append(ReauthenticationRequiredError)
    raised += (PATH_ID_ERRORS[name] for name in op.path_parameters)
    if op.uses_store:
        raised += STORE
    if op.limits or op.handler_limits is not None:
        raised.append(RateLimitedError)
    if cross_origin:
        raised.append(CrossOriginRequestError)
    return tuple(raised)


def guarded_route_codes(scopes: bool, recent: bool = False) -> dict[int, tuple[str, ...]]:
    """Every code a host's own route answers with, by status, where a dependency or a guard
    requires the bearer token (`host_auth`), or the middlewares in front of it do: the
    token's check, and the reads of the revocations and of stored signing keys before it
    (the first of those, on a store not checked yet, may make the key set and so check the
    store's writes); where `scopes` are required, their check too, and where a `recent`
    authentication is asked for (`max_age`), its check."""
    return by_status(
        (*BEARER_TOKEN, *STORE, *(SCOPES if scopes else ()), *(RECENT if recent else ()))
    )


def problem_codes(op: Operation, cross_origin: bool = False) -> dict[int, tuple[str, ...]]:
    """Every code `op` answers with, by status: what its row implies, what its handler
    raises. A 429 is answered where the app's limiter has the limits (`limit_fields`)."""
    return by_status((*implied(op, cross_origin), *op.raises, *op.conflicts))
