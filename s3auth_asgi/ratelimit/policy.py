"""RateLimit: one named policy (how many requests per how many seconds, keyed by what), and
the parser for `S3AUTH_RATE_LIMITS` ("login=5/60,api=100/60"), with the warning for a name
there that looks like a misspelt one of the limits defined in code."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Literal

from ..errors import ConfigurationError
from ..settings import env_name
from ..settings_env import closest
from ..types import Scope

KeyFunction = Callable[[Scope], Awaitable[str | None]]
"""A custom key: given the ASGI scope, the string requests are counted under (None: fall back
to the client IP)."""

KeyStrategy = Literal["ip", "user"] | KeyFunction

RATE_LIMITS_VARIABLE = env_name("rate_limits")
MISSPELLING_LIKENESS = 0.8
"""How alike (difflib's ratio, case aside) a configured name must be to one defined in code to
be taken for its misspelling: `logn` and `login` are 0.89, `uplaod` and `upload` 0.83; `app`
and `api`, at 0.67, are as likely two names."""

logger = logging.getLogger("s3auth_asgi")

# Limit names travel in object keys and in structured-field strings of the RateLimit headers,
# so they are kept to characters that need no escaping in either.
_LIMIT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*")


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `max_requests` at once, refilled evenly over `window_seconds`.

    `key` says who is counted: "ip" (the client address, IPv6 by /64), "user" (the
    authenticated user in `scope["user"]`, falling back to the IP for anonymous requests), or
    an async function of the scope.
    """

    max_requests: int
    window_seconds: float
    key: KeyStrategy = "ip"
    emission_interval: float = field(init=False, repr=False, compare=False)
    """Seconds between two requests at the sustained rate (GCRA's T)."""

    def __post_init__(self) -> None:
        if isinstance(self.max_requests, bool) or not isinstance(self.max_requests, int):
            raise ConfigurationError("RateLimit.max_requests must be an integer")
        if self.max_requests < 1:
            raise ConfigurationError("RateLimit.max_requests must be at least 1")
        if not (isinstance(self.window_seconds, int | float) and self.window_seconds > 0):
            raise ConfigurationError("RateLimit.window_seconds must be a positive number")
        if not math.isfinite(self.window_seconds):
            raise ConfigurationError("RateLimit.window_seconds must be finite")
        if self.key not in ("ip", "user") and not callable(self.key):
            raise ConfigurationError('RateLimit.key must be "ip", "user" or an async function')
        object.__setattr__(self, "emission_interval", self.window_seconds / self.max_requests)


def check_cost(limit: RateLimit, cost: int) -> None:
    """A request's cost must fit the burst: a larger one could never be admitted."""
    if not 0 <= cost <= limit.max_requests:
        raise ConfigurationError(f"cost must be between 0 and {limit.max_requests}, got {cost}")


def check_limit_name(name: str, *, source: str = "limits") -> str:
    if not isinstance(name, str) or not _LIMIT_NAME.fullmatch(name):
        raise ConfigurationError(
            f"{source}: limit name {name!r} must be 1-64 letters, digits, '_', '.' or '-'"
        )
    return name


def parse_rate_limits(text: str) -> dict[str, RateLimit]:
    """`"login=5/60, api=100/60"` → {"login": RateLimit(5, 60), "api": RateLimit(100, 60)}."""
    limits: dict[str, RateLimit] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        name, sep, rate = item.partition("=")
        name = name.strip()
        match = _RATE.fullmatch(rate)
        if not sep or match is None:
            raise ConfigurationError(
                f"{RATE_LIMITS_VARIABLE}: {item.strip()!r} is not of the form "
                "name=requests/seconds (e.g. login=5/60)"
            )
        check_limit_name(name, source=RATE_LIMITS_VARIABLE)
        if name in limits:
            raise ConfigurationError(f"{RATE_LIMITS_VARIABLE}: limit {name!r} is given twice")
        try:
            limits[name] = RateLimit(int(match[1]), float(match[2]))
        except ConfigurationError as exc:
            raise ConfigurationError(f"{RATE_LIMITS_VARIABLE}: {name}: {exc.detail}") from None
    return limits


def warn_of_misspelt_names(configured: Iterable[str], defined: Collection[str]) -> None:
    """A warning for each `configured` name (from S3AUTH_RATE_LIMITS) that is none of the
    `defined` ones but looks like one misspelt. Such a name is taken, not refused: a host may
    count its own requests under any name, so it may be meant; but `logn=5/60` leaves the
    login limit as it was while its operator believes it changed."""
    by_folded = {name.casefold(): name for name in defined}
    for name in configured:
        if name in defined:
            continue
        close = closest(name.casefold(), by_folded, cutoff=MISSPELLING_LIKENESS)
        if close is not None:
            logger.warning(
                "%s: %r names none of the limits defined in code (did you mean %r?): only a "
                "call that names %r is limited by it",
                RATE_LIMITS_VARIABLE,
                name,
                by_folded[close],
                name,
            )
