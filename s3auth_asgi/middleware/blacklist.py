"""BlacklistMiddleware: refuses verified tokens that have been revoked since.

Place it inside BearerTokenMiddleware, which verifies the token and puts its claims into
`scope["auth"]`; this one then refuses (401 `invalid_token`, problem code `token_revoked`;
WebSocket: close 1008) a token whose `jti` was blacklisted, whose session (`sid`) was
logged out, or whose user's epoch moved after the session began (logout everywhere,
password change, deactivation, changed privileges).

It checks the process's in-process snapshot of revocations (`TokenBlacklist`): no
object-store request on the request path. When the snapshot is older than the blacklist's
sync interval (`S3AUTH_REVOCATION_SYNC_SECONDS`, default 5 s), a request starts one sync in
the background — one LIST of what is new — and is answered from the current snapshot
without waiting. Requests wait only when there is no usable snapshot: the first
authenticated request of a process, and one that finds the snapshot twice the interval old
(the process was idle, or the store is slower than the interval).

Staleness bound: a revocation made through the same `TokenBlacklist` (the same
S3AuthService) holds from the next request. One made by another process holds for every
request that starts more than twice the sync interval after it was written, and, under
steady traffic, more than the sync interval plus the duration of one LIST after it. If the
store cannot be reached, the error is logged, the last snapshot keeps being used and a new
sync is tried once per interval: the bound holds while the store answers.

`strict=True` waits, on every authenticated request, for a sync that started after the
request arrived, so revocations from anywhere hold at once; concurrent requests share one
LIST. A store that cannot be reached then answers 503.
"""

from __future__ import annotations

from ..blacklist import TokenBlacklist
from ..errors import S3AuthError
from ..service import S3AuthService
from ..types import ASGIApp, Receive, Scope, Send
from .challenge import Refusals
from .sync import syncer_for
from .user import BearerCredentials


class BlacklistMiddleware:
    """Refuse revoked access tokens, from a snapshot synced at most once per interval."""

    def __init__(
        self,
        app: ASGIApp,
        blacklist: TokenBlacklist | S3AuthService,
        *,
        strict: bool = False,
        realm: str = "api",
    ) -> None:
        if not callable(app):
            raise TypeError("app must be an ASGI application")
        if isinstance(blacklist, S3AuthService):
            blacklist = blacklist.blacklist
        if not isinstance(blacklist, TokenBlacklist):
            raise TypeError("blacklist must be a TokenBlacklist or an S3AuthService")
        self.app = app
        self.blacklist = blacklist
        self.strict = bool(strict)
        self.syncer = syncer_for(blacklist)
        self.refusals = Refusals(realm)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        auth = scope.get("auth")
        if not isinstance(auth, BearerCredentials):
            if "auth" not in scope:
                # Outside BearerTokenMiddleware every token would pass unchecked.
                raise RuntimeError(
                    "BlacklistMiddleware must be placed inside BearerTokenMiddleware"
                )
            await self.app(scope, receive, send)
            return
        claims = auth.claims
        if claims is not None:
            try:
                if self.strict:
                    await self.syncer.fresh()
                elif self.blacklist.is_stale():
                    if self.syncer.overdue():
                        await self.syncer.catch_up()
                    else:
                        self.syncer.refresh_in_background()
            except S3AuthError as error:  # no snapshot to answer from, or strict mode
                await self.refusals.refuse(scope, send, error)
                return
            revoked = self.blacklist.revoked_error(claims)
            if revoked is not None:
                await self.refusals.refuse(scope, send, revoked)
                return
        await self.app(scope, receive, send)
