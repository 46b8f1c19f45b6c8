"""AuthApp: the mountable auth sub-app, a plain ASGI application.

Starlette does the path matching inside; what the host is written in does not matter. The
mount point is taken from `root_path` (Starlette, FastAPI, uvicorn's --root-path, the
PrefixDispatcher). Frameworks that strip the prefix from `path` without recording it in
`root_path` (Litestar's ASGI mounts) are covered by `mount_path`.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from starlette.responses import Response
from starlette.routing import Route, Router

from .. import path_forms, problems
from ..body_limit import check_body_limit
from ..errors import ConfigurationError, NotFoundError
from ..service import S3AuthService
from ..settings_warnings import settings_warnings
from ..types import Message, Receive, Scope, Send
from .body import BodyReader
from .caller import CallerCheck
from .cookies import check_mount_point
from .endpoint import Endpoint, RequestChecks
from .lifecycle_routes import LifecycleRoutes
from .lifespan import auth_lifespan
from .limits import AuthRateLimits
from .openapi import OpenAPIDocument
from .operations import Call, Operation
from .origins import OriginCheck
from .responses import problem_response, validated_response
from .routes import AuthRoutes
from .table import operations_of
from .unread_bodies import closing_unread

logger = logging.getLogger("s3auth_asgi.app")

OPENAPI_PATH = "/openapi.json"
NOSNIFF = (problems.NOSNIFF[0].encode(), problems.NOSNIFF[1].encode())
"""`problems.NOSNIFF` as ASGI sends it, on every answer (OWASP ASVS 5.0 V3.4.4): spelt as
a problem already has it, so that a problem does not say it twice."""


class AuthApp:
    """Register, login, refresh, logout, sessions, profile, password, admin, JWKS, OpenAPI.

    Build it with `create_auth_app(service)` and mount it, e.g. at `/auth`.
    """

    def __init__(
        self,
        service: S3AuthService,
        limits: AuthRateLimits,
        *,
        mount_path: str | None = None,
        title: str = "s3auth",
        version: str = "",
        description: str = "",
    ) -> None:
        if mount_path is not None and (not mount_path.startswith("/") or mount_path == "/"):
            raise ConfigurationError("mount_path must be a path such as '/auth'")
        if mount_path is not None:
            check_mount_point(mount_path, "mount_path")
        self.service = service
        self.mount_path = mount_path.rstrip("/") if mount_path else None
        self.routes = AuthRoutes(service, limits)
        lifecycle = LifecycleRoutes(self.routes)
        self.operations: list[Operation] = operations_of(self.routes, lifecycle)
        # One check for every endpoint, and the document declares what it enforces.
        origins = OriginCheck(service.settings)
        self.openapi = OpenAPIDocument(
            self.operations,
            title=title,
            version=version,
            description=description,
            origins=origins,
            profile=service.profile_fields.schema(),
            limiter=limits.limiter,
            password_policy=service.password_policy,
        )
        self.body_bound = body_limit(service)
        checks = RequestChecks(
            CallerCheck(service, service, service),
            BodyReader(self.body_bound),
            origins,
            limits,
            service.clock,
            after=lifecycle.after,
        )
        # Taken, and logged as the limiter logs a misspelt limit's name: `s3auth check`
        # shows the same lines.
        counted = limits.limiter.limits if limits.limiter is not None else {}
        mailer_given = service.mail.mailer is not None
        for warning in settings_warnings(service.settings, counted, mailer_given=mailer_given):
            logger.warning("%s", warning)
        by_path: dict[str, list[Operation]] = defaultdict(list)
        for op in self.operations:
            by_path[op.path].append(op)
        routes = [Route(path, Endpoint(ops, checks)) for path, ops in by_path.items()]
        routes.append(Route(OPENAPI_PATH, Endpoint([], checks, extra_get=self._openapi)))
        # Served alone, it hears the lifespan: the first request does not wait for the
        # revocation snapshot, and mail in flight is not lost at shutdown.
        self._router = Router(
            routes, redirect_slashes=False, default=_not_found, lifespan=auth_lifespan(service)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = self._normalised(scope)
            receive, send = closing_unread(scope, receive, _no_sniffing(send), self.body_bound)
        await self._router(scope, receive, send)

    def _normalised(self, scope: Scope) -> Scope:
        """A child scope whose `root_path` is the mount point and whose route path carries
        no trailing slash (Litestar adds one to every path it hands a mount)."""
        child = dict(scope)
        root_path: str = child.get("root_path") or ""
        # A host that records the mount in root_path keeps the path below it there too; one
        # that strips the mount from the path may run below a server root path that merely
        # ends as the mount point does (`--root-path /v1/auth`, a mount at `/auth`).
        recorded = root_path.endswith(self.mount_path or "") and (
            path_forms.route_path(child) is not None
        )
        if self.mount_path is not None and not recorded:
            child["root_path"] = root_path + self.mount_path
        # Some hosts hand over only the remainder below root_path: then `path` is it.
        route_path = path_forms.route_path(child) or child["path"]
        if len(route_path) > 1 and route_path.endswith("/"):
            child["path"] = child["path"][: len(child["path"]) - len(route_path)] + (
                route_path.rstrip("/") or "/"
            )
        return child

    async def _openapi(self, call: Call) -> Response:
        # It changes with a deploy only, which no max-age can foresee: kept, and asked
        # again each time, which its ETag answers with a 304 and no body.
        body, etag = self.openapi.encoded(call.request.scope.get("root_path", "") or "")
        if_none_match = call.request.headers.get("if-none-match")
        return validated_response(if_none_match, etag, "no-cache", lambda: body)


def body_limit(service: S3AuthService) -> int:
    """S3AUTH_MAX_BODY_BYTES, held to what the largest request needs with the password
    policy and the profile fields `service` was given, which code may make longer than the
    settings say."""
    profile = service.profile_fields
    policy = service.password_policy
    given = f"passwords of up to {policy.max_length} characters (the password policy's max_length)"
    if profile.declared:
        given += f" and profiles of up to {profile.max_bytes} bytes (the profile fields' max_bytes)"
    check_body_limit(
        service.settings.max_body_bytes,
        policy.max_length,
        profile.max_bytes if profile.declared else 0,
        given=given,
    )
    return service.settings.max_body_bytes


def _no_sniffing(send: Send) -> Send:
    """`send`, adding NOSNIFF to the start of the answer: here, where every answer passes,
    whichever route, error or framework built it; a problem has it from `problems.render`."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = message.get("headers", ())
            if NOSNIFF not in headers:
                message = {**message, "headers": [*headers, NOSNIFF]}
        await send(message)

    return sending


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1000})
        return
    response = problem_response(NotFoundError("No such endpoint"))
    await response(scope, receive, send)
