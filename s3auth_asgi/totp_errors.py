"""The refusals of the second factor (`totp_factor`, and the auth app's login with a code)."""

from __future__ import annotations

from collections.abc import Iterable

from .errors import AuthenticationError, ConflictError, InvalidCredentialsError, S3AuthError


class WrongTotpCodeError(InvalidCredentialsError):
    """The code is not the factor's for now, or its step has been used already (a code
    works once). 403 as a wrong current password is: at the login's second step the
    client's password was right, and a client that logs out on a 401 should not do so
    over a mistyped code. Counted against the account's login budgets as a wrong
    password is."""

    status = 403
    code = "wrong_totp_code"
    title = "The code is wrong or has been used"


class MfaRequiredError(S3AuthError):
    """The right password of an account whose second factor is on: no tokens yet. The
    answer carries `mfa_token`, which `POST /login/totp` takes with a code. 403, as the
    OAuth servers that name this error answer it: the password was right. Outside
    PermissionDeniedError, as `EmailNotVerifiedError` is: no scope would help."""

    status = 403
    code = "mfa_required"
    title = "A code of the account's authenticator app is required"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Iterable[tuple[str, str]] = (),
        mfa_token: str = "",
    ) -> None:
        super().__init__(detail, headers=headers)
        self.mfa_token = mfa_token


class InvalidMfaTokenError(AuthenticationError):
    """An `mfa_token` that is not one this service issued, has expired, or no longer holds:
    another device's, or the account's sessions were ended, its factor changed or a code
    accepted since. The client logs in with the password again."""

    code = "invalid_mfa_token"
    title = "The login's second step has expired or is invalid; log in again"


class TotpEnabledError(ConflictError):
    code = "totp_enabled"
    title = "The second factor is on already; turn it off first"


class TotpNotEnabledError(ConflictError):
    code = "totp_not_enabled"
    title = "The second factor is not on"


class TotpNotPendingError(ConflictError):
    """A code to confirm with no seed waiting for it: none was asked for, its time ran out
    (`totp_factor.PENDING_SECONDS`), or another confirmation or start landed first."""

    code = "totp_not_pending"
    title = "No new second factor is waiting for a code; start again"
