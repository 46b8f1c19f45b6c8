"""BlacklistMiddleware: refuses verified tokens that have been revoked since.

Place it inside BearerTokenMiddleware, which verifies the token and puts its claims into
`scope["auth"]`; this one then refuses (401 `invalid_token`, problem code `token_revoked`;
a WebSocket handshake as `Refusals` does) a token whose `jti` was blacklisted, whose
session (`sid`) was logged out, or whose session a user entry names (logout everywhere,
password change, deactivation, changed privileges, deletion).

It checks the process's in-process snapshot of revocations: no object-store request on the
request path. How fresh the snapshot must be, and when a request waits for a sync, is the
one policy of `s3auth_asgi.freshness` (the auth app and `decode_token` follow it too): a
stale snapshot is synced in the background, one twice the interval old
(`S3AUTH_REVOCATION_SYNC_SECONDS`, default 5 s) or missing is waited for.

Staleness bound: a revocation made through the same `TokenBlacklist` (the same
S3AuthService) holds from the next request. One made by another process holds for every
request that starts more than twice the sync interval after it was written, and, under
steady traffic, more than the sync interval plus the duration of one LIST after it. If the
store cannot be reached, the error is logged, the last snapshot keeps being used and a new
sync is tried once per interval: the bound holds while the store answers.

Where the host runs the ASGI lifespan protocol, the first snapshot is loaded at startup, so
the first request does not wait for it; without lifespan, the first request does. Given the
service, it checks the service's store first (`store_check`): a store lacking a conditional
write fails the start.

`strict=True` waits, on every authenticated request, for a sync that started after the
request arrived, so revocations from anywhere hold at once; concurrent requests share one
LIST. A store that cannot be reached then answers 503. It also marks every request it
passes (`STRICT_REVOCATIONS` in the scope), so that a host's dependency or guard that
verifies a token itself, on a path BearerTokenMiddleware excludes, checks it as strictly
(`app.host_auth`).
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ConfigurationError, S3AuthError
from ..types import ASGIApp, Message, Receive, Scope, Send, checked_app
from ..verifier import RevocationCheck, load_at_startup
from .refusals import Refusals
from .user import BearerCredentials

STRICT_REVOCATIONS = "s3auth.strict_revocations"
"""The scope key a strict BlacklistMiddleware sets (True) on the connections it passes."""


class BlacklistMiddleware:
    """Refuse revoked access tokens, from a snapshot synced at most once per interval.

    `blacklist`: a RevocationCheck — the S3AuthService or its TokenBlacklist. One that
    also has `is_stale()` (both do) is asked that first, and awaited only when it has a
    sync to wait for or to start.
    """

    def __init__(
        self,
        app: ASGIApp,
        blacklist: RevocationCheck,
        *,
        strict: bool = False,
        realm: str = "api",
    ) -> None:
        if not isinstance(blacklist, RevocationCheck):
            raise ConfigurationError(
                "blacklist must be an S3AuthService or a TokenBlacklist "
                "(anything with ensure_fresh and revoked_error)"
            )
        self.app = checked_app(app)
        self.blacklist = blacklist
        self.strict = bool(strict)
        # Bound once: they run on every authenticated request. A check that can say when it
        # has nothing to do is asked first: most requests then await nothing.
        self._ensure_fresh = blacklist.ensure_fresh
        self._revoked_error = blacklist.revoked_error
        self._is_stale: Callable[[], bool] | None = getattr(blacklist, "is_stale", None)
        self.refusals = Refusals(realm)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            if scope["type"] == "lifespan":
                await self._lifespan(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        if self.strict:
            scope[STRICT_REVOCATIONS] = True
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
                if self.strict or self._is_stale is None or self._is_stale():
                    await self._ensure_fresh(strict=self.strict)
            except S3AuthError as error:  # no snapshot to answer from, or strict mode
                await self.refusals.refuse(scope, send, error)
                return
            revoked = self._revoked_error(claims)
            if revoked is not None:
                await self.refusals.refuse(scope, send, revoked)
                return
        await self.app(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app's lifespan, where a store refused at startup fails the start: the
        refusal is raised from the app's first `receive`, which a host's router awaits
        outside the part that reports a failure (Starlette's does), and a server told
        nothing would take the error for a lifespan it does not support and serve on."""
        reported = False

        async def noting_send(message: Message) -> None:
            nonlocal reported
            reported = reported or message["type"].startswith("lifespan.startup.")
            await send(message)

        try:
            await self.app(scope, self._loading_at_startup(receive), noting_send)
        except ConfigurationError as exc:
            if not reported:
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
            raise

    def _loading_at_startup(self, receive: Receive) -> Receive:
        """Check the store and load the first snapshot when the host starts the app, before
        it reports ready (`load_at_startup`)."""

        async def receive_after_loading() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await load_at_startup(self.blacklist)
            return message

        return receive_after_loading
