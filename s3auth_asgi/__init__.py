"""s3auth_asgi: authentication for any ASGI application, with all state in an object store."""

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
from .blacklist import TokenBlacklist
from .models import PublicUser, SessionInfo, TokenPair, User
from .passwords import PasswordHasher, PasswordPolicy
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
    "NotFoundError",
    "ObjectStore",
    "PasswordHasher",
    "PasswordPolicy",
    "PublicUser",
    "PermissionDeniedError",
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
