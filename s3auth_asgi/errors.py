"""The error tree. Every error carries its HTTP status and a stable machine-readable code.

`S3AuthError` is the root, so `except S3AuthError` catches everything this package raises
on purpose; `S3ValidationError` marks bad input (the guide's two names).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar


class S3AuthError(Exception):
    """Authentication failed, or any other error raised by s3auth_asgi."""

    status: ClassVar[int] = 401
    code: ClassVar[str] = "authentication_failed"
    title: ClassVar[str] = "Authentication failed"

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.title
        super().__init__(self.detail)


class InvalidCredentialsError(S3AuthError):
    code = "invalid_credentials"
    title = "Invalid username or password"


class InvalidTokenError(S3AuthError):
    code = "invalid_token"
    title = "The token is invalid"


class TokenExpiredError(InvalidTokenError):
    code = "token_expired"
    title = "The token has expired"


class TokenRevokedError(InvalidTokenError):
    code = "token_revoked"
    title = "The token has been revoked"


class RefreshTokenReuseError(TokenRevokedError):
    code = "refresh_token_reused"
    title = "An old refresh token was presented; the session has been revoked"


class AuthenticationRequiredError(S3AuthError):
    """No token was presented where one is required."""

    code = "authentication_required"
    title = "Authentication required"


class InactiveUserError(S3AuthError):
    code = "inactive_user"
    title = "The account is disabled"


class PermissionDeniedError(S3AuthError):
    status = 403
    code = "insufficient_scope"
    title = "Insufficient permissions"


class InsufficientScopeError(PermissionDeniedError):
    """A valid token without the scopes the path or endpoint needs."""

    def __init__(self, scopes: Iterable[str], detail: str | None = None) -> None:
        self.scopes = tuple(scopes)
        super().__init__(detail or f"This needs the scopes: {' '.join(self.scopes)}")


class S3ValidationError(S3AuthError, ValueError):
    """The input was refused: nothing was written."""

    status = 422
    code = "validation_error"
    title = "Invalid input"


class WeakPasswordError(S3ValidationError):
    code = "weak_password"
    title = "The password does not meet the password policy"


class InvalidUsernameError(S3ValidationError):
    code = "invalid_username"
    title = "The username is not allowed"


class InvalidEmailError(S3ValidationError):
    code = "invalid_email"
    title = "The email address is not valid"


class ConflictError(S3ValidationError):
    status = 409
    code = "conflict"
    title = "The resource already exists"


class UsernameTakenError(ConflictError):
    code = "username_taken"
    title = "The username is already taken"


class EmailTakenError(ConflictError):
    code = "email_taken"
    title = "The email address is already registered"


class NotFoundError(S3AuthError):
    status = 404
    code = "not_found"
    title = "Not found"


class UserNotFoundError(NotFoundError):
    code = "user_not_found"
    title = "User not found"


class SessionNotFoundError(NotFoundError):
    code = "session_not_found"
    title = "Session not found"


class StoreUnavailableError(S3AuthError):
    """The object store could not be reached or answered with an error."""

    status = 503
    code = "store_unavailable"
    title = "The authentication store is unavailable"


class ConfigurationError(S3AuthError, ValueError):
    """Invalid configuration; the message names the setting and its variable."""

    status = 500
    code = "configuration_error"
    title = "Invalid configuration"
