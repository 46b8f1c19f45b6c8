"""FastAPI: the auth app mounted, and documented in the host's OpenAPI, in one call.

    app = FastAPI()
    include_auth(app, service)       # /auth/register, /auth/login, ...; /docs shows them

    @app.get("/items")
    async def items(user: CurrentUser) -> ...

    @app.get("/admin")
    async def admin(user: Annotated[AuthenticatedUser, require_scopes("admin")]) -> ...

`include_auth` mounts the auth app at `prefix` behind the host's own routes (`_AuthMount`),
answers S3AuthError with problem+json, loads the service's revocation snapshot at the app's
startup and closes its mail at shutdown (`lifespan`), and wraps `app.openapi` (FastAPI's
own way of extending the document) so that the host's document gains the auth operations,
their schemas and the password-flow security scheme (`host_document`). FastAPI regenerates
its document when routes are added; the wrapper merges each new one.

`CurrentUser` and `require_scopes(...)` are security dependencies on that scheme: FastAPI
lists it, with the scopes, on the operations that use them, and Swagger UI's Authorize
button, which logs in at the mounted `/login`, sends the token to those operations. They
return the caller: the one BearerTokenMiddleware verified, or else the holder of the
request's bearer token, verified by the service (`host_auth`). On WebSocket routes too,
whose refusals are answered as the middlewares answer them (`refuse_websocket`); an
S3AuthError raised once the handler has accepted closes the connection with 1008.
"""

from __future__ import annotations

import re
import types
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Security, WebSocket
from fastapi.dependencies.models import Dependant
from fastapi.responses import Response
from fastapi.routing import APIRoute
from fastapi.security import OAuth2PasswordBearer, SecurityScopes
from starlette.requests import HTTPConnection
from starlette.routing import Match, Mount, Route, Router, WebSocketRoute
from starlette.status import WS_1008_POLICY_VIOLATION
from starlette.websockets import WebSocketState

from ..errors import ConfigurationError, S3AuthError
from ..identifiers import ID_HEX_DIGITS
from ..middleware.requires import requires
from ..middleware.user import AuthenticatedUser
from ..problems import auth_error_response, refuse_websocket, render
from ..ratelimit import RateLimiter
from ..service import S3AuthService
from ..types import ASGIApp, Receive, Scope, Send
from . import create_auth_app
from .application import AuthApp
from .cookies import check_mount_point
from .errors import AuthNotConfiguredError
from .host_auth import STATE_KEY, CallerContext, HostAuth, not_configured
from .host_document import SECURITY_SCHEME, merge_auth_document, path_shape, served_below
from .lifespan import Lifespan, auth_lifespan

__all__ = ["CurrentUser", "include_auth", "require_scopes"]

# Only FastAPI's view of the scheme: the dependency below reads the token itself, and
# include_auth writes the mounted token URL into the document in place of this one.
_password_bearer = OAuth2PasswordBearer(
    tokenUrl="auth/login", scheme_name=SECURITY_SCHEME, auto_error=False
)


async def _current_user(
    connection: HTTPConnection,  # FastAPI fills a Request only on HTTP routes
    security_scopes: SecurityScopes,
    _token: Annotated[str | None, Depends(_password_bearer)],
) -> AuthenticatedUser:
    return await _caller(connection, security_scopes.scopes)


async def _caller(
    connection: HTTPConnection, scopes: list[str], max_age: int | None = None
) -> AuthenticatedUser:
    host_auth = getattr(connection.app.state, STATE_KEY, None)
    if not isinstance(host_auth, HostAuth):
        # Nor has the app a handler of S3AuthError: the problem response is registered
        # for this error alone with the handlers the request runs under, which its scope
        # names, so that the client gets a problem with its code, not a bare 500.
        handlers = connection.scope.get("starlette.exception_handlers")
        if isinstance(handlers, tuple) and isinstance(handlers[0], dict):
            handlers[0].setdefault(AuthNotConfiguredError, _problem_response)
        raise not_configured(connection.app.state, _NOT_INCLUDED)
    return await host_auth.caller(connection.scope, scopes, max_age)


_NOT_INCLUDED = (
    "CurrentUser and require_scopes need include_auth(app, service) on the FastAPI app "
    "whose route uses them. An app mounted in another (app.mount) is an app of its own, "
    "which include_auth on the other does not reach: declare its routes on an APIRouter "
    "included with app.include_router instead, or call include_auth on the mounted app too"
)


CurrentUser = Annotated[AuthenticatedUser, Security(_current_user)]
"""The authenticated caller (401 without a valid, unrevoked token)."""


