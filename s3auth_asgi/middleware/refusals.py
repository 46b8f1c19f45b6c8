"""Refusals: 401 and 403 with an RFC 6750 `WWW-Authenticate: Bearer` challenge and an
RFC 9457 problem body, or a WebSocket closed with 1008 before it is accepted.

- no token where one is required: 401, `Bearer realm="api"` — no error code (RFC 6750
  §3.1), problem code `authentication_required`;
- a token that is malformed, badly signed, expired, not yet valid, of the wrong type,
  issuer or audience, or revoked: 401, `error="invalid_token"` with an
  `error_description`, problem code `invalid_token`, `token_expired` or `token_revoked`;
- a valid token without the scopes the path or endpoint needs: 403,
  `error="insufficient_scope"` and `scope="..."`, problem code `insufficient_scope`.

`auth_error_response` gives the same status, headers and body for errors raised inside an
app (by `requires`), for a framework exception handler to send.
"""

from __future__ import annotations

from ..errors import (
    AuthenticationRequiredError,
    InsufficientScopeError,
    InvalidTokenError,
    PermissionDeniedError,
    S3AuthError,
)
from ..types import Scope, Send
from .responses import PROBLEM_CONTENT_TYPE, close_websocket, problem_for, send_problem

# RFC 6750 §3: the characters allowed inside realm, error_description and scope values.
_QUOTABLE = frozenset(chr(c) for c in range(0x20, 0x7F)) - {'"', "\\"}


def check_realm(realm: object) -> str:
    if not isinstance(realm, str) or not realm or not set(realm) <= _QUOTABLE:
        raise ValueError("realm must be printable ASCII without quotes or backslashes")
    return realm


def _quoted(text: str) -> str:
    return "".join(c if c in _QUOTABLE else "?" for c in text)[:200]


def challenge(realm: str, error: S3AuthError | None = None) -> str:
    """The `WWW-Authenticate` value for a refusal (None: no token was presented)."""
    parts = [f'Bearer realm="{realm}"']
    # Only token errors carry an error code and description (RFC 6750 §3); a missing token
    # or a wrong password gets the bare challenge.
    if isinstance(error, PermissionDeniedError):
        parts.append('error="insufficient_scope"')
    elif isinstance(error, InvalidTokenError):
        parts.append('error="invalid_token"')
    else:
        return parts[0]
    parts.append(f'error_description="{_quoted(error.detail)}"')
    if isinstance(error, InsufficientScopeError):
        parts.append(f'scope="{_quoted(" ".join(error.scopes))}"')
    return ", ".join(parts)


def auth_error_response(
    error: S3AuthError, realm: str = "api"
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and problem+json body for an error of this package, for a
    framework's exception handler (see docs/frameworks)."""
    status, body = problem_for(error)
    headers = {"content-type": PROBLEM_CONTENT_TYPE, "cache-control": "no-store"}
    if status in (401, 403):
        headers["www-authenticate"] = challenge(check_realm(realm), error)
    return status, headers, body


class Refusals:
    """Sends refusals for one realm; the answer to a missing token is built once."""

    def __init__(self, realm: str) -> None:
        self.realm = check_realm(realm)
        missing = AuthenticationRequiredError()
        self._missing_status, self._missing_body = problem_for(missing)
        self._missing_headers = [(b"www-authenticate", challenge(realm).encode("ascii"))]

    async def refuse(self, scope: Scope, send: Send, error: S3AuthError) -> None:
        if scope["type"] == "websocket":
            await close_websocket(send, error.code)
        elif isinstance(error, AuthenticationRequiredError):
            await send_problem(
                send, self._missing_status, self._missing_body, self._missing_headers
            )
        else:
            status, body = problem_for(error)
            headers = []
            if status in (401, 403):
                headers.append((b"www-authenticate", challenge(self.realm, error).encode("ascii")))
            await send_problem(send, status, body, headers)
