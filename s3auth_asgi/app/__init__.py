"""The mountable auth sub-app.

from s3auth_asgi import S3AuthService
from s3auth_asgi.app import create_auth_app

auth_app = create_auth_app(S3AuthService())
app = Starlette(routes=[Mount("/auth", app=auth_app)])

A host's router keeps the lifespan to itself: give it `auth_lifespan(service)`
(`Starlette(..., lifespan=auth_lifespan(service))`), so that the revocation snapshot is
loaded at startup and mail still being sent at shutdown is waited for, a few seconds, and
what is lost is logged.

FastAPI and Litestar hosts use `s3auth_asgi.app.fastapi.include_auth` and
`s3auth_asgi.app.litestar.S3AuthPlugin` instead, which also put the auth operations into the
host's own OpenAPI document (this package imports neither framework), and do the same in
the host's lifespan.
"""

from __future__ import annotations

from .. import __version__
from ..auth_limits import DEFAULT_AUTH_LIMITS
from ..ratelimit import RateLimiter
from ..service import S3AuthService
from .application import AuthApp
from .attempts import login_budgets
from .lifespan import auth_lifespan
from .limits import AuthRateLimits, default_limiter, stored_auth_limits
from .prefix import PrefixDispatcher

__all__ = [
    "DEFAULT_AUTH_LIMITS",
    "AuthApp",
    "PrefixDispatcher",
    "auth_lifespan",
    "create_auth_app",
    "default_limiter",
    "login_budgets",
    "stored_auth_limits",
]

DESCRIPTION = (
    "Accounts, tokens and sessions, with all state in an object store. Errors are "
    "`application/problem+json` (RFC 9457) with a stable `code`."
)


def create_auth_app(
    service: S3AuthService,
    *,
    limiter: RateLimiter | None = None,
    rate_limit: bool = True,
    mount_path: str | None = None,
    title: str = "s3auth",
) -> AuthApp:
    """The auth sub-app for `service`, ready to mount.

    Wrong passwords (login, password change) are limited per account, per client address
    and per device cookie, registrations per address and per address + username: by
    `limiter` when given (under the names in DEFAULT_AUTH_LIMITS that it has), else by
    `default_limiter` with the service's store and clock, so that with
    S3AUTH_RATE_LIMIT_STORE=store (the default on a shared store) every process counts
    together; `rate_limit=False` turns that off. Sessions record the client address the
    limiter resolves, or without one, the address the settings say (`client_options`: the
    trusted proxies, S3AUTH_FORWARDED_HEADER, S3AUTH_IPV6_PREFIX_LENGTH).

    `mount_path`: where the app is mounted, for hosts that strip the prefix from the path
    without setting `root_path` (Litestar's `asgi(..., is_mount=True)`).
    """
    if not rate_limit:
        chosen = None
    elif limiter is not None:
        chosen = limiter
    else:
        chosen = default_limiter(service.settings, store=service.store, clock=service.clock)
    return AuthApp(
        service,
        AuthRateLimits(chosen, service.settings, service.clock),
        mount_path=mount_path,
        title=title,
        version=__version__,
        description=DESCRIPTION,
    )
