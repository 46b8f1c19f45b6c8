"""The demo application: the page at /, a protected /api/hello and /api/sessions, the auth
sub-app at /auth, wrapped in the three middlewares the way an application would use them."""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from importlib import resources
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from ..app import create_auth_app, default_limiter
from ..app.lifespan import auth_lifespan
from ..hosts import resolves_to_loopback
from ..middleware.bearer import BearerTokenMiddleware
from ..middleware.blacklist import BlacklistMiddleware
from ..middleware.ratelimit import RateLimitMiddleware
from ..middleware.user import AuthenticatedUser
from ..ratelimit import RateLimit, RateLimitRule
from ..service import S3AuthService
from ..types import ASGIApp, Message, Receive, Scope, Send
from .devices import device_name
from .loopback import declare_misdirected, loopback_only
from .outbox import OUTBOX_PATH, outbox_endpoint

AUTH_PREFIX = "/auth"
DEFAULT_HOST = "127.0.0.1"
API_LIMIT = RateLimit(max_requests=60, window_seconds=60)
NOSNIFF = (b"x-content-type-options", b"nosniff")

# The auth endpoints a browser calls without an access token, or with a stale one (the page
# refreshes after a 401): the bearer middleware must not refuse them for that header.
PUBLIC_PATHS = (
    "/",
    "/reset-password",
    "/verify-email",
    OUTBOX_PATH,
    f"{AUTH_PREFIX}/password/forgot",
    f"{AUTH_PREFIX}/password/reset",
    f"{AUTH_PREFIX}/email/*",
    f"{AUTH_PREFIX}/register",
    f"{AUTH_PREFIX}/login",
    f"{AUTH_PREFIX}/login/totp",
    f"{AUTH_PREFIX}/refresh",
    f"{AUTH_PREFIX}/openapi.json",
    f"{AUTH_PREFIX}/.well-known/*",
)


# The page's style sheet and script are kept beside it and inlined when it is served, so
# that the policy can admit exactly them, by their hashes.
INLINED = {
    '<link rel="stylesheet" href="demo.css">': ("style", "demo.css"),
    '<script src="demo.js"></script>': ("script", "demo.js"),
}


def _static(name: str) -> str:
    return resources.files(__package__).joinpath("static", name).read_text("utf-8")


@cache
def page() -> tuple[bytes, str]:
    """The page and its Content-Security-Policy: inline script and style are allowed by
    their hashes only, and the page may talk to its own origin only."""
    html = _static("index.html")
    for marker, (kind, name) in INLINED.items():
        if html.count(marker) != 1:
            raise RuntimeError(f"static/index.html must refer to {name} once, as {marker}")
        inlined = _static(name)
        if f"</{kind}" in inlined.lower():
            raise RuntimeError(f"{name} must not hold </{kind}>: it is inlined")
        html = html.replace(marker, f"<{kind}>\n{inlined}</{kind}>")
    hashes = {
        kind: " ".join(
            f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
            for body in re.findall(rf"<{kind}>(.*?)</{kind}>", html, flags=re.DOTALL)
        )
        for kind in ("script", "style")
    }
    policy = (
        f"default-src 'none'; script-src {hashes['script']}; style-src {hashes['style']}; "
        "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )
    return html.encode(), policy


async def index(request: Request) -> Response:
    body, policy = page()
    return Response(
        body,
        media_type="text/html",
        headers={
            "Content-Security-Policy": policy,
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


async def hello(request: Request) -> Response:
    """A protected endpoint: BearerTokenMiddleware has put the caller in the scope."""
    user = request.scope["user"]
    assert isinstance(user, AuthenticatedUser)  # /api/* requires a token
    return JSONResponse(
        {"message": f"Hello, {user.display_name}!", "user_id": user.id},
        headers={"Cache-Control": "no-store"},  # it shows an account, as /auth/me does
    )


def sessions_endpoint(service: S3AuthService) -> Route:
    async def sessions(request: Request) -> Response:
        """The caller's sessions as /auth/sessions lists them, each with `device`: its
        User-Agent as a person reads it ("Chrome on Linux"); `device_info` keeps the raw one."""
        user = request.scope["user"]
        assert isinstance(user, AuthenticatedUser)  # /api/* requires a token
        found = await service.get_user_active_sessions(user.id, user.session_id)
        listed: list[dict[str, Any]] = [
            msgspec.to_builtins(session) | {"device": device_name(session.device_info)}
            for session in found
        ]
        return JSONResponse({"sessions": listed}, headers={"Cache-Control": "no-store"})

    return Route("/api/sessions", sessions)


def create_demo_app(
    service: S3AuthService,
    *,
    outbox_key: str | None = None,
    host: str = DEFAULT_HOST,
    on_loopback: bool | None = None,
) -> ASGIApp:
    """The demo on `service`, listening on `host`; its outbox is read with `outbox_key`
    (`outbox`), by no one without it. On a loopback `host` (`on_loopback`: whether it is,
    None to look it up, `hosts.resolves_to_loopback`), it answers a Host of loopback or
    `host` alone (`loopback`)."""
    if on_loopback is None:
        on_loopback = resolves_to_loopback(host)
    names = {host.lower()} if on_loopback else set()
    # The auth limits in the store (S3AUTH_RATE_LIMIT_STORE), shared by every process the
    # demo runs in; the high-rate "api" limit in memory.
    limiter = default_limiter(
        service.settings, extra={"api": API_LIMIT}, store=service.store, clock=service.clock
    )
    auth_app = create_auth_app(service, limiter=limiter, title="s3auth demo")
    app: ASGIApp = Starlette(
        routes=[
            Route("/", index),
            # Where the mailed links lead (`MailTemplates`): the same page, which reads
            # the token from the fragment.
            Route("/reset-password", index),
            Route("/verify-email", index),
            outbox_endpoint(service, outbox_key, names),
            Route("/api/hello", hello),
            sessions_endpoint(service),
            Mount(AUTH_PREFIX, app=auth_app),
        ],
        lifespan=auth_lifespan(service),
    )
    app = BlacklistMiddleware(app, service)
    app = BearerTokenMiddleware(app, service, protected=("/api/*",), exclude=PUBLIC_PATHS)
    app = RateLimitMiddleware(app, limiter, [RateLimitRule("/api/*", "api")])
    app = no_sniffing(app)
    if not on_loopback:
        return app
    auth_app.openapi.extend(declare_misdirected)
    token_paths = {AUTH_PREFIX + op.path for op in auth_app.operations if op.token_endpoint}
    return loopback_only(app, token_paths, names)


def no_sniffing(app: ASGIApp) -> ASGIApp:
    """`app`, every answer of which says `X-Content-Type-Options: nosniff` (once), as the
    auth app's do: a browser takes each for the type it says, never for a page or a script
    guessed from its bytes (OWASP ASVS 5.0 V3.4.4)."""

    async def sending_nosniff(scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if not any(name.lower() == NOSNIFF[0] for name, _ in headers):
                    message = {**message, "headers": [*headers, NOSNIFF]}
            await send(message)

        await app(scope, receive, sending if scope["type"] == "http" else send)

    return sending_nosniff
