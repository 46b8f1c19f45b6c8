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
from ..settings_ranges import Range, check_number
from ..settings_text import SPACES
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
# ASCII only: without re.ASCII, \d takes any script's digits (`login=١٢/٦٠`), which int()
# and float() read too, and \s a no-break space.
_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*", re.ASCII)


MAX_RATE = 10_000
"""Requests a second a limit may let through at most, one every 100 µs: more than a Python
process answers in all, and an emission interval a hundred times the comparisons' tolerance
(`gcra.TOLERANCE`), which would otherwise admit more than the limit."""
WINDOW = Range(1 / MAX_RATE, 365 * 86400, "a year", whole=False)
"""Past a year a window is more likely a slip (a missing unit, an extra digit) than a limit:
the longest default one is a day. Under 100 µs it cannot hold one request."""
INTERVAL_GRAIN = 2.0**-20
"""Seconds (about a microsecond) the emission interval is a whole number of. Every timestamp
until 2242 (2^33 s) is a multiple of a power of two no coarser, so adding intervals to one
is exact, but for one rounding (far within the tolerance) where the sum passes a power of
two: a burst's TAT lands where arithmetic says. An interval of 0.05 s added ten times to a
wall-clock time was off by more than the tolerance, and refused the tenth request."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `max_requests` at once, refilled evenly over `window_seconds`.

    `key` says who is counted: "ip" (the client address, IPv6 by /64), "user" (the
    authenticated user in `scope["user"]`, falling back to the IP for anonymous requests), or
    an async function of the scope.

    The window is at most a year and holds at most MAX_RATE requests a second; the emission
    interval is `window_seconds / max_requests` rounded down to a whole INTERVAL_GRAIN, so
    that the window the algorithm keeps (`max_requests` intervals) is short of the one given
    by less than 1% at the highest rate, and by nothing for an interval that is a binary
    fraction of a second (every default limit's).
    """

    max_requests: int
    window_seconds: float
    key: KeyStrategy = "ip"
    emission_interval: float = field(init=False, repr=False, compare=False)
    """Seconds between two requests at the sustained rate (GCRA's T)."""

    def __post_init__(self) -> None:
        check_number(WINDOW, self.window_seconds, "RateLimit.window_seconds")
        most = math.floor(self.window_seconds * MAX_RATE)
        counts = Range(1, most, f"{MAX_RATE:,} a second")
        check_number(counts, self.max_requests, "RateLimit.max_requests")
        if self.key not in ("ip", "user") and not callable(self.key):
            raise ConfigurationError('RateLimit.key must be "ip", "user" or an async function')
        grains = math.floor(self.window_seconds / self.max_requests / INTERVAL_GRAIN)
        object.__setattr__(self, "emission_interval", grains * INTERVAL_GRAIN)


def check_cost(limit: RateLimit, cost: int) -> None:
    """A request's cost must fit the burst: a larger one could never be admitted."""
    if not 0 <= cost <= limit.max_requests:
        raise ConfigurationError(f"cost must be between 0 and {limit.max_requests}, got {cost}")


def check_limit_name(name: str, *, source: str = "limits") -> str:
    # `.` and `..` are no directory's name in a key (`storage.key_rules`): every check of
    # such a limit would fail, a 500, where its configuration can be refused instead.
    if not isinstance(name, str) or not _LIMIT_NAME.fullmatch(name) or name in (".", ".."):
        raise ConfigurationError(
            f"{source}: limit name {name!r} must be 1-64 letters, digits, '_', '.' or '-', "
            "and not '.' or '..'"
        )
    return name


def parse_rate_limits(text: str) -> dict[str, RateLimit]:
    """`"login=5/60, api=100/60"` → {"login": RateLimit(5, 60), "api": RateLimit(100, 60)}."""
    limits: dict[str, RateLimit] = {}
    for item in text.split(","):
        if not item.strip(SPACES):
            continue
        name, sep, rate = item.partition("=")
        name = name.strip(SPACES)
        match = _RATE.fullmatch(rate)
        if not sep or match is None:
            raise ConfigurationError(
                f"{RATE_LIMITS_VARIABLE}: {item.strip(SPACES)!r} is not of the form "
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
    """A warning logged for each of `misspelt_names`."""
    for warning in misspelt_names(configured, defined):
        logger.warning("%s", warning)


def misspelt_names(configured: Iterable[str], defined: Collection[str]) -> list[str]:
    """A warning for each `configured` name (from S3AUTH_RATE_LIMITS) that is none of the
    `defined` ones but looks like one misspelt. Such a name is taken, not refused: a host may
    count its own requests under any name, so it may be meant; but `logn=5/60` leaves the
    login limit as it was while its operator believes it changed."""
    by_folded = {name.casefold(): name for name in defined}
    warnings = []
    for name in configured:
        if name in defined:
            continue
        close = closest(name.casefold(), by_folded, cutoff=MISSPELLING_LIKENESS)
        if close is not None:
            warnings.append(
                f"{RATE_LIMITS_VARIABLE}: {name!r} names none of the limits defined in code "
                f"(did you mean {by_folded[close]!r}?): only a call that names {name!r} is "
                "limited by it"
            )
    return warnings
