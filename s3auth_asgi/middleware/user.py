"""Who is calling: the objects BearerTokenMiddleware puts into `scope["user"]` and
`scope["auth"]`, and the connection being handled, for code that has no request object.

They follow Starlette's shape (`starlette.authentication.BaseUser` and `AuthCredentials`)
without importing it: `request.user.is_authenticated`, `.display_name` and `.identity` and
`request.auth.scopes` work unchanged in Starlette, FastAPI and Litestar (`request.scope["user"]`
in Quart), and so does Starlette's own `@requires("authenticated")`.

One `AuthenticatedUser` is built per verified token and reused for every request that
presents the same token, so these objects are immutable: the claims are a read-only view.
`scope["auth"]` is a `BearerCredentials` (for a token, the cache entry `VerifiedToken`).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, Final

from ..types import ASGIApp, Message, Receive, Scope, Send

AUTHENTICATED: Final = "authenticated"
"""Starlette's convention: every authenticated connection holds this scope."""

_NO_CLAIMS: Mapping[str, Any] = MappingProxyType({})


class AuthenticatedUser:
    """The holder of a valid access token. Built on every cache miss, so it keeps only the
    claims and the granted scopes and reads the rest from the claims when asked."""

    __slots__ = ("_granted", "claims")

    is_authenticated: Final = True

    def __init__(self, claims: Mapping[str, Any], granted: tuple[str, ...]) -> None:
        self.claims = claims
        self._granted = granted  # ("authenticated", *the token's scopes)

    @property
    def scopes(self) -> tuple[str, ...]:
        """The token's scopes (without Starlette's "authenticated")."""
        return self._granted[1:]

    @property
    def id(self) -> str:
        subject: str = self.claims["sub"]  # verified to be a string
        return subject

    @property
    def username(self) -> str:
        username = self.claims.get("preferred_username")
        return username if isinstance(username, str) else self.id

    @property
    def is_admin(self) -> bool:
        return self.claims.get("adm") is True

    @property
    def display_name(self) -> str:
        return self.username

    @property
    def identity(self) -> str:
        return self.id

    @property
    def roles(self) -> tuple[str, ...]:
        return ("admin",) if self.is_admin else ()

    @property
    def session_id(self) -> str | None:
        sid = self.claims.get("sid")
        return sid if isinstance(sid, str) else None

    def __repr__(self) -> str:
        return f"AuthenticatedUser(id={self.id!r}, username={self.username!r})"


class AnonymousUser:
    """A connection without a token (Starlette's `UnauthenticatedUser`)."""

    __slots__ = ()

    is_authenticated: Final = False
    id: Final = None
    username: Final = ""
    display_name: Final = ""
    identity: Final = ""
    scopes: Final[tuple[str, ...]] = ()
    roles: Final[tuple[str, ...]] = ()
    is_admin: Final = False
    claims: Final = _NO_CLAIMS

    def __repr__(self) -> str:
        return "AnonymousUser()"


class BearerCredentials:
    """`scope["auth"]`: the granted scopes (Starlette's `AuthCredentials.scopes`, with
    "authenticated" first) and the verified claims — None for an anonymous connection."""

    __slots__ = ("claims", "scopes")

    def __init__(self, scopes: tuple[str, ...], claims: Mapping[str, Any] | None) -> None:
        self.scopes = scopes
        self.claims = claims

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scopes={self.scopes!r})"


ANONYMOUS_USER: Final = AnonymousUser()
ANONYMOUS_CREDENTIALS: Final = BearerCredentials((), None)
SKIPPED_CREDENTIALS: Final = BearerCredentials((), None)
"""`scope["auth"]` on a path the middleware excludes: anonymous as ANONYMOUS_CREDENTIALS,
but no token was read, so `requires` there can admit no one, and says so to the operator."""


def token_scopes(claims: Mapping[str, Any]) -> tuple[str, ...]:
    """The `scope` claim (RFC 9068: space-separated) as a tuple, in token order."""
    raw = claims.get("scope")
    if type(raw) is str:
        return tuple(raw.split())
    if isinstance(raw, list | tuple):
        return tuple(dict.fromkeys(s for s in raw if isinstance(s, str) and s))
    return ()


current_scope: ContextVar[Scope | None] = ContextVar("s3auth_current_scope", default=None)
"""The scope of the connection being handled, set by `serve_as_current`: BearerTokenMiddleware
around the app, the FastAPI and Litestar integrations around the host's routes. Tasks the
app starts inherit it, so code without a request object (Quart views, FastAPI dependencies,
`requires`) can still find the caller."""


async def serve_as_current(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """`app` handling the connection of `scope`, which is the current one meanwhile, but
    not in the server's `receive` and `send`, called with none. What a server starts from
    inside those copies the context they are called in, and may serve the next request on
    the connection, maybe another client's through a proxy: uvicorn starts a pipelined
    request when the one before it is sent, and, on asyncio's event loop, reads every later
    request of a connection in the context that resumed reading it after a large body. The
    caller stays with the app and the tasks it starts."""
    context = current_scope.set(scope)
    try:
        await app(scope, _receiving_outside(receive), _sending_outside(send))
    finally:
        current_scope.reset(context)


def _receiving_outside(receive: Receive) -> Receive:
    async def receive_outside() -> Message:
        context = current_scope.set(None)
        try:
            return await receive()
        finally:
            current_scope.reset(context)

    return receive_outside


def _sending_outside(send: Send) -> Send:
    async def send_outside(message: Message) -> None:
        context = current_scope.set(None)
        try:
            await send(message)
        finally:
            current_scope.reset(context)

    return send_outside


def current_user() -> AuthenticatedUser | AnonymousUser:
    """The caller of the connection being handled; anonymous outside a request."""
    scope = current_scope.get()
    user = scope.get("user") if scope is not None else None
    return user if isinstance(user, AuthenticatedUser | AnonymousUser) else ANONYMOUS_USER
