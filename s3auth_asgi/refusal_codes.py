"""The errors a bearer token's check refuses with, in bundles: the auth app's operations
(`app.problem_codes`), a host's routes its dependencies and guards protect, and a host's
operations BearerTokenMiddleware protects (`middleware.openapi`) list their problem codes
from these, so that each document says what the checks raise."""

from __future__ import annotations

from collections.abc import Iterable

from .errors import (
    AuthenticationRequiredError,
    InsufficientScopeError,
    InvalidRequestError,
    InvalidTokenError,
    S3AuthError,
    StoreUnavailableError,
    StoreUnsafeError,
    TokenExpiredError,
    TokenRevokedError,
)
from .keys.remote import KeysUnavailableError
from .step_up import ReauthenticationRequiredError
from .storage.base import CorruptObjectError

Raised = tuple[type[S3AuthError], ...]

SENT_TOKEN: Raised = (InvalidRequestError, InvalidTokenError, TokenExpiredError)
"""What reading and verifying a token that was sent refuses: the Authorization header
sent twice, a token that is invalid (or whose account is gone or disabled) or expired."""
MISSING_TOKEN: Raised = (AuthenticationRequiredError,)
REVOKED: Raised = (TokenRevokedError,)
KEYS: Raised = (KeysUnavailableError,)
"""No keys to verify a token with (nor to sign one)."""
BEARER_TOKEN: Raised = (SENT_TOKEN[0], *MISSING_TOKEN, *SENT_TOKEN[1:], *REVOKED, *KEYS)
"""What checking an access token refuses: it sent twice, none, one invalid, expired or
revoked, or no keys to verify it."""
SCOPES: Raised = (InsufficientScopeError,)
"""What a host's route that requires scopes refuses a token lacking one of them with."""
RECENT: Raised = (ReauthenticationRequiredError,)
"""What a host's route that asks for a recent authentication (`max_age`, `step_up`)
refuses a token authenticated longer ago, or not saying when, with."""
STORE: Raised = (StoreUnavailableError, CorruptObjectError, StoreUnsafeError)
"""What every operation on the store may answer: unreachable, an object unreadable, or
a write refused on a store that lacks a conditional write."""


def by_status(raised: Iterable[type[S3AuthError]]) -> dict[int, tuple[str, ...]]:
    """The codes of `raised` by status, each once, in the order first raised."""
    codes: dict[int, dict[str, None]] = {}
    for error in raised:
        codes.setdefault(error.status, {})[error.code] = None
    return {status: tuple(codes[status]) for status in sorted(codes)}
