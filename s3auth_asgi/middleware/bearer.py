"""BearerTokenMiddleware: verifies the bearer token and puts the caller into the scope.

    public = ("/health", "/docs", "/docs/*", "/openapi.json")
    app = BlacklistMiddleware(app, auth)     # inner: refuses revoked tokens
    app = BearerTokenMiddleware(app, auth, exclude=public)

Sets `scope["user"]` (AuthenticatedUser or AnonymousUser) and `scope["auth"]`
(BearerCredentials: `.scopes`, `.claims`) the way Starlette's AuthenticationMiddleware
does, so `request.user` and `request.auth` work unchanged in Starlette, FastAPI and Litestar,
and `request.scope["user"]` in Quart. Which paths need a token: see `paths`; where the
token is read from: see `credentials`; what a refusal looks like: see `challenge`.

Nested, around an app a host mounts inside another of them, a middleware may find no token
of its own: the outer one takes a WebSocket's subprotocol or query token out of the
handshake. It
takes the caller the outer one verified with the same verifier (`verifier_identity`) and
judges it by its own paths, scopes and clock, as if it had read the token itself; the outer
one names the subprotocol at accept. An HTTP request keeps its `Authorization` header, so
each layer verifies that itself.

Pure ASGI: the body and the response pass through untouched; `receive` and `send` are
wrapped only to be called with no current connection (`user.serve_as_current`), and the
`send` of a WebSocket to name the accepted subprotocol (see `credentials`). `lifespan` and other
scope types go straight to the app. Where the lifespan reaches it, the middleware closes
its verifier once the app has shut down or failed to start (`verifier.ClosesAtShutdown`),
so that no read of keys a request started in the background outlives the host.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, Mapping

from ..errors import (
    AuthenticationRequiredError,
    ConfigurationError,
    InsufficientScopeError,
    S3AuthError,
    TokenExpiredError,
)
from ..paths import EVERY_PATH, PathAccess, PathRules, is_cors_preflight
from ..step_up import require_recent
from ..types import ASGIApp, Message, Receive, Scope, Send, checked_app
from ..verifier import (
    AccessTokenVerifier,
    ClosesAtShutdown,
    KeyReplacements,
    TokenJudge,
    Waiting,
    elapsed_clock_of,
    reverify_bound,
    verifier_identity,
)
from .cache import VerifiedToken, VerifiedTokenCache
from .credentials import (
    authorization_token,
    drop_query_token,
    drop_subprotocol_token,
    take_subprotocol_token,
    websocket_token,
)
from .refusals import Refusals
from .requires import ScopeRequirement
from .user import ANONYMOUS_CREDENTIALS, ANONYMOUS_USER, SKIPPED_CREDENTIALS, serve_as_current

# Enum members as globals: `PathAccess.SKIP` is an attribute lookup on every request.
_SKIP = PathAccess.SKIP
_REQUIRED = PathAccess.REQUIRED
# What the app sends the server last in a lifespan.
_LIFESPAN_ENDS = frozenset(
    ("lifespan.startup.failed", "lifespan.shutdown.complete", "lifespan.shutdown.failed")
)


class BearerTokenMiddleware:
    """Verify `Authorization: Bearer` access tokens; refuse with 401/403 where required.

    `tokens`: an AccessTokenVerifier — the S3AuthService, its TokenCodec, or a
    JwksVerifier (public keys only). One that is also a KeyReader is asked to read its
    keys again when a token names a key it does not know (or, a JwksVerifier, one that
    does not verify it), then the token is verified once more if that read may have
    brought its key (`UnknownSigningKeyError.worth_verifying_again`). One whose keys
    change while it runs says how often it reads them (`reverify_seconds`): a cached
    verification stands no longer (see `cache`), and none stands past a read that finds
    a key replaced under its kid (`KeyReplacements`); if it is
    also KeysFreshness, a request waits for a read when its keys are overdue (two of its
    intervals old, after an idle spell), so a key retired during the spell verifies no
    token after it. That order is `verifier.TokenJudge`'s, which the auth app and the
    hosts' dependencies and guards follow too.
    `protected`: path patterns that need a token, or a mapping of pattern to the scopes
    the token must hold there, or to `requires(*scopes, max_age=N)`, which also refuses a
    token authenticated more than N seconds ago by this verifier's clock, beyond its leeway
    (`step_up`).
    `exclude`: patterns where credentials are not looked at; a prefix there ends at a
    segment (`/docs/*`, see `paths`). Both are matched against the
    path as routed and as requested: a path under a host's Litestar mount, which the app's
    middleware list is handed as the path below the mount, is named as requested.
    Elsewhere a token is optional: verified when present, anonymous when absent.
    `methods`: if given, only these methods need a token on protected paths (the others
    are optional there); WebSocket handshakes are decided by the path alone.
    `anonymous_preflight`: a CORS preflight (`paths.is_cors_preflight`) without a token
    passes anonymously where one would be required, since browsers send it without
    credentials and the CORS layer inside must answer it; False requires one of it too.
    `realm`: of the `WWW-Authenticate` challenge. `websocket_subprotocol`,
    `websocket_query_param`: where WebSocket handshakes may carry the token (None turns
    either off). `cache_size`: verified tokens remembered (0: verify every request).
    """

    def __init__(
        self,
        app: ASGIApp,
        tokens: AccessTokenVerifier,
        *,
        protected: Iterable[str] | Mapping[str, Iterable[str] | ScopeRequirement] = EVERY_PATH,
        exclude: Iterable[str] = (),
        methods: Iterable[str] | None = None,
        anonymous_preflight: bool = True,
        realm: str = "api",
        websocket_subprotocol: str | None = "bearer",
        websocket_query_param: str | None = None,
        cache_size: int = 4096,
    ) -> None:
        if not isinstance(tokens, AccessTokenVerifier):
            raise ConfigurationError(
                "tokens must be an S3AuthService or a TokenCodec (an AccessTokenVerifier)"
            )
        for name, value in (
            ("websocket_subprotocol", websocket_subprotocol),
            ("websocket_query_param", websocket_query_param),
        ):
            if value is not None and not (isinstance(value, str) and value.isidentifier()):
                raise ConfigurationError(f"{name} must be a simple name or None")
        self.app = checked_app(app)
        self.verifier = tokens
        self.rules = PathRules(protected, exclude, methods)
        self._ages = bool(self.rules.max_age_by_pattern)
        self.anonymous_preflight = bool(anonymous_preflight)
        self.refusals = Refusals(realm)
        self.cache = VerifiedTokenCache(cache_size)
        if isinstance(tokens, KeyReplacements):
            # A token verified with a key its issuer has replaced under the same kid is
            # verified again, at once: the read that finds the key replaced clears this.
            tokens.clear_at_replacement(self.cache)
        self._verify = tokens.verify_access_token
        # What its credentials say verified them: the auth app trusts only its own.
        self._verified_by = verifier_identity(tokens)
        self.websocket_subprotocol = websocket_subprotocol
        self.websocket_query_param = websocket_query_param
        # The verifier's clock, so that a cache hit and a fresh verification agree on `exp`.
        self._clock = tokens.clock
        self._leeway = tokens.leeway_seconds
        self._stands_for = reverify_bound(tokens)
        # What times the reads of its keys: a step of the host's clock stretches no stand.
        self._elapsed = elapsed_clock_of(tokens)
        # Keys fixed while the verifier runs: a verification stands until `exp`, and a cache
        # hit reads no second clock (a fifth of its time).
        self._keys_change = self._stands_for != math.inf
        self._close = tokens.close if isinstance(tokens, ClosesAtShutdown) else None
        # The one order of a token's checks, through the cache (`verifier.TokenJudge`).
        self._judge = TokenJudge(tokens, self.verify, known=self.cache.__contains__)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            access, needed = self.rules.decide(scope)
            if access is _SKIP:
                scope["user"] = ANONYMOUS_USER
                scope["auth"] = SKIPPED_CREDENTIALS
            else:
                try:
                    token = authorization_token(scope)
                    verified = None if token is None else self._judge.at_once(token)
                    if isinstance(verified, Waiting):  # for a read of keys (`TokenJudge`)
                        verified = await verified.rest
                    self._authenticate(scope, access, needed, verified)
                except S3AuthError as error:
                    await self.refusals.refuse(scope, send, error)
                    return
        elif kind == "websocket":
            try:
                send = await self._authenticate_websocket(scope, send)
            except S3AuthError as error:
                await self.refusals.refuse(scope, send, error)
                return
        else:
            if kind == "lifespan" and self._close is not None:
                send = self._closing_at_shutdown(send, self._close)
            await self.app(scope, receive, send)
            return
        await serve_as_current(self.app, scope, receive, send)

    def _authenticate(
        self,
        scope: Scope,
        access: PathAccess,
        needed: tuple[str, ...],
        verified: VerifiedToken | None,
    ) -> None:
        """Set the user and credentials, `verified` those of the connection's token (None:
        it brought none), or raise the refusal."""
        if verified is None:
            verified = self._caller_from_outer_layer(scope)
            if verified is None:
                # Looked at only where a refusal would follow: no cost to other requests.
                if access is _REQUIRED and not (
                    self.anonymous_preflight and is_cors_preflight(scope)
                ):
                    raise AuthenticationRequiredError()
                scope["user"] = ANONYMOUS_USER
                scope["auth"] = ANONYMOUS_CREDENTIALS
                return
        if needed:
            granted = verified.scopes
            if not all(s in granted for s in needed):
                raise InsufficientScopeError(needed)
        if access is _REQUIRED and self._ages:
            require_recent(
                verified.user.claims, self.rules.max_age(scope), self._clock(), leeway=self._leeway
            )
        scope["user"] = verified.user
        scope["auth"] = verified

    def _caller_from_outer_layer(self, scope: Scope) -> VerifiedToken | None:
        """The caller a middleware around this one verified with this one's own verifier
        (`verifier_identity`), for a connection that brings no token here: the outer one
        takes a WebSocket's subprotocol token out of the handshake, so that no app finds
        it, and this one is an app to it. Its `exp` is judged again, as on a cache hit;
        credentials of another verifier, anonymous ones and a host's own are no caller."""
        taken = scope.get("auth")
        if not isinstance(taken, VerifiedToken) or taken.verified_by is not self._verified_by:
            return None
        if self._clock() >= taken.expires_from:
            raise TokenExpiredError()
        return taken

    @staticmethod
    def _closing_at_shutdown(send: Send, close: Callable[[], Awaitable[None]]) -> Send:
        """`send`, which ends the verifier's background work (`close`) once the app has
        shut down or failed to start, before the server hears it: no read of keys the
        verifier started outlives the lifespan. A server told of a failed start exits
        without a shutdown."""

        async def send_after_closing(message: Message) -> None:
            if message["type"] not in _LIFESPAN_ENDS:
                await send(message)
                return
            try:
                await close()
            finally:
                await send(message)

        return send_after_closing

    async def _authenticate_websocket(self, scope: Scope, send: Send) -> Send:
        marker = self.websocket_subprotocol
        access, needed = self.rules.decide(scope)
        if access is _SKIP:
            offered = drop_subprotocol_token(scope, marker)
            drop_query_token(scope, self.websocket_query_param)
            scope["user"] = ANONYMOUS_USER
            scope["auth"] = SKIPPED_CREDENTIALS
        else:
            subprotocol_token = take_subprotocol_token(scope, marker)
            offered = subprotocol_token is not None
            token = websocket_token(scope, subprotocol_token, self.websocket_query_param)
            verified = None if token is None else await self._judge.judge(token)
            self._authenticate(scope, access, needed, verified)
        if not offered:
            return send

        async def send_naming_subprotocol(message: Message) -> None:
            if message["type"] == "websocket.accept" and not message.get("subprotocol"):
                message = {**message, "subprotocol": marker}
            await send(message)

        return send_naming_subprotocol

    def verify(self, token: bytes) -> VerifiedToken:
        """The verified token, from the cache when it was seen before and its verification
        still stands; `exp` is checked either way. Raises InvalidTokenError /
        TokenExpiredError."""
        verified = self.cache.get(token)
        if verified is None:
            verified = self._verify_and_remember(token)
        elif self._clock() >= verified.due_from or (
            self._keys_change and self._elapsed() >= verified.recheck_by
        ):
            self.cache.discard(token)
            if self._clock() >= verified.expires_from:
                raise TokenExpiredError()
            # Unexpired: the keys it was verified with may have changed since.
            verified = self._verify_and_remember(token)
        return verified

    def _verify_and_remember(self, token: bytes) -> VerifiedToken:
        claims = self._verify(token)
        stands_for = self._stands_for
        verified = VerifiedToken(
            claims,
            self._leeway,
            self._elapsed() + stands_for,
            verified_by=self._verified_by,
            # Where the keys change, a pause of the machine ends the stand too (`cache`).
            stands_until_wall=self._clock() + stands_for,
        )
        self.cache.put(token, verified)
        return verified
