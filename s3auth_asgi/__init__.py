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
    "PermissionDeniedError",
    "RefreshTokenReuseError",
    "S3AuthError",
    "S3AuthSettings",
    "S3ValidationError",
    "SessionNotFoundError",
    "StoreUnavailableError",
    "TokenExpiredError",
    "TokenRevokedError",
    "UserNotFoundError",
    "UsernameTakenError",
    "WeakPasswordError",
    "__version__",
]
