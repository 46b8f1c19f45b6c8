"""The error tree. Every error carries its HTTP status and a stable machine-readable code.

    S3AuthError                      the neutral root: `except S3AuthError` catches all
    ├── AuthenticationError          401: who is calling could not be established
    │   ├── InvalidCredentialsError
    │   ├── AuthenticationRequiredError
    │   ├── InactiveUserError
    │   └── InvalidTokenError → TokenExpiredError, TokenRevokedError → RefreshTokenReuseError
    ├── PermissionDeniedError        403: the caller is known but may not do this
    │   └── InsufficientScopeError
    ├── S3ValidationError            422 (and 400/413/415): bad input, nothing was written
    │   └── InvalidRequestError, WeakPasswordError, InvalidUsernameError, InvalidEmailError
    ├── ConflictError                409: the state does not allow it (a name is taken)
    │   └── UsernameTakenError, EmailTakenError
    ├── NotFoundError                404 → UserNotFoundError, SessionNotFoundError
    ├── RateLimitedError             429, with Retry-After and RateLimit headers
    ├── StoreUnavailableError        503: cannot answer now (the object store failed); retry
    │   ├── HashingBusyError         503: too many password checks waiting; retry shortly
    │   └── StoreUnsafeError         503: the store lacks a conditional write; nothing written
    └── ConfigurationError           a setting or argument is wrong; raised at start-up

`S3ValidationError` and `ConfigurationError` are also `ValueError`s, so code that catches
the builtin keeps working.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar


class S3AuthError(Exception):
    """Any error raised by s3auth_asgi on purpose. `headers` are what its HTTP answer must
    carry besides those its status implies (`problems` renders both)."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "error"
    title: ClassVar[str] = "The request could not be completed"

    errors: tuple[str, ...] = ()
    """Each problem found, when an error has found several (the body's `errors` member)."""

    def __init__(self, detail: str | None = None, *, headers: Iterable[tuple[str, str]] = ()):
        self.detail = detail or self.title
        self.headers = tuple(headers)
        super().__init__(self.detail)


# Authentication (401) ------------------------------------------------------------------


class AuthenticationError(S3AuthError):
    """Who is calling could not be established."""

    status = 401
    code = "authentication_failed"
    title = "Authentication failed"


class InvalidCredentialsError(AuthenticationError):
    code = "invalid_credentials"
    title = "Invalid username or password"


class InvalidTokenError(AuthenticationError):
    code = "invalid_token"
    title = "The token is invalid"


class UnknownSigningKeyError(InvalidTokenError):
    """The token names a key (`kid`) this process does not know: invalid, unless the key
    set has changed since it was read (a verifier may read it again and retry once)."""

    def worth_verifying_again(self) -> bool:
        """Asked once a read has changed the keys: whether the token may verify now. A kid
        unknown before may be among the keys read."""
        return True


class KeyMismatchError(InvalidTokenError):
    """The token names a key (`kid`) this process holds, and its `alg` or its signature
    does not match that key: invalid, unless the key's source has put another key under
    the kid since it was read (a JwksVerifier reads it again, as for an unknown kid)."""

    def __init__(
        self, detail: str | None = None, *, headers: Iterable[tuple[str, str]] = (), kid: str = ""
    ) -> None:
        super().__init__(detail, headers=headers)
        self.kid = kid


class TokenExpiredError(InvalidTokenError):
    code = "token_expired"
    title = "The token has expired"


class TokenRevokedError(InvalidTokenError):
    code = "token_revoked"
    title = "The token has been revoked"


class RefreshTokenReuseError(TokenRevokedError):
    code = "refresh_token_reused"
    title = "An old refresh token was presented; the session has been revoked"


class RotatedMeanwhileError(TokenRevokedError):
    """A refresh that read its token current lost its write to later rotations of the
    session: refused, but nothing is ended. The session goes on, and its newest token is
    with whoever rotated it (the same client's other request, as a rule): a browser's
    refresh cookie, which that request's answer has replaced, is kept."""


class AuthenticationRequiredError(AuthenticationError):
    """No token was presented where one is required."""

    code = "authentication_required"
    title = "Authentication required"


class InactiveUserError(AuthenticationError):
    """Never raised by the package: a login to a disabled account is answered as a wrong
    password, so that nobody learns the account exists. For code that refuses a caller it
    finds disabled."""

    code = "inactive_user"
    title = "The account is disabled"


# Authorisation (403) -------------------------------------------------------------------


class PermissionDeniedError(S3AuthError):
    status = 403
    code = "insufficient_scope"
    title = "Insufficient permissions"


class InsufficientScopeError(PermissionDeniedError):
    """A valid token without the scopes the path or endpoint needs."""

    def __init__(self, scopes: Iterable[str], detail: str | None = None) -> None:
        self.scopes = tuple(scopes)
        super().__init__(detail or f"This needs the scopes: {' '.join(self.scopes)}")


