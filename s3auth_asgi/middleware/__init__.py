"""The ASGI middlewares. They import no web framework."""

from ..problems import auth_error_response
from .bearer import BearerTokenMiddleware
from .blacklist import BlacklistMiddleware
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
