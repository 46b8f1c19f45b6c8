"""The ASGI middlewares. They import no web framework."""

from .bearer import BearerTokenMiddleware
from .blacklist import BlacklistMiddleware
from .challenge import auth_error_response
from .ratelimit import RateLimitMiddleware
from .requires import ScopeRequirement, requires
from .user import AnonymousUser, AuthenticatedUser, BearerCredentials, current_user

__all__ = [
    "AnonymousUser",
    "AuthenticatedUser",
    "BearerCredentials",
    "BearerTokenMiddleware",
    "BlacklistMiddleware",
    "RateLimitMiddleware",
    "ScopeRequirement",
    "auth_error_response",
    "current_user",
    "requires",
]