def require_scopes(*scopes: str, max_age: int | None = None) -> Any:
    """A dependency on a caller holding every one of `scopes` (403 otherwise), returning
    it: `user: Annotated[AuthenticatedUser, require_scopes("admin")]`, or
    `dependencies=[require_scopes("admin")]`. With `max_age`, authenticated at most that
    many seconds ago (401 `reauthentication_required` otherwise: `step_up`)."""
    requires(*scopes, max_age=max_age)  # the same check of the names as everywhere else
    if max_age is None:
        return Security(_current_user, scopes=list(scopes))

    async def recent_user(
        connection: HTTPConnection,
        security_scopes: SecurityScopes,
        _token: Annotated[str | None, Depends(_password_bearer)],
    ) -> AuthenticatedUser:
        return await _caller(connection, security_scopes.scopes, max_age)

    _MAX_AGES[recent_user] = max_age
    return Security(recent_user, scopes=list(scopes))


_MAX_AGES: weakref.WeakKeyDictionary[Callable[..., Any], int] = weakref.WeakKeyDictionary()
"""The `max_age` of each dependency that `require_scopes` made with one: FastAPI lists the
scopes of a route's dependencies in its document, the merge reads this (`recent_routes`)."""


def recent_routes(routes: Iterable[object]) -> dict[tuple[str, str], int]:
    """The `max_age` each route among `routes` allows (the least, where its dependencies,
    at any depth, ask for several), by its path as the document writes it and each of its
    methods in lower case; routes that ask for none are left out."""
    found: dict[tuple[str, str], int] = {}
    for route in routes:
        if isinstance(route, APIRoute):
            ages = [
                _MAX_AGES[call]
                for call in _calls(route.dependant)
                if isinstance(call, types.FunctionType) and call in _MAX_AGES
            ]
            if ages:
                found.update(
                    {(route.path_format, m.lower()): min(ages) for m in route.methods or ()}
                )
    return found


def _calls(dependant: Dependant) -> Iterator[object]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _calls(dependency)


def include_auth(
    app: FastAPI,
    service: S3AuthService,
    *,
    prefix: str = "/auth",
    limiter: RateLimiter | None = None,
    rate_limit: bool = True,
    extend_document: Callable[[dict[str, Any]], object] | None = None,
) -> AuthApp:
    """Mount the auth app of `service` at `prefix` and merge its operations into `app`'s
    OpenAPI document; returns the mounted app. `limiter` and `rate_limit`: as for
    `create_auth_app`. `extend_document` is called with each merged document, which it
    may change in place, before it is served (e.g. to `declare_rate_limits` of a
    RateLimitMiddleware in front of the app, the auth operations included).

    The token URL in the document is the mounted login endpoint below the request's root
    path (uvicorn's `--root-path`), which FastAPI puts first in the servers, or else below
    the first of `app.servers`. Call it after setting `app.openapi` to a function of your
    own, if you do: it wraps whatever is there.
    """
    if not prefix.startswith("/") or prefix.endswith("/"):
        raise ConfigurationError(f"prefix {prefix!r} must start and not end with '/'")
    check_mount_point(prefix, "prefix")
    if isinstance(getattr(app.state, STATE_KEY, None), HostAuth):
        raise ConfigurationError("include_auth was called on this app already")
    auth_app = create_auth_app(service, limiter=limiter, rate_limit=rate_limit)
    mount = _AuthMount(prefix, auth_app, app.router)
    mount.check_host_routes()
    app.router.routes.append(mount)
    setattr(app.state, STATE_KEY, HostAuth(service, service, clock=service.clock))
    if S3AuthError not in app.exception_handlers:
        app.add_exception_handler(S3AuthError, _problem_response)  # type: ignore[arg-type]
    # FastAPI's documented extension point is replacing the method.
    app.openapi = _DocumentWithAuth(app, mount, extend_document)  # type: ignore[method-assign]
    app.add_middleware(_RecordRootPath)
    app.add_middleware(CallerContext)  # for current_user(), without the middlewares
    # The mounted app hears no lifespan: the host's does its part. Routes declared after
    # include_auth are all there by startup.
    lifespan = auth_lifespan(service, app.router.lifespan_context)
    app.router.lifespan_context = _checking_at_startup(mount, lifespan)
    return auth_app


