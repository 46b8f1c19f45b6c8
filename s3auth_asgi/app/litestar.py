"""Litestar: the auth app mounted, documented in the host's OpenAPI, and guards, as a plugin.

    @get("/admin", guards=[requires_scopes("admin")])
    async def admin(request: Request[AuthenticatedUser, BearerCredentials, State]) -> ...

    app = Litestar([admin], plugins=[S3AuthPlugin(service)])   # /auth/register, ...

The plugin, when the app is built:

- mounts the auth app at `path`, with none of the app's guards: the auth app checks its
  own tokens. Litestar routes a mount by rewriting `scope["path"]` to what lies below it,
  with a slash added, in the scope the server passed in, which is the one the server's
  access log reads (`POST /register/`), and only then runs the app's middleware. The
  mount puts the full path back before that middleware, which thus sees the path the
  client sent, and hands the auth app the standard view (`root_path` ending at the mount);
- answers S3AuthError with problem+json (unless the app has a handler for it);
- loads the service's revocation snapshot at the app's startup and closes its mail at
  shutdown (`lifespan`);
- adds the auth operations, their schemas and the password-flow security scheme to the
  app's OpenAPI document (`host_document`), and lists the scheme, with the scopes, on the
  operations whose handlers have a `requires_scopes` guard at any layer.

Litestar assigns the generated paths and schemas after its config has built the document,
so no config value can carry them. The plugin gives the app a copy of its OpenAPIConfig
whose document merges them in when it is rendered (`to_schema`): every page under
`/schema` shows them, JSON, YAML and Swagger UI alike, however the app is served.

`requires_scopes(...)` guards take the caller that BearerTokenMiddleware verified, or else
verify the request's bearer token through the service and put the caller into the scope,
so `request.user` works either way (`host_auth`).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

from litestar import Request, Response
from litestar.config.app import AppConfig
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import WebSocketException
from litestar.handlers.asgi_handlers import ASGIRouteHandler
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.spec import OpenAPI
from litestar.plugins import InitPlugin, ReceiveRoutePlugin
from litestar.routes import BaseRoute, HTTPRoute
from litestar.status_codes import WS_1008_POLICY_VIOLATION
from litestar.types import Guard, Middleware
from litestar.utils.scope.state import ScopeState

from ..errors import ConfigurationError, S3AuthError
from ..middleware.requires import requires
from ..problems import auth_error_response
from ..ratelimit import RateLimiter
from ..service import S3AuthService
from ..types import ASGIApp, Receive, Scope, Send
from . import create_auth_app
from .cookies import check_mount_point
from .errors import AuthNotConfiguredError
from .host_auth import STATE_KEY, CallerContext, HostAuth, not_configured
from .host_document import SECURITY_SCHEME, merge_auth_document
from .lifespan import auth_lifespan

__all__ = ["S3AuthPlugin", "ScopesGuard", "requires_scopes"]

Document = dict[str, Any]


class ScopesGuard:
    """A Litestar guard: the caller must be authenticated and hold every one of `scopes`
    (401/403 problem otherwise; a WebSocket handshake: close 1008 before accept, the reason
    the problem code), and with `max_age`, authenticated at most that many seconds ago
    (`step_up`). Needs S3AuthPlugin on the app."""

    __slots__ = ("max_age", "scopes")

    def __init__(self, scopes: tuple[str, ...], max_age: int | None = None) -> None:
        # The same check of the names (and of the age) as elsewhere.
        checked = requires(*scopes, max_age=max_age)
        self.scopes, self.max_age = checked.scopes, checked.max_age

    async def __call__(
        self, connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler
    ) -> None:
        host_auth = connection.app.state.get(STATE_KEY)
        try:
            if not isinstance(host_auth, HostAuth):
                raise _not_configured(connection)
            await host_auth.caller(connection.scope, self.scopes, self.max_age)  # type: ignore[arg-type]
        except S3AuthError as error:
            if connection.scope["type"] != ScopeType.WEBSOCKET:
                raise
            # Litestar closes a WebSocket with 4500 for any other exception, and lets a
            # guard send no response of its own.
            raise WebSocketException(detail=error.code, code=WS_1008_POLICY_VIOLATION) from error

    def __repr__(self) -> str:
        age = "" if self.max_age is None else f", max_age={self.max_age}"
        return f"requires_scopes{self.scopes!r}{age}"


def _not_configured(connection: ASGIConnection[Any, Any, Any, Any]) -> AuthNotConfiguredError:
    # Nor has the app a handler of S3AuthError: the problem response is registered for
    # this error alone with the handlers the request runs under, which its scope state
    # names, so that the client gets a problem with its code, not a bare 500.
    handlers = ScopeState.from_scope(connection.scope).exception_handlers
    if isinstance(handlers, dict):
        handlers.setdefault(AuthNotConfiguredError, _problem_response)
    return not_configured(connection.app.state, _NO_PLUGIN)


_NO_PLUGIN = (
    "requires_scopes guards need S3AuthPlugin(service) on the Litestar app whose route "
    "they guard. An app mounted in another (an ASGI handler with is_mount=True) is an app "
    "of its own, which the plugin on the other does not reach: register its handlers on a "
    "Router of the app with the plugin instead, or give the mounted app a plugin too"
)


def requires_scopes(*scopes: str, max_age: int | None = None) -> ScopesGuard:
    """A guard admitting an authenticated caller holding every one of `scopes` (none:
    any authenticated caller); with `max_age`, one authenticated at most that many seconds
    ago (401 `reauthentication_required` otherwise: `step_up`)."""
    return ScopesGuard(scopes, max_age)


class S3AuthPlugin(InitPlugin, ReceiveRoutePlugin):
    """Mounts the auth app of `service` at `path` and documents it in the app's OpenAPI.
    `limiter` and `rate_limit`: as for `create_auth_app`. `extend_document` is called
    with each rendered document, the auth operations merged in, which it may change in
    place (e.g. to `declare_rate_limits` of the app's RateLimitMiddleware). A plugin
    serves one app, and an app takes one plugin (ConfigurationError otherwise)."""

    def __init__(
        self,
        service: S3AuthService,
        *,
        path: str = "/auth",
        limiter: RateLimiter | None = None,
        rate_limit: bool = True,
        extend_document: Callable[[Document], object] | None = None,
    ) -> None:
        if not path.startswith("/") or path.endswith("/"):
            raise ConfigurationError(f"path {path!r} must start and not end with '/'")
        check_mount_point(path, "path")
        self.path = path
        self.service = service
        self.auth_app = create_auth_app(service, limiter=limiter, rate_limit=rate_limit)
        self.host_auth = HostAuth(service, service, clock=service.clock)
        self.extend = extend_document
        self._routes: list[HTTPRoute] = []
        self._in_use = False

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        # The routes it receives are one app's: their guards decide that app's document.
        if self._in_use:
            raise ConfigurationError("an S3AuthPlugin serves one app; make one per app")
        if isinstance(app_config.state.get(STATE_KEY), HostAuth):
            # The guards find one service in the state, and the document one merge.
            raise ConfigurationError("an S3AuthPlugin is on this app already: one per app")
        self._in_use = True
        # copy_scope=False: the mount must reach the server's scope to restore its path.
        mount = _AuthMount(self.path, is_mount=True, copy_scope=False)(self._mounted)
        mount.restore_path = self._restoring_path
        app_config.route_handlers.append(mount)
        app_config.exception_handlers.setdefault(S3AuthError, _problem_response)
        app_config.lifespan.append(auth_lifespan(self.service))
        app_config.state[STATE_KEY] = self.host_auth
        # For current_user() without the middlewares, as in FastAPI.
        caller_context: Callable[[ASGIApp], ASGIApp] = CallerContext
        app_config.middleware.append(caller_context)
        if app_config.openapi_config is not None:
            app_config.openapi_config = _ConfigWithAuth.of(app_config.openapi_config, self)
        return app_config

    def receive_route(self, route: BaseRoute) -> None:
        if isinstance(route, HTTPRoute):
            self._routes.append(route)
        self._refuse_taken(route)

    def _refuse_taken(self, route: BaseRoute) -> None:
        """ConfigurationError for a route of the app that the auth app's mount and the
        route would take from each other. Litestar tries its mounts' paths as plain
        prefixes, ending at a segment or not, before a route with path parameters or
        another mount: `/authors/{id:int}` would get the auth app's 404 under `/auth`.
        And where one mount's path starts with another's (`/api`, `/api/auth`), it finds
        neither for the longer one's paths. A plain route is tried first, and a route
        below `path/` is looked for below the mount: both stay the app's."""
        handler = getattr(route, "route_handler", None)
        path = route.path
        if isinstance(handler, _AuthMount):
            return
        if getattr(handler, "is_mount", False):
            taken = path != "/" and (path.startswith(self.path) or self.path.startswith(path))
        else:
            rest = path.removeprefix(self.path)
            taken = bool(route.path_parameters) and rest != path and not rest.startswith("/")
        if taken:
            raise ConfigurationError(
                f"the route {path!r} and S3AuthPlugin's mount of the auth app at "
                f"{self.path!r} would take each other's requests in Litestar's routing "
                "(the auth app would answer 404, or Litestar would find neither); give the "
                "plugin another path (S3AuthPlugin(service, path=...)), or the route one "
                f"that neither starts with {self.path!r} nor begins it"
            )

    def _mount_point(self, scope: Scope) -> str:
        return (scope.get("root_path") or "") + self.path

    def _restoring_path(self, app: ASGIApp) -> ASGIApp:
        """`app`, the mount's middleware and the mount, given the full path in the server's
        scope."""

        async def restored(scope: Scope, receive: Receive, send: Send) -> None:
            # What Litestar left is the path below the mount, with a slash it added.
            scope["path"] = self._mount_point(scope) + scope["path"].rstrip("/")
            await app(scope, receive, send)

        return restored

    async def _mounted(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.auth_app({**scope, "root_path": self._mount_point(scope)}, receive, send)

    def document_with_auth(self, document: Document) -> Document:
        """The app's rendered document with the guarded operations' security listed and
        the auth operations merged in, then given to `extend_document`."""
        recent = self._list_guard_security(document)
        auth_document = self.auth_app.openapi.for_mount("")
        merged = merge_auth_document(document, auth_document, prefix=self.path, recent=recent)
        if self.extend is not None:
            self.extend(merged)
        return merged

    def _list_guard_security(self, document: Document) -> dict[tuple[str, str], int]:
        """List the scheme, with the guards' scopes, on each guarded operation; returns
        the `max_age` of each that asks for a recent authentication (the least of its
        guards'), by its path and method, for the merge to declare."""
        paths = document.get("paths", {})
        recent: dict[tuple[str, str], int] = {}
        for route in self._routes:
            path = route.path_format or "/"
            item = paths.get(path)
            if item is None:
                continue  # not in the schema
            for handler in route.route_handlers:
                guards = [g for g in handler.resolve_guards() if isinstance(g, ScopesGuard)]
                if not guards:
                    continue
                scopes = list(dict.fromkeys(s for guard in guards for s in guard.scopes))
                ages = [guard.max_age for guard in guards if guard.max_age is not None]
                for method in handler.http_methods:
                    operation = item.get(method.lower())
                    if operation is not None:
                        operation.setdefault("security", [{SECURITY_SCHEME: scopes}])
                        if ages:
                            recent[(path, method.lower())] = min(ages)
        return recent


class _AuthMount(ASGIRouteHandler):
    """The plugin's mount, whose middleware runs once its path has been restored, and
    which no guard of the app's layers applies to."""

    __slots__ = ("restore_path",)

    restore_path: Callable[[ASGIApp], ASGIApp]

    def resolve_guards(self) -> list[Guard]:
        # The auth app decides who may call each of its operations; a guard requiring a
        # token, taken here from the app's layer, would refuse register and login to all.
        return []

    def resolve_middleware(self) -> list[Middleware]:
        # Litestar wraps the mount in the list's entries in order: the last one outermost.
        return [*super().resolve_middleware(), self.restore_path]


class _DocumentWithAuth(OpenAPI):
    """Litestar's document, rendered with the plugin's additions."""

    extend: Callable[[Document], Document]

    def to_schema(self) -> Document:
        return self.extend(super().to_schema())


class _ConfigWithAuth(OpenAPIConfig):
    """The host's OpenAPIConfig, building a _DocumentWithAuth."""

    plugin: S3AuthPlugin

    @classmethod
    def of(cls, config: OpenAPIConfig, plugin: S3AuthPlugin) -> OpenAPIConfig:
        # A copy turned into this class rather than a new instance: OpenAPIConfig's
        # __post_init__ would run again on values it derived already (the render
        # plugins, deprecated options), and a config may be shared by several apps.
        extended = copy.copy(config)
        extended.__class__ = cls
        assert isinstance(extended, cls)
        extended.plugin = plugin
        return extended

    def to_openapi_schema(self) -> OpenAPI:
        built = super().to_openapi_schema()
        document = _DocumentWithAuth(**{name: getattr(built, name) for name in _OPENAPI_FIELDS})
        document.extend = self.plugin.document_with_auth
        return document


_OPENAPI_FIELDS = tuple(field.name for field in dataclasses.fields(OpenAPI))


def _problem_response(request: Request[Any, Any, Any], error: Exception) -> Response[bytes]:
    assert isinstance(error, S3AuthError)  # registered for S3AuthError only
    status, headers, body = auth_error_response(error)
    media_type = headers.pop("content-type")
    return Response(body, status_code=status, headers=headers, media_type=media_type)
