"""The refusals of the token endpoints (`/login`, `/refresh`) in the words of OAuth 2.0: each
problem they answer also carries the RFC 6749 §5.2 `error` its code stands for, and an
`error_description`. RFC 9457 §3.2 lets a problem type carry members of its own.

OAuth client libraries read `error`, not `code`: authlib raises `OAuthError(error=...)`,
oauthlib the class of that error, Swagger UI shows `error` and `error_description`. Nor do
they look at the status before the body: authlib takes any JSON object without `error`
answered below 500 for a token, so a refusal without one would become the client's token.

The statuses stay those of the rest of the API (401 for a wrong password or a refused
refresh token, where RFC 6749 says 400 `invalid_grant`): clients go by `error`, and an
application that reacts to a 401 from these endpoints by logging in again keeps working.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, ClassVar, Literal

import msgspec
from msgspec import Meta

from ..errors import S3AuthError
from ..hidden_fields import HidesSecrets
from ..problems import DEFAULT_REALM, Problem, RenderedProblem, problem_of, render
from ..totp_errors import MfaRequiredError

OAuthError = Literal[
    "invalid_request",
    "invalid_grant",
    "unsupported_grant_type",
    "temporarily_unavailable",
    "server_error",
    "mfa_required",
]

TOKEN_ERRORS: Mapping[str, OAuthError] = MappingProxyType(
    {
        # The grant (a password, a refresh token) gives no token: it is wrong, nobody's,
        # expired, revoked or spent, or the account's address must be verified first, or
        # it holds more scopes than a token carries.
        "invalid_credentials": "invalid_grant",
        "email_not_verified": "invalid_grant",
        "token_too_large": "invalid_grant",
        "invalid_token": "invalid_grant",
        "token_expired": "invalid_grant",
        "token_revoked": "invalid_grant",
        "refresh_token_reused": "invalid_grant",
        # The login's second step: its token no longer holds, or the code is wrong.
        "invalid_mfa_token": "invalid_grant",
        "wrong_totp_code": "invalid_grant",
        # The password was right, and the account wants a code too: the error OAuth
        # servers with a second factor answer, with the `mfa_token` to send it with.
        "mfa_required": "mfa_required",
        "unsupported_grant_type": "unsupported_grant_type",
        # The request itself: unreadable, incomplete, or not one this endpoint takes.
        "malformed_body": "invalid_request",
        "validation_error": "invalid_request",
        "body_too_large": "invalid_request",
        "unsupported_media_type": "invalid_request",
        "authentication_required": "invalid_request",
        "repeated_cookie": "invalid_request",
        "cross_origin_request": "invalid_request",
        # The demo's, to a Host that is not its own (`demo.loopback`).
        "misdirected_request": "invalid_request",
        # Nothing is wrong with the request; try again later. RFC 6749 names this error
        # for the authorization endpoint only (§4.1.2.1) and has none for the token
        # endpoint: without one a client would take a 429 for a token (above).
        "rate_limited": "temporarily_unavailable",
        "store_unavailable": "temporarily_unavailable",
        "corrupt_object": "temporarily_unavailable",
        "server_busy": "temporarily_unavailable",
        "keys_unavailable": "temporarily_unavailable",
        "store_unsafe": "temporarily_unavailable",
        # A bug (a 500): RFC 6749 names this error, too, for the authorization endpoint
        # only (§4.1.2.1); with it, every answer of these endpoints but a token has one.
        "internal_error": "server_error",
    }
)
"""The RFC 6749 §5.2 error of each code the token endpoints answer with."""

# RFC 6749 §5.2: the characters an error_description may hold.
_DESCRIBABLE = frozenset(chr(c) for c in range(0x20, 0x7F)) - {'"', "\\"}


class TokenProblem(HidesSecrets, Problem, omit_defaults=True):
    """A problem of a token endpoint: RFC 9457 with the error response of RFC 6749 §5.2."""

    secret_fields: ClassVar[frozenset[str]] = frozenset(("mfa_token",))

    error: Annotated[
        OAuthError | None,
        Meta(
            description="The RFC 6749 §5.2 error of `code`: invalid_grant for a wrong "
            "password or a refresh token that is invalid, expired, revoked or spent; "
            "invalid_request for a body that is unreadable or incomplete; "
            "unsupported_grant_type; temporarily_unavailable for a 429 or 503; server_error "
            "for a 500."
        ),
    ] = None
    error_description: Annotated[
        str | None,
        Meta(description="The problem's `detail`, or its `title` where it has none."),
    ] = None
    mfa_token: Annotated[
        str | None,
        Meta(
            description="Of `mfa_required` alone: what `POST /login/totp` takes with a code "
            "of the account's authenticator app, for 5 minutes."
        ),
    ] = None


def describe(text: str) -> str:
    """`text` within the characters RFC 6749 allows an error_description."""
    return "".join(c if c in _DESCRIBABLE else "?" for c in text)


def render_token_problem(error: S3AuthError, realm: str = DEFAULT_REALM) -> RenderedProblem:
    """`problems.render`, with the OAuth members where the code has an error."""
    problem = problem_of(error)
    oauth_error = TOKEN_ERRORS.get(error.code)
    if oauth_error is None:
        return render(error, realm, problem)
    members = msgspec.structs.asdict(problem)
    description = describe(problem.detail or problem.title)
    mfa_token = error.mfa_token if isinstance(error, MfaRequiredError) else None
    token_problem = TokenProblem(
        **members, error=oauth_error, error_description=description, mfa_token=mfa_token
    )
    return render(error, realm, token_problem)
