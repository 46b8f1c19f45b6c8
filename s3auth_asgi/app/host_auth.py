"""The caller of a host's route, for the FastAPI dependencies and the Litestar guards.

Behind BearerTokenMiddleware given the service (or its TokenCodec) the token was verified
there and the caller is in `scope["auth"]`. Without it, on a path it excludes, or behind one
given another verifier (whose credentials vouch for no caller of the service:
`verifier.verifier_identity`), the `Authorization: Bearer` token is
judged here in the middleware's order (`verifier.TokenJudge`: signing keys overdue read
first, so that none from before an idle spell verifies it; a key the service does not know
read again), and the caller put into `scope["user"]` and
`scope["auth"]` as the middleware would, so that `request.user` works in the endpoint, and
`current_user()` too: `CallerContext`, around the host's routes, makes the connection's scope
the current one, as the middleware does around the app it wraps.
Revocation is checked here either way (BlacklistMiddleware may not be installed), as the
auth app checks it, against the snapshot the one freshness policy keeps (`freshness`): an
in-process lookup, with an object-store request only when the snapshot is missing or too
old. Only once the token is judged, as BlacklistMiddleware comes after the middleware: a
forged token is refused 401 asking the store nothing, even while it is down. Behind
`BlacklistMiddleware(strict=True)`, which passes the token of a path BearerTokenMiddleware
excludes unchecked, a token verified here waits for a sync that began after it arrived, as
the middleware would have it wait.

The integrations keep one HostAuth in the host app's state under STATE_KEY, put there when
the auth app is included, so that dependencies and guards, declared before the app exists,
find the service of the app that runs them. An app without one (another app mounted in the
host, with its own state) admits nobody there: `not_configured` logs the fix once per app,
and its refusal is a 500 problem, `auth_not_configured`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import MutableMapping, Sequence

from ..connection_close import refusals_closing
from ..errors import AuthenticationRequiredError, InsufficientScopeError
from ..middleware.blacklist import STRICT_REVOCATIONS
from ..middleware.cache import VerifiedToken
from ..middleware.credentials import authorization_token
from ..middleware.user import AuthenticatedUser, serve_as_current
from ..step_up import require_recent
from ..types import ASGIApp, Clock, Receive, Scope, Send
from ..verifier import (
    AccessTokenVerifier,
    RevocationCheck,
    TokenJudge,
    verifier_identity,
)
from .errors import AuthNotConfiguredError

STATE_KEY = "s3auth"
"""Where the HostAuth lives in the host app's state."""

_REPORTED_KEY = "s3auth_not_configured_reported"
"""Set in the state of an app whose missing HostAuth was logged."""

logger = logging.getLogger("s3auth_asgi.app")


def not_configured(state: object, fix: str) -> AuthNotConfiguredError:
    """The refusal of a route that asks for the caller in an app whose `state` (Litestar's,
    a mapping, or Starlette's, of attributes) holds no HostAuth. The first for that app
    logs an error saying `fix`: the same mistake on every request is one line, and the
    client's answer says nothing of the setup."""
    if isinstance(state, MutableMapping):
        first = state.get(_REPORTED_KEY) is not True
        state[_REPORTED_KEY] = True
    else:
        first = getattr(state, _REPORTED_KEY, None) is not True
        setattr(state, _REPORTED_KEY, True)
    if first:
        logger.error("a route admits nobody: %s", fix)
    return AuthNotConfiguredError()


class HostAuth:
    """Resolves the caller of a host request, holding the scopes a route requires."""

    def __init__(
        self,
        verifier: AccessTokenVerifier,
        revocations: RevocationCheck,
        *,
        clock: Clock = time.time,
    ) -> None:
        self.verifier = verifier
        self.revocations = revocations
        self.clock = clock
        self._own = verifier_identity(verifier)
        self._judge = TokenJudge(verifier, verifier.verify_access_token)

    async def caller(
        self, scope: Scope, scopes: Sequence[str] = (), max_age: int | None = None
    ) -> AuthenticatedUser:
        """The authenticated caller holding every one of `scopes`, and with `max_age`,
        authenticated at most that many seconds ago (`step_up`). Raises
        InvalidRequestError (400: the Authorization header sent twice),
        AuthenticationRequiredError or InvalidTokenError (401), TokenRevokedError (401),
        InsufficientScopeError (403), ReauthenticationRequiredError (401) or
        StoreUnavailableError (503), with `Connection: close` where the request declared a
        body (`connection_close.refusal_closes`): a guard refuses before the route reads it,
        and so may a dependency."""
        with refusals_closing(scope):
            return await self._caller(scope, scopes, max_age)

    async def _caller(
        self, scope: Scope, scopes: Sequence[str], max_age: int | None
    ) -> AuthenticatedUser:
        credentials = scope.get("auth")
        if isinstance(credentials, VerifiedToken) and credentials.verified_by is self._own:
            verified, from_middleware = credentials, True
            await self.revocations.ensure_fresh()
        else:
            token = authorization_token(scope)
            if token is None:
                raise AuthenticationRequiredError()
            # Judged before revocations are asked for, as behind the middlewares: a forged
            # token is refused while the store is down (`verifier.TokenJudge`).
            claims = await self._judge.judge(token)
            verified = VerifiedToken(claims, self.verifier.leeway_seconds, verified_by=self._own)
            from_middleware = False
            await self.revocations.ensure_fresh(strict=scope.get(STRICT_REVOCATIONS) is True)
        revoked = self.revocations.revoked_error(verified.user.claims)
        if revoked is not None:
            raise revoked
        granted = verified.scopes
        if not all(s in granted for s in scopes):
            raise InsufficientScopeError(scopes)
        require_recent(
            verified.user.claims, max_age, self.clock(), leeway=self.verifier.leeway_seconds
        )
        if not from_middleware:
            scope["user"] = verified.user
            scope["auth"] = verified
        return verified.user


class CallerContext:
    """Pure ASGI, around a host's routes: the scope of each connection is the current one
    while it is handled, so that `current_user()` finds the caller a dependency or a guard
    put there without BearerTokenMiddleware. Reset after it: the caller outlives the
    connection in no task, not even that of an in-process client which sent it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        await serve_as_current(self.app, scope, receive, send)
