"""Rate limits of the endpoints that check passwords or create accounts.

Each such request is counted twice: per client IP (one address guessing at many accounts)
and per client IP + account (one account guessed at from one address, under a tighter
limit). The account part is the login name as typed, which the limiter hashes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from ..ratelimit import ClientIPResolver, RateLimit, RateLimiter, RateLimitInfo
from ..settings import S3AuthSettings
from ..types import Scope

Action = Literal["login", "register", "password"]

DEFAULT_AUTH_LIMITS: dict[str, RateLimit] = {
    "login": RateLimit(max_requests=20, window_seconds=60),
    "login_account": RateLimit(max_requests=5, window_seconds=60),
    "register": RateLimit(max_requests=10, window_seconds=600),
    "register_account": RateLimit(max_requests=3, window_seconds=600),
}
"""Overridden by the same names in S3AUTH_RATE_LIMITS (e.g. `login_account=10/60`)."""

ACTION_LIMITS: dict[Action, tuple[str, str]] = {
    "login": ("login", "login_account"),
    "register": ("register", "register_account"),
    # Guessing the current password with a stolen access token is guessing a password.
    "password": ("login", "login_account"),
}
"""Per action: the limit counted per IP, and the one counted per IP + account."""


def default_limiter(
    settings: S3AuthSettings, extra: Mapping[str, RateLimit] | None = None
) -> RateLimiter:
    """The default limits and `extra` ones, S3AUTH_RATE_LIMITS on top, proxies from the
    settings."""
    return RateLimiter.from_settings(settings, defaults={**DEFAULT_AUTH_LIMITS, **(extra or {})})


class AuthRateLimits:
    """Checks an action against its limits (those the limiter has; none without a limiter)
    and resolves the client address that sessions record."""

    def __init__(self, limiter: RateLimiter | None, settings: S3AuthSettings) -> None:
        self.limiter = limiter
        self._client_ip = (
            limiter.client_resolver
            if limiter is not None
            else ClientIPResolver(
                settings.trusted_proxies, trust_x_forwarded_for=settings.trust_x_forwarded_for
            )
        )

    def client_ip(self, scope: Scope) -> str | None:
        return self._client_ip.client_ip(scope)

    async def check(self, scope: Scope, action: Action, account: str) -> list[RateLimitInfo]:
        """The checks made, for the response headers; RateLimitedError when refused."""
        limiter = self.limiter
        if limiter is None:
            return []
        per_ip, per_account = ACTION_LIMITS[action]
        infos: list[RateLimitInfo] = []
        for name, narrowed_to in ((per_ip, None), (per_account, account)):
            if name not in limiter.limits:
                continue
            limited, info = await limiter.is_rate_limited(scope, name, account=narrowed_to)
            infos.append(info)
            if limited:
                raise limiter.refusal(infos)
        return infos

    def headers(self, infos: list[RateLimitInfo]) -> list[tuple[str, str]]:
        return self.limiter.header_items(infos) if self.limiter is not None and infos else []
