"""`requires(*scopes)`: endpoint-level checks, for any framework.

    @requires("items:write")                     # a decorator (sync or async endpoints)
    Depends(requires("admin").dependency)        # a FastAPI dependency, returns the user
    guards=[requires("admin").guard]             # a Litestar guard
    user = requires("admin").check(request)      # inline; no argument: the current request

Anonymous callers get AuthenticationRequiredError (401), callers without a scope
InsufficientScopeError (403), and with `max_age=N`, callers whose token says no
authentication within N seconds, allowing the leeway of the verifier that took the token,
ReauthenticationRequiredError (401, `step_up`). All are
S3AuthError: register one exception handler that sends `auth_error_response(error)`
(docs/frameworks show it for each framework). On a path the middleware excludes no token is
read, so every caller is refused with the 401; the first refusal there logs a warning naming
the fix. Without the middleware in front, a RuntimeError names it: a setup error.

The connection is the first argument with a `scope` (Starlette's and Litestar's Request and
WebSocket, Starlette endpoint classes) or an ASGI scope itself that BearerTokenMiddleware
has handled (its `user` is the middleware's); without one, the connection the middleware is
handling (Quart views, FastAPI dependencies). A request body is an argument too (a FastAPI
route's), and a JSON object can say `"type": "http"`: only the middleware puts its user in
a scope, so no body is taken for the connection. Starlette's own
`starlette.authentication.requires` works too, as `request.auth.scopes` is the same list.

For a WebSocket, prefer scopes on the path (`protected={"/ws/admin*": ["admin"]}`): the
middleware then refuses the handshake before the app runs (`refuse_websocket`).
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
import types
import weakref
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

from ..connection_close import refusals_closing
from ..errors import AuthenticationRequiredError, ConfigurationError, InsufficientScopeError
from ..step_up import checked_max_age, require_recent
from ..types import Clock, Scope
from .cache import VerifiedToken
from .user import SKIPPED_CREDENTIALS, AnonymousUser, AuthenticatedUser, current_scope

P = ParamSpec("P")
R = TypeVar("R")


def requires(
    *scopes: str, max_age: int | None = None, clock: Clock = time.time
) -> ScopeRequirement:
    """An authenticated caller holding every one of `scopes` (none: any authenticated);
    with `max_age`, authenticated at most that many seconds ago by `clock` (`step_up`)."""
    return ScopeRequirement(scopes, max_age, clock)


class ScopeRequirement:
    __slots__ = ("clock", "max_age", "scopes")

    def __init__(
        self, scopes: tuple[str, ...], max_age: int | None = None, clock: Clock = time.time
    ) -> None:
        if not all(isinstance(s, str) and s and " " not in s for s in scopes):
            raise ConfigurationError("scopes must be non-empty strings without spaces")
        self.scopes = scopes
        self.max_age = checked_max_age(max_age)
        self.clock = clock

    def check(self, connection: object = None) -> AuthenticatedUser:
        """The caller, if allowed; raises AuthenticationRequiredError/InsufficientScopeError."""
        scope = _scope_of(connection) if connection is not None else current_scope.get()
        if scope is None:
            raise RuntimeError(f"requires(): no connection found; {_SETUP}")
        if "user" not in scope:
            raise RuntimeError(f"requires(): scope['user'] is not set; {_SETUP}")
        with refusals_closing(scope):  # raised before the route reads the body
            return self._allowed(scope)

    def _allowed(self, scope: Scope) -> AuthenticatedUser:
        user = scope["user"]
        if not isinstance(user, AuthenticatedUser):
            if scope.get("auth") is SKIPPED_CREDENTIALS:
                self._warn_excluded(scope)
            raise AuthenticationRequiredError()
        granted = getattr(scope.get("auth"), "scopes", ())
        missing = [s for s in self.scopes if s not in granted]
        if missing:
            raise InsufficientScopeError(self.scopes)
        if self.max_age is not None:
            # The leeway of the verifier that took the token: its `exp` got the same.
            credentials = scope.get("auth")
            leeway = credentials.leeway_seconds if isinstance(credentials, VerifiedToken) else 0
            require_recent(user.claims, self.max_age, self.clock(), leeway=leeway)
        return user

    def _warn_excluded(self, scope: Scope) -> None:
        """Tell the operator, once per requirement a process meets there, that a path the
        middleware excludes refuses every caller: the client sees only the 401."""
        said = repr(self)
        if said in _WARNED_EXCLUDED or len(_WARNED_EXCLUDED) >= _WARNED_MAX:
            return
        _WARNED_EXCLUDED.add(said)
        logger.warning(
            "%s on %r: BearerTokenMiddleware excludes this path, so it reads no token there "
            "and every caller is refused (401 authentication_required); take the path out of "
            "`exclude` (left out of `protected` as well, a token is optional there and "
            "verified when sent)",
            said,
            scope.get("path"),
        )

    def dependency(self) -> AuthenticatedUser:
        """Zero-argument form for FastAPI's `Depends`."""
        return self.check()

    def guard(self, connection: object, _handler: object = None) -> None:
        """Litestar's guard signature: `(connection, route_handler)`."""
        self.check(connection)

    def __call__(self, endpoint: Callable[P, R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(endpoint):

            @functools.wraps(endpoint)
            async def async_endpoint(*args: P.args, **kwargs: P.kwargs) -> Any:
                self.check(_connection_in(args, kwargs))
                return await endpoint(*args, **kwargs)

            _DECORATED[async_endpoint] = self
            return async_endpoint  # type: ignore[return-value]

        @functools.wraps(endpoint)
        def sync_endpoint(*args: P.args, **kwargs: P.kwargs) -> R:
            self.check(_connection_in(args, kwargs))
            return endpoint(*args, **kwargs)

        _DECORATED[sync_endpoint] = self
        return sync_endpoint

    def __repr__(self) -> str:
        age = "" if self.max_age is None else f", max_age={self.max_age}"
        return f"requires{self.scopes!r}{age}"


_SETUP = (
    "put BearerTokenMiddleware in front of this route (a path it neither protects nor "
    "excludes still gets the caller of a token sent), or, in FastAPI and Litestar, use "
    "require_scopes or requires_scopes, which verify the token themselves"
)
"""The fix a setup error names: the connection did not pass through the middleware."""

logger = logging.getLogger("s3auth_asgi")
_WARNED_EXCLUDED: set[str] = set()
"""The requirements (as written) already reported on an excluded path: one warning each,
whatever the traffic, and no more of them than code can write (`_WARNED_MAX`)."""
_WARNED_MAX = 1024

_DECORATED: weakref.WeakKeyDictionary[Callable[..., Any], ScopeRequirement] = (
    weakref.WeakKeyDictionary()
)
"""The requirement of each endpoint `requires` decorates: what a document reads of it
(`endpoint_requirements`)."""


def requirements_of(endpoint: object) -> list[ScopeRequirement]:
    """The requirements of every `requires` decorating `endpoint`, outermost first, through
    other decorators that keep what they wrap (`functools.wraps`); a method's too."""
    found: list[ScopeRequirement] = []
    seen: set[int] = set()
    current = getattr(endpoint, "__func__", endpoint)
    while isinstance(current, types.FunctionType) and id(current) not in seen:
        seen.add(id(current))
        if current in _DECORATED:
            found.append(_DECORATED[current])
        current = getattr(current, "__wrapped__", None)
    return found


def _scope_of(connection: object) -> Scope | None:
    if isinstance(connection, Mapping) and connection.get("type") in ("http", "websocket"):
        return connection  # type: ignore[return-value]
    scope = getattr(connection, "scope", None)
    if isinstance(scope, Mapping) and scope.get("type") in ("http", "websocket"):
        return scope  # type: ignore[return-value]
    return None


def _connection_in(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> object:
    """The argument whose scope the middleware handled, else the connection it is handling
    (None: `check` reads it), else the first argument that looks like one, which `check`
    then refuses as it says."""
    first = None
    for value in (*args, *kwargs.values()):
        scope = _scope_of(value)
        if scope is None:
            continue
        if isinstance(scope.get("user"), AuthenticatedUser | AnonymousUser):
            return value
        if first is None:
            first = value
    return None if current_scope.get() is not None else first
