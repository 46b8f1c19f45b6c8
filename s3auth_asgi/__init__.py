"""s3auth_asgi: authentication for any ASGI application, with all state in an object store."""

from .blacklist import TokenBlacklist
from .errors import (
    ConfigurationError,
    ConflictError,
    EmailTakenError,
    InactiveUserError,
    InvalidCredentialsError,
    InvalidEmailError,
    InvalidTokenError,
    InvalidUsernameError,
    NotFoundError,
    PermissionDeniedError,
    RefreshTokenReuseError,
    S3AuthError,
    S3ValidationError,
    SessionNotFoundError,
    StoreUnavailableError,
    TokenExpiredError,
    TokenRevokedError,
    UsernameTakenError,
    UserNotFoundError,
    WeakPasswordError,
)
from .middleware.ratelimit import RateLimitMiddleware
from .models import PublicUser, SessionInfo, TokenPair, User
from .passwords import PasswordHasher, PasswordPolicy
from .ratelimit import (
    MemoryRateLimitStore,
    ObjectStoreRateLimitStore,
    RateLimit,
    RateLimiter,
    RateLimitInfo,
    RateLimitRule,
    RateLimitStore,
)
from .service import S3AuthService
from .settings import S3AuthSettings
from .storage import ObjectStore

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "ConflictError",
    "EmailTakenError",
    "InactiveUserError",
    "InvalidCredentialsError",
    "InvalidEmailError",
    "InvalidTokenError",
    "InvalidUsernameError",
    "MemoryRateLimitStore",
    "NotFoundError",
    "ObjectStore",
    "ObjectStoreRateLimitStore",
    "PasswordHasher",
    "PasswordPolicy",
    "PermissionDeniedError",
    "PublicUser",
    "RateLimit",
    "RateLimitInfo",
    "RateLimitMiddleware",
    "RateLimitRule",
    "RateLimitStore",
    "RateLimiter",
    "RefreshTokenReuseError",
    "S3AuthError",
    "S3AuthService",
    "S3AuthSettings",
    "S3ValidationError",
    "SessionInfo",
    "SessionNotFoundError",
    "StoreUnavailableError",
    "TokenBlacklist",
    "TokenExpiredError",
    "TokenPair",
    "TokenRevokedError",
    "User",
    "UserNotFoundError",
    "UsernameTakenError",
    "WeakPasswordError",
    "__version__",
]
