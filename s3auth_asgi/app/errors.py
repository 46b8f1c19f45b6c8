"""Errors of the HTTP layer: what only a web request can get wrong (its body, its method,
its rate), in the same tree as the service's errors so one handler renders them all."""

from __future__ import annotations

from ..errors import (
    ConflictError,
    InvalidCredentialsError,
    S3AuthError,
    S3ValidationError,
)


class MalformedBodyError(S3ValidationError):
    status = 400
    code = "malformed_body"
    title = "The request body could not be read"


class RepeatedCookieError(S3ValidationError):
    """A credential cookie the request sends more than once: another host of the site may
    have set one of that name for the whole domain (cookie tossing), and nothing in the
    request tells which is this host's, so neither is used, and neither is cleared."""

    status = 400
    code = "repeated_cookie"
    title = "A cookie is sent more than once"


class MalformedIfMatchError(S3ValidationError):
    """An If-Match header that is neither `*` nor a list of entity tags (RFC 9110
    §13.1.1). Refused rather than ignored: ignored, the change it was to guard would be
    made unconditionally."""

    status = 400
    code = "malformed_if_match"
    title = "The If-Match header is not a list of entity tags"


class UnsupportedMediaTypeError(S3ValidationError):
    status = 415
    code = "unsupported_media_type"
    title = "Unsupported content type"


class BodyTooLargeError(S3ValidationError):
    status = 413
    code = "body_too_large"
    title = "The request body is too large"


class UnsupportedGrantTypeError(S3ValidationError):
    """RFC 6749 §5.2 `unsupported_grant_type`."""

    status = 400
    code = "unsupported_grant_type"
    title = "The grant type is not supported by this endpoint"


class AccountExistsError(ConflictError):
    """The one answer to a taken username or email when enumeration protection is on, so a
    stranger cannot probe which names and addresses are registered."""

    code = "account_exists"
    title = "An account with this username or email address already exists"


class OwnAccountError(ConflictError):
    """An administrator's admin call that would take their own administration away
    (demote, disable or delete their own account): with no other administrator, nobody
    could give it back through the API. Another administrator, or the CLI, does it."""

    code = "own_account"
    title = "Administrators cannot demote, disable or delete their own account"


class CurrentPasswordRequiredError(S3ValidationError):
    """A change that needs the current password (the email address) came without it."""

    status = 403
    code = "current_password_required"
    title = "This change needs the current password"


class EmailNotVerifiedError(S3AuthError):
    """S3AUTH_REQUIRE_VERIFIED_EMAIL: the password was right, the address is not verified
    yet (`POST /email/verify/resend` mails a new link). Only the holder of the password
    hears it, so it tells nobody else that the account exists. Not a PermissionDeniedError:
    no scope would help, so no `insufficient_scope` challenge."""

    status = 403
    code = "email_not_verified"
    title = "The email address of this account is not verified yet"


class AdminPasswordSetDisabledError(S3AuthError):
    """S3AUTH_ADMIN_SETS_PASSWORDS=false: an administrator may not choose an account's
    password (`POST /admin/users/{id}/password-reset` mails the owner a link instead). Not a
    PermissionDeniedError: no scope would help, so no `insufficient_scope` challenge."""

    status = 403
    code = "admin_password_set_disabled"
    title = "Administrators do not set passwords here: start a reset instead"


class WrongCurrentPasswordError(InvalidCredentialsError):
    """403 rather than 401: the caller's token is fine, and a client that reacts to 401 by
    logging out should not do so over a typo in a form."""

    status = 403
    code = "wrong_password"
    title = "The current password is wrong"


class InternalError(S3AuthError):
    """The answer to a bug, never raised: nothing about it but that it happened (the log has
    the rest). Rendered as every other error is, so a token endpoint's carries its OAuth
    error too."""

    code = "internal_error"
    title = "Internal server error"


class AuthNotConfiguredError(S3AuthError):
    """A host's route that asks for the caller (a FastAPI dependency, a Litestar guard) in an
    app that was not given the service: a mistake of the server's setup, which admits
    nobody. The log names the fix (`host_auth.not_configured`); the client learns only
    that it is the server's."""

    code = "auth_not_configured"
    title = "Authentication is not set up for this route"


class MethodNotAllowedError(S3AuthError):
    status = 405
    code = "method_not_allowed"
    title = "Method not allowed"


class CrossOriginRequestError(S3AuthError):
    """Browser mode: a state-changing request that a page of another origin made (see
    `origins`). Outside the 403 branch of PermissionDeniedError: it is not about who is
    calling, and its answer carries no `insufficient_scope` challenge."""

    status = 403
    code = "cross_origin_request"
    title = "Cross-origin request refused"
