"""Problems: how every error of this package is answered over HTTP, in one place.

The body is an RFC 9457 `application/problem+json` document with the error's stable
`code`; the headers are what its status calls for:

- 401: `WWW-Authenticate: Bearer realm="…"` (RFC 6750 §3): a bare challenge when no token
  was presented or a password was wrong, `error="invalid_token"` with an
  `error_description` for a token that is malformed, expired or revoked;
- 401 `reauthentication_required` (a route's `max_age`, `step_up`): RFC 9470's
  `error="insufficient_user_authentication"`, with `max_age`;
- 403: `error="insufficient_scope"`, and `scope="…"` when the scopes are known;
- 400 `invalid_request` (credentials sent twice, or in two ways): `error="invalid_request"`
  with an `error_description` (RFC 6750 §3.1);
- 429: `Retry-After` and the RateLimit fields, which the error carries;
- 503: `Retry-After` (the store is down; retrying at once adds to its load);
- every problem: `Cache-Control: no-store` and `X-Content-Type-Options: nosniff` (a browser
  takes the document for JSON, never for a page or a script it guessed from the bytes).

The auth app's token endpoints add the members of an OAuth 2.0 error (RFC 6749 §5.2) to
theirs (`app.token_errors`), through `render`'s `problem`.

`render` builds that once; the middlewares send it as raw ASGI messages (`send_problem`),
the auth app as a Starlette response, and a framework's exception handler through
`auth_error_response`. A WebSocket handshake is refused with the same response where the
server can send one, else with close code 1008 before accept (`refuse_websocket`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec

from .connection_close import closing
from .errors import (
    ConfigurationError,
    InsufficientScopeError,
    InvalidRequestError,
    InvalidTokenError,
    PermissionDeniedError,
    S3AuthError,
)
from .step_up import ReauthenticationRequiredError
from .types import Scope, Send

PROBLEM_CONTENT_TYPE = "application/problem+json"
DEFAULT_REALM = "api"
"""Of the `WWW-Authenticate` challenges, unless a middleware is given another."""
STORE_RETRY_AFTER_SECONDS = 5
"""What a client is told to wait when the object store is down: long enough not to add to
the load of a store that is struggling, short enough for a blip to go unnoticed."""
STORE_UNAVAILABLE_DESCRIPTION = "The object store is unreachable; retry after Retry-After seconds"
"""What a 503 of the store means in an OpenAPI document: the auth app's and a host's
(`ratelimit.openapi`)."""
NOSNIFF = ("x-content-type-options", "nosniff")
"""On every problem, and every answer of the auth app (`app.application`): a browser takes
the answer for the type it says, never for a page or a script it guessed from the bytes."""

ECHO_MAX = 200
"""The most characters of what a client sent (a header's value, a member's name) that a
problem's detail quotes: whatever length was sent would otherwise reach every log, error
tracker and page that keeps or shows details."""

# RFC 6750 §3: the characters allowed inside realm, error_description and scope values.
_QUOTABLE = frozenset(chr(c) for c in range(0x20, 0x7F)) - {'"', "\\"}


def echoed(text: str) -> str:
    """`text` as a detail quotes it: its first ECHO_MAX characters, then `…` if it goes on.
    JSON escapes what it holds; the length is this one's to bound."""
    return text if len(text) <= ECHO_MAX else text[:ECHO_MAX] + "…"


class Problem(msgspec.Struct, omit_defaults=True):
    """An RFC 9457 problem document with the stable `code` of this package."""

    title: str
    status: int
    code: str
    detail: str | None = None
    type: str = "about:blank"
    errors: list[str] | None = None
    """Each problem found, when several were (every rule a weak password breaks)."""


def with_codes(problem: dict[str, Any], codes: Sequence[str]) -> dict[str, Any]:
    """The JSON Schema `problem` (a problem's, or a reference to one), its `code` one of
    `codes`: what an OpenAPI document lists for an answer, so that a client knows every
    case it must handle."""
    return {"allOf": [problem, {"properties": {"code": {"enum": list(codes)}}}]}


class RenderedProblem(NamedTuple):
    status: int
    headers: list[tuple[str, str]]
    """Lower-case names, in the order they are sent."""
    body: bytes


_encoder = msgspec.json.Encoder()


def check_realm(realm: object) -> str:
    """The realm if it can be quoted in a challenge; ConfigurationError otherwise."""
    if not isinstance(realm, str) or not realm or not set(realm) <= _QUOTABLE:
        raise ConfigurationError("realm must be printable ASCII without quotes or backslashes")
    return realm