class TokenTooLargeError(S3AuthError):
    """The account holds more than an access token can carry: scopes given before they were
    bounded (`token_budget`), which an administrator must reduce. Refused rather than
    answered with a token every verifier refuses; heard only by the holder of the password
    or of the refresh token. Not a PermissionDeniedError: no scope would help."""

    status = 403
    code = "token_too_large"
    title = (
        "The account holds more scopes than an access token can carry; an administrator "
        "must take some away"
    )


# Bad input (4xx) -----------------------------------------------------------------------


class S3ValidationError(S3AuthError, ValueError):
    """The input was refused: nothing was written."""

    status = 422
    code = "validation_error"
    title = "Invalid input"


class InvalidRequestError(S3ValidationError):
    """RFC 6750 §3.1 `invalid_request`: the credentials of a request are malformed as a
    request, whatever the token — a parameter repeated (two Authorization headers), the
    token sent in more than one way, or a place that must carry it empty. Answered 400
    with a Bearer challenge naming the error; no token is looked at."""

    status = 400
    code = "invalid_request"
    title = "The request's credentials are malformed"


class WeakPasswordError(S3ValidationError):
    """`errors` names every rule the password breaks (the `errors` member of the problem
    body); `detail` says them all in one text."""

    code = "weak_password"
    title = "The password does not meet the password policy"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Iterable[str] = (),
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.errors = tuple(errors) or ((detail,) if detail else ())
        if detail is None and len(self.errors) == 1:
            detail = self.errors[0]
        elif detail is None and self.errors:
            detail = " ".join(f"{error}." for error in self.errors)
        super().__init__(detail, headers=headers)


class InvalidUsernameError(S3ValidationError):
    code = "invalid_username"
    title = "The username is not allowed"


class InvalidEmailError(S3ValidationError):
    code = "invalid_email"
    title = "The email address is not valid"


class EmailChangeUnavailableError(S3ValidationError):
    """A user's own change of address where a verified address is required and no mailer
    is configured: the new address could never be confirmed, and applied unconfirmed it
    would lock the owner out. An administrator can change it."""

    status = 403
    code = "email_change_unavailable"
    title = "The email address cannot be changed here: no link can confirm a new one"


# State (409, 412, 404, 429) ------------------------------------------------------------


class ConflictError(S3AuthError):
    """A change refused because a concurrent one came first (its subclasses: a name that
    is taken). Nothing was written; the same request tried again reads the change that won."""

    status = 409
    code = "conflict"
    title = "The change conflicts with a concurrent one"


class UsernameTakenError(ConflictError):
    code = "username_taken"
    title = "The username is already taken"


class EmailTakenError(ConflictError):
    code = "email_taken"
    title = "The email address is already registered"


class PreconditionFailedError(S3AuthError):
    """A change made on condition that the account is still at a version its client saw
    (`user_versions`), which it is no longer: nothing was written. Read it again, and
    decide the change again on what is there now."""

    status = 412
    code = "precondition_failed"
    title = "The account has changed since the version the change was made on"


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


class RateLimitedError(S3AuthError):
    """Over a rate limit; `headers` carry Retry-After and the RateLimit fields."""

    status = 429
    code = "rate_limited"
    title = "Too many requests"


# The system ----------------------------------------------------------------------------


class StoreUnavailableError(S3AuthError):
    """The object store could not be reached or answered with an error."""

    status = 503
    code = "store_unavailable"
    title = "The authentication store is unavailable"


class HashingBusyError(StoreUnavailableError):
    """Every password-hashing slot and every place in the queue behind them is taken, so
    this login, registration or password change is refused at once instead of waiting
    (see `passwords.PasswordHasher`). Under StoreUnavailableError because it is the same
    promise to a client: nothing was done, try again later; `headers` carry Retry-After."""

    code = "server_busy"
    title = "Too many password checks are waiting; retry shortly"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Iterable[tuple[str, str]] = (),
        retry_after: int = 1,
    ) -> None:
        carried = tuple(headers)
        if not any(name.lower() == "retry-after" for name, _ in carried):
            carried += (("Retry-After", str(retry_after)),)
        super().__init__(detail, headers=carried)


class StoreUnsafeError(StoreUnavailableError):
    """A write refused before it reached the store, because the store was seen to lack a
    conditional write (`store_check`): it would have been made without the guarantee it
    needs. What the store lacks goes to the log, not to the client."""

    code = "store_unsafe"
    title = "The authentication store cannot hold its state safely"


class ConfigurationError(S3AuthError, ValueError):
    """Invalid configuration; the message names the setting (and its variable)."""

    status = 500
    code = "configuration_error"
    title = "Invalid configuration"
