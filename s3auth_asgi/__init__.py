"""s3auth_asgi: authentication for any ASGI application, with all state in an object store.

Every public name is importable from here. Apart from the errors they are loaded on first
use, so `import s3auth_asgi.middleware` (for a service that only verifies tokens) does not
load the object-store library or the password hashers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    AuthenticationError,
    AuthenticationRequiredError,
    ConfigurationError,
    ConflictError,
    EmailTakenError,
    InactiveUserError,
    InsufficientScopeError,
    InvalidCredentialsError,
    InvalidEmailError,
    InvalidRequestError,
    InvalidTokenError,
    InvalidUsernameError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    RateLimitedError,
    RefreshTokenReuseError,
    RotatedMeanwhileError,
    S3AuthError,
    S3ValidationError,
    SessionNotFoundError,
    StoreUnavailableError,
    StoreUnsafeError,
    TokenExpiredError,
    TokenRevokedError,
    UsernameTakenError,
    UserNotFoundError,
    WeakPasswordError,
)

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .blacklist import TokenBlacklist
    from .keys.remote import JwksVerifier
    from .middleware import (
        AnonymousUser,
        AuthenticatedUser,
        BearerCredentials,
        BearerTokenMiddleware,
        BlacklistMiddleware,
        RateLimitMiddleware,
        current_user,
        requires,
    )
    from .middleware.openapi import PartlyProtected, declare_bearer_refusals
    from .models import PublicUser, SessionInfo, TokenPair, User
    from .password_policy import PasswordPolicy
    from .passwords import PasswordHasher
    from .problems import auth_error_response
    from .ratelimit import (
        MemoryRateLimitStore,
        ObjectStoreRateLimitStore,
        PartialMatch,
        RateLimit,
        RateLimiter,
        RateLimitInfo,
        RateLimitRule,
        RateLimitStore,
        declare_rate_limits,
    )
    from .service import S3AuthService
    from .settings import S3AuthSettings
    from .storage import ObjectStore, Store
    from .verifier import AccessTokenVerifier, RevocationCheck

_LAZY = {
    "TokenBlacklist": "blacklist",
    "JwksVerifier": "keys.remote",
    "AnonymousUser": "middleware",
    "AuthenticatedUser": "middleware",
    "BearerCredentials": "middleware",
    "BearerTokenMiddleware": "middleware",
    "BlacklistMiddleware": "middleware",
    "PartlyProtected": "middleware.openapi",
    "RateLimitMiddleware": "middleware",
    "current_user": "middleware",
    "declare_bearer_refusals": "middleware.openapi",
    "requires": "middleware",
    "PublicUser": "models",
    "SessionInfo": "models",
    "TokenPair": "models",
    "User": "models",
    "PasswordHasher": "passwords",
    "PasswordPolicy": "password_policy",
    "auth_error_response": "problems",
    "MemoryRateLimitStore": "ratelimit",
    "ObjectStoreRateLimitStore": "ratelimit",
    "PartialMatch": "ratelimit",
    "RateLimit": "ratelimit",
    "RateLimitInfo": "ratelimit",
    "RateLimitRule": "ratelimit",
    "RateLimitStore": "ratelimit",
    "RateLimiter": "ratelimit",
    "declare_rate_limits": "ratelimit",
    "S3AuthService": "service",
    "S3AuthSettings": "settings",
    "ObjectStore": "storage",
    "Store": "storage",
    "AccessTokenVerifier": "verifier",
    "RevocationCheck": "verifier",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AccessTokenVerifier",
    "AnonymousUser",
    "AuthenticatedUser",
    "AuthenticationError",
    "AuthenticationRequiredError",
    "BearerCredentials",
    "BearerTokenMiddleware",
    "BlacklistMiddleware",
    "ConfigurationError",
    "ConflictError",
    "EmailTakenError",
    "InactiveUserError",
    "InsufficientScopeError",
    "InvalidCredentialsError",
    "InvalidEmailError",
    "InvalidRequestError",
    "InvalidTokenError",
    "InvalidUsernameError",
    "JwksVerifier",
    "MemoryRateLimitStore",
    "NotFoundError",
    "ObjectStore",
    "ObjectStoreRateLimitStore",
    "PartialMatch",
    "PartlyProtected",
    "PasswordHasher",
    "PasswordPolicy",
    "PermissionDeniedError",
    "PreconditionFailedError",
    "PublicUser",
    "RateLimit",
    "RateLimitInfo",
    "RateLimitMiddleware",
    "RateLimitRule",
    "RateLimitStore",
    "RateLimitedError",
    "RateLimiter",
    "RefreshTokenReuseError",
    "RevocationCheck",
    "RotatedMeanwhileError",
    "S3AuthError",
    "S3AuthService",
    "S3AuthSettings",
    "S3ValidationError",
    "SessionInfo",
    "SessionNotFoundError",
    "Store",
    "StoreUnavailableError",
    "StoreUnsafeError",
    "TokenBlacklist",
    "TokenExpiredError",
    "TokenPair",
    "TokenRevokedError",
    "User",
    "UserNotFoundError",
    "UsernameTakenError",
    "WeakPasswordError",
    "__version__",
    "auth_error_response",
    "current_user",
    "declare_bearer_refusals",
    "declare_rate_limits",
    "requires",
]