def _quoted(text: str) -> str:
    return "".join(c if c in _QUOTABLE else "?" for c in text)[:200]


def challenge(realm: str, error: S3AuthError | None = None) -> str:
    """The `WWW-Authenticate` value for a refusal (None: no token was presented)."""
    parts = [f'Bearer realm="{realm}"']
    if isinstance(error, ReauthenticationRequiredError):  # RFC 9470 §3
        return (
            f'{parts[0]}, error="insufficient_user_authentication", '
            f'error_description="{_quoted(error.detail)}", max_age="{error.max_age}"'
        )
    # Only token errors carry an error code and description (RFC 6750 §3); a missing token
    # or a wrong password gets the bare challenge.
    if isinstance(error, PermissionDeniedError):
        parts.append('error="insufficient_scope"')
    elif isinstance(error, InvalidTokenError):
        parts.append('error="invalid_token"')
    elif isinstance(error, InvalidRequestError):
        parts.append('error="invalid_request"')
    else:
        return parts[0]
    parts.append(f'error_description="{_quoted(error.detail)}"')
    if isinstance(error, InsufficientScopeError):
        parts.append(f'scope="{_quoted(" ".join(error.scopes))}"')
    return ", ".join(parts)


def problem_of(error: S3AuthError) -> Problem:
    """The document answering `error`: its detail only where it says more than the title."""
    detail = error.detail if error.detail != error.title else None
    return Problem(
        title=error.title,
        status=error.status,
        code=error.code,
        detail=detail,
        errors=list(error.errors) or None,
    )


def render(
    error: S3AuthError, realm: str = DEFAULT_REALM, problem: Problem | None = None
) -> RenderedProblem:
    """Status, headers and body answering `error`; `realm` must have passed check_realm.
    `problem`: the document to send instead of `problem_of(error)`, one with members of
    its own (RFC 9457 §3.2)."""
    status = error.status
    headers = [
        ("content-type", PROBLEM_CONTENT_TYPE),
        ("cache-control", "no-store"),
        NOSNIFF,
    ]
    if status in (401, 403) or isinstance(error, InvalidRequestError):
        headers.append(("www-authenticate", challenge(realm, error)))
    carried = [(name.lower(), value) for name, value in error.headers]
    if status == 503 and not any(name == "retry-after" for name, _ in carried):
        headers.append(("retry-after", str(STORE_RETRY_AFTER_SECONDS)))
    headers.extend(carried)
    body = _encoder.encode(problem_of(error) if problem is None else problem)
    return RenderedProblem(status, headers, body)


def auth_error_response(
    error: S3AuthError, realm: str = DEFAULT_REALM
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and problem+json body for an error of this package, for a
    framework's exception handler (see docs/frameworks)."""
    status, headers, body = render(error, check_realm(realm))
    return status, dict(headers), body


# Raw ASGI ------------------------------------------------------------------------------


async def send_problem(
    send: Send, problem: RenderedProblem, *, prefix: str = "http", close: bool = False
) -> None:
    """Send a problem response; `prefix="websocket.http"` denies a WebSocket handshake
    with a real HTTP response (the ASGI `websocket.http.response` extension). `close`:
    with `Connection: close` (`connection_close.refusal_closes`), unless the problem's
    headers say something of the connection already."""
    status, headers, body = problem
    raw_headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    raw_headers.append((b"content-length", str(len(body)).encode()))
    if close:
        raw_headers = closing(raw_headers)
    await send({"type": f"{prefix}.response.start", "status": status, "headers": raw_headers})
    await send({"type": f"{prefix}.response.body", "body": body})


async def refuse_websocket(scope: Scope, send: Send, problem: RenderedProblem, code: str) -> None:
    """Refuse a WebSocket handshake: with the problem response where the server offers
    the `websocket.http.response` extension, so that the client sees the status, the
    challenge and the body; else with close code 1008 (policy violation) before accept, the
    reason `code`. A close before accept never reaches the client as such: servers answer
    the handshake with a bare 403.

    Sent without reading `websocket.connect` first, as Starlette's router and Quart answer
    a handshake: servers queue that message before they start the app, so there is nothing
    to wait for, while a client that never sends it (Quart's test client) would wait for
    ever, as would an app that has read it already."""
    if "websocket.http.response" in (scope.get("extensions") or {}):
        await send_problem(send, problem, prefix="websocket.http")
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": code[:120]})