class _AuthMount(Mount):
    """The auth app's Mount, matching only what no route of the host matches: a route the
    host declares under the prefix, before or after `include_auth`, answers its path
    (another method of it gets 405), as in Litestar, and the merged document, which lists
    the host's operations there in place of the auth app's, agrees. Other mounts and hosts
    keep their place in the order: one at `/` would otherwise take the whole prefix.

    A host route in place of an auth path (`/auth/me`, `/auth/sessions/{sid}`) is the
    host's choice; one whose parameters would take auth paths of other shapes
    (`/auth/{provider}` takes `/auth/login`) is refused (`check_host_routes`)."""

    def __init__(self, path: str, app: AuthApp, router: Router) -> None:
        super().__init__(path, app=app)
        # Starlette's pattern stops at a line break (`.`), which a path may hold once
        # decoded (`%0A`): the auth app answers it, with the problem its document lists.
        self.path_regex = re.compile(self.path_regex.pattern, re.DOTALL)
        self.router = router
        self.auth_document = app.openapi.for_mount("")

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE and self._host_route_for(scope) is not None:
            return Match.NONE, {}
        return match, child_scope

    def _host_route_for(self, scope: Scope) -> Route | WebSocketRoute | None:
        for route in self.router.routes:
            if (
                isinstance(route, Route | WebSocketRoute)
                and route.matches(scope)[0] is not Match.NONE
            ):
                return route
        return None

    def check_host_routes(self) -> None:
        """ConfigurationError if a host route would answer an auth path of another shape
        (`host_document.path_shape`); its parameters are tried with an id's form."""
        for path, item in self.auth_document["paths"].items():
            mounted = self.path + path
            shape = path_shape(mounted)
            sample = shape.replace("{}", _SAMPLE_ID)
            route = self._host_route_for({"type": "http", "path": sample, "method": "GET"})
            if route is not None and path_shape(route.path) != shape:
                methods = ", ".join(method.upper() for method in item)
                raise ConfigurationError(
                    f"the route {route.path!r} would answer {methods} {mounted}, an operation "
                    f"of the auth app mounted at {self.path!r}; give the route a path below "
                    "the prefix that no auth operation has, or one outside it"
                )


_SAMPLE_ID = "0" * ID_HEX_DIGITS
"""What the auth app's path parameters, all ids, are tried with: an id in their form, of
digits only, so that a route taking numbers is tried too."""


def _checking_at_startup(mount: _AuthMount, lifespan: Lifespan) -> Lifespan:
    """`lifespan`, refusing to start when a host route would answer auth paths."""

    @asynccontextmanager
    async def checked(app: Any) -> AsyncIterator[Any]:
        mount.check_host_routes()
        async with lifespan(app) as state:
            yield state

    return checked


class _DocumentWithAuth:
    """`app.openapi`: FastAPI's document with the auth operations merged in. The result
    is stored in `app.openapi_schema`, where FastAPI keeps its own, so that FastAPI hands
    it back unchanged until its routes change."""

    def __init__(
        self,
        app: FastAPI,
        mount: _AuthMount,
        extend: Callable[[dict[str, Any]], object] | None,
    ) -> None:
        self.app = app
        self.extend = extend
        self.generate = app.openapi
        self.mount = mount
        self.prefix = mount.path
        self.merged: dict[str, Any] | None = None

    def __call__(self) -> dict[str, Any]:
        document = self.generate()
        if document is not self.merged:
            self.mount.check_host_routes()  # the routes changed
            auth_document = self.mount.auth_document
            recent = recent_routes(self.app.routes)
            self.merged = merge_auth_document(
                document, auth_document, prefix=self.prefix, recent=recent
            )
            if self.extend is not None:
                self.extend(self.merged)
            self.app.openapi_schema = self.merged
        merged = self.merged
        # FastAPI puts the request's root path first in the servers after calling this;
        # done here instead, so that the token URL can follow it.
        root_path = _request_root_path.get()
        servers = {server.get("url") for server in merged.get("servers", ())}
        if root_path and self.app.root_path_in_servers and root_path not in servers:
            return served_below(merged, root_path, self.prefix)
        return merged


_request_root_path: ContextVar[str] = ContextVar("s3auth_request_root_path", default="")


class _RecordRootPath:
    """Pure ASGI: keeps the request's root path where `_DocumentWithAuth`, which FastAPI
    calls without the request, can read it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _request_root_path.set((scope.get("root_path") or "").rstrip("/"))
        try:
            await self.app(scope, receive, send)
        finally:
            _request_root_path.reset(token)


async def _problem_response(connection: HTTPConnection, error: S3AuthError) -> Response | None:
    if isinstance(connection, WebSocket):
        state = connection.application_state
        if state is WebSocketState.CONNECTING:
            # A Response would go out as a denial even where the server can send none.
            await refuse_websocket(connection.scope, connection.send, render(error), error.code)
        elif state is WebSocketState.CONNECTED:
            # Raised in the handler once it accepted: the handshake has had its answer, so
            # a denial in its place would be a protocol error; the refusal closes instead.
            await connection.close(code=WS_1008_POLICY_VIOLATION, reason=error.code)
        return None
    status, headers, body = auth_error_response(error)
    return Response(body, status_code=status, headers=headers)
