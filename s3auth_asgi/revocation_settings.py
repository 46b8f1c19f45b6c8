"""The numbers a TokenBlacklist works with: the longest an access token is accepted (how long
a revocation it writes holds), its sync interval and its skew allowance. Those not given are
the `S3AUTH_*` settings', all three from one reading of the environment.

Where the settings cannot be read (settings made in code, or a process that only verifies
and holds no secret key), there is no lifetime, and writing is refused rather than done under
one that may be shorter than the issuer's; the sync interval and skew allowance are the
settings' defaults, so that reading goes on. A variable set for either is then not what the
blacklist reads with, which is warned of: its operator set it for a reason."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import msgspec

from .errors import ConfigurationError
from .settings import S3AuthSettings, env_name
from .settings_ranges import ACCESS_TOKEN_ACCEPTED, check_argument, check_number

logger = logging.getLogger("s3auth_asgi")


def _default(field: str) -> Any:
    return next(f.default for f in msgspec.structs.fields(S3AuthSettings) if f.name == field)


DEFAULT_SYNC_SECONDS: float = _default("revocation_sync_seconds")
DEFAULT_SKEW_SECONDS: int = _default("revocation_skew_seconds")


@dataclass(frozen=True, slots=True)
class RevocationNumbers:
    lookback_seconds: int | None
    """None: not given, and no settings read (yet, or they could not be)."""
    sync_seconds: float
    skew_seconds: int
    unreadable: str = ""
    """Why the settings could not be read, when they were tried and could not."""


def revocation_numbers(
    lookback_seconds: int | None,
    sync_seconds: float | None,
    skew_seconds: int | None,
    *,
    read_settings: bool,
) -> RevocationNumbers:
    """The numbers given (held to their settings' ranges; the lookback to the lifetime's plus
    the leeway's), the others from the settings when `read_settings` and any is missing,
    else the lifetime unknown and the others the settings' defaults."""
    if lookback_seconds is not None:
        check_number(ACCESS_TOKEN_ACCEPTED, lookback_seconds, "TokenBlacklist lookback_seconds")
    if sync_seconds is not None:
        check_argument("revocation_sync_seconds", sync_seconds, "TokenBlacklist sync_seconds")
    if skew_seconds is not None:
        check_argument("revocation_skew_seconds", skew_seconds, "TokenBlacklist skew_seconds")
    missing = None in (lookback_seconds, sync_seconds, skew_seconds)
    settings, unreadable = None, ""
    if read_settings and missing:
        try:
            settings = S3AuthSettings.from_env()
        except ConfigurationError as exc:
            unreadable = str(exc)
            _warn_of_unread_variables(sync_seconds is None, skew_seconds is None, unreadable)
    if settings is not None:
        if lookback_seconds is None:
            lookback_seconds = settings.access_token_accepted_seconds
        sync_seconds = settings.revocation_sync_seconds if sync_seconds is None else sync_seconds
        skew_seconds = settings.revocation_skew_seconds if skew_seconds is None else skew_seconds
    return RevocationNumbers(
        lookback_seconds,
        DEFAULT_SYNC_SECONDS if sync_seconds is None else sync_seconds,
        DEFAULT_SKEW_SECONDS if skew_seconds is None else skew_seconds,
        unreadable,
    )


def _warn_of_unread_variables(sync: bool, skew: bool, why: str) -> None:
    fields = [name for name, unread in (("sync", sync), ("skew", skew)) if unread]
    unread = [env_name(f"revocation_{name}_seconds") for name in fields]
    unread = [name for name in unread if name in os.environ]
    if unread:
        logger.warning(
            "TokenBlacklist: %s %s set, but the S3AUTH_* settings cannot be read (%s): reading "
            "with the default sync interval (%g s) and skew allowance (%g s); give "
            "TokenBlacklist(store, sync_seconds=..., skew_seconds=...) or use "
            "TokenBlacklist.from_settings",
            " and ".join(unread),
            "is" if len(unread) == 1 else "are",
            why,
            DEFAULT_SYNC_SECONDS,
            DEFAULT_SKEW_SECONDS,
        )
