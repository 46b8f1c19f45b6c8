"""The problem answers of the OpenAPI documents: what each error status of an auth
operation means, and the headers it is sent with, for the auth app's own document
(`app.openapi`), for the host routes its dependencies guard (`app.host_document`) and for
the host operations BearerTokenMiddleware guards (`middleware.openapi`)."""

from __future__ import annotations

import copy
from typing import Any

from .problems import PROBLEM_CONTENT_TYPE, STORE_UNAVAILABLE_DESCRIPTION
from .ratelimit.fields import REFUSAL_DESCRIPTION, RETRY_AFTER

ERROR_DESCRIPTIONS = {
    400: "The body could not be read (malformed JSON or form), a field of it is given twice, "
    "or an unsupported grant type",
    401: "No valid credentials: missing, invalid, expired or revoked token, or wrong password",
    403: "Authenticated, but not allowed",
    404: "No such resource",
    409: "The request conflicts with the state of an account",
    412: "The account is no longer at the version `If-Match` names: nothing is changed",
    413: "The body is larger than the limit",
    415: "The body's content type is not accepted, or it has a content coding (gzip, …), "
    "which is not decoded: send it as it is",
    422: "The body or query is well-formed but invalid: missing, mistyped or unknown fields, "
    "a query parameter given twice or an integer one not in decimal digits, or values the "
    "service refuses",
    429: REFUSAL_DESCRIPTION,
    503: STORE_UNAVAILABLE_DESCRIPTION,
}
BUSY_HASHING_DESCRIPTION = (
    "The object store is unreachable, or password hashing is at capacity (code "
    "`server_busy`); retry after Retry-After seconds"
)
"""The 503 of an operation that hashes a password: ERROR_DESCRIPTIONS' is the others'."""
NEW_PASSWORD_DESCRIPTION = (
    "The object store is unreachable, password hashing is at capacity (code `server_busy`), "
    "or the breached-password service did not answer where "
    "S3AUTH_BREACHED_PASSWORDS_FAIL_CLOSED refuses a password it cannot check (code "
    "`password_check_unavailable`); retry after Retry-After seconds"
)
"""The 503 of an operation that sets a new password."""
CONFLICT_DESCRIPTIONS = {
    "account_exists": "the username or email address is taken (one answer for both)",
    "username_taken": "the username is taken",
    "email_taken": "the email address is taken",
    "conflict": "a concurrent change of the account came first (nothing is changed)",
    "own_account": "an administrator's own account would lose its administration",
    "account_disabled": "the account is disabled, and no link would work on it",
    "totp_enabled": "the second factor is on already (turn it off first)",
    "totp_not_enabled": "the second factor is not on",
    "totp_not_pending": "no new second factor waits for a code (none started, or its time ran out)",
}
"""What each code of a 409 (`Operation.conflicts`) means."""
INVALID_REQUEST_DESCRIPTION = (
    "The Authorization header is sent more than once: a malformed request whatever the "
    'tokens, code `invalid_request`, with the Bearer challenge `error="invalid_request"` '
    "(RFC 6750 §3.1)"
)
"""The 400 of every operation that takes a bearer token."""
INVALID_REQUEST_CHALLENGE = {
    "WWW-Authenticate": {
        "description": 'The Bearer challenge (RFC 6750), `error="invalid_request"` when the '
        "credentials are sent more than once",
        "schema": {"type": "string"},
    }
}
RECENT_CHALLENGE = {
    "WWW-Authenticate": {
        "description": "The Bearer challenge (RFC 6750); for `reauthentication_required`, "
        '`error="insufficient_user_authentication"` with `max_age`, the seconds the route '
        "allows since the user authenticated (RFC 9470 §3)",
        "schema": {"type": "string"},
    }
}
"""The 401's challenge on a host's route that asks for a recent authentication."""


REAUTHENTICATION_DESCRIPTION = (
    "or a token whose authentication is more than {} seconds old (`auth_time`), code "
    '`reauthentication_required`, with the challenge `error="insufficient_user_authentication"` '
    "and `max_age` (RFC 9470): authenticate again at `POST /reauthenticate`, then retry "
    "with the access token it answers"
)
"""Of the 401 of an operation that asks for a recent authentication: its `max_age` goes in."""
CROSS_ORIGIN_DESCRIPTION = (
    "a state-changing request from another origin's page, or one with the refresh cookie "
    "and neither `Origin` nor `Sec-Fetch-Site` (browser mode: see S3AUTH_ALLOWED_ORIGINS), "
    "code `cross_origin_request`"
)

_ERROR_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "The Bearer challenge (RFC 6750)",
            "schema": {"type": "string"},
        }
    },
    403: {
        "WWW-Authenticate": {
            "description": 'The Bearer challenge (RFC 6750), `error="insufficient_scope"` '
            "when the caller lacks a permission or scope",
            "schema": {"type": "string"},
        }
    },
    429: RETRY_AFTER,
    503: RETRY_AFTER,
}


def bearer_request_refusal(schema: dict[str, Any], other: bool = False) -> dict[str, Any]:
    """The 400 of an operation that takes a bearer token: the credentials sent more than
    once, and, where `other`, its input unreadable (ERROR_DESCRIPTIONS)."""
    description = INVALID_REQUEST_DESCRIPTION
    if other:
        description = f"{ERROR_DESCRIPTIONS[400]}; or {description[0].lower()}{description[1:]}"
    answer = error_response(400, schema, description)
    answer["headers"] = copy.deepcopy(INVALID_REQUEST_CHALLENGE)
    return answer


def error_response(
    status: int, schema: dict[str, Any], description: str | None = None
) -> dict[str, Any]:
    """The response object of a problem answer with `status`: `schema` under the problem
    media type, the headers that answer carries, and ERROR_DESCRIPTIONS' words unless
    others are given."""
    error: dict[str, Any] = {
        "description": ERROR_DESCRIPTIONS[status] if description is None else description,
        "content": {PROBLEM_CONTENT_TYPE: {"schema": schema}},
    }
    if status in _ERROR_HEADERS:
        error["headers"] = copy.deepcopy(_ERROR_HEADERS[status])
    return error


def asking_recent(answer: dict[str, Any], max_age: int) -> dict[str, Any]:
    """`answer`, the 401 of a host's route that asks for an authentication at most
    `max_age` seconds old (`step_up`), saying so: its words, and its challenge's."""
    answer["description"] += (
        f"; or, code `reauthentication_required`, the user authenticated more than {max_age} "
        "seconds ago, or the token does not say when (no `auth_time`): authenticate again "
        "(the auth app's `POST /reauthenticate`) and retry with the access token it answers"
    )
    answer["headers"] = copy.deepcopy(RECENT_CHALLENGE)
    return answer
