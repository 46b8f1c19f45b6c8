"""The range of every numeric setting (RANGES), each failure a ConfigurationError naming the
variable and the range, from the environment and from keyword arguments alike; and the one
check of a number against a range (`check_number`), which the objects made in code use for
their arguments: the setting's own range for one that takes what a setting gives
(`check_argument`: a JwksVerifier's lifetime, a PasswordHasher's queue), a range of its own
for another (a RateLimit's window).

Without a ceiling a value past any sane one is taken at start and fails later, or never does
what it says: a lifetime of 10²³ minutes issues tokens that never expire in practice, whose
expiry is no date (Python's datetime ends at year 9999, a JavaScript number of milliseconds
sooner), so the CLI fails on it and a verifier in another language may too. NaN compares
false with every bound, so it is refused by being outside every range.

The lifetimes follow OWASP ASVS 5.0 and its cheat sheets: access tokens short-lived, sessions
ended within a year (below the 400 days browsers keep a cookie, so a browser-mode session
never outlives its cookie), mailed links valid for a day or a week. The counts and intervals
are bounded an order of magnitude or more past anything a deployment needs, so that a typo
(a missing unit, an extra digit) is caught rather than believed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .body_limit import least_body_bytes
from .errors import ConfigurationError
from .settings_env import env_name

HOUR = 3600
DAY = 86400

# argon2's own bounds, as its reference implementation (which argon2-cffi binds) has them:
# every count is a 32-bit unsigned integer, the lanes at most 2^24 - 1, and the memory at
# least two blocks of 1 KiB for each of the four slices of each lane. Outside them the first
# hash fails ("Memory cost is too small", OverflowError). No lower ceiling is set on memory:
# RFC 9106's first recommended setting takes 2 GiB a hash, and what a host can spare is its
# operator's call (docs/deployment.md).
ARGON2_MAX_VALUE = 2**32 - 1
ARGON2_MAX_PARALLELISM = 2**24 - 1
ARGON2_MIN_MEMORY_PER_LANE = 8
"""KiB."""
LEAST_PASSWORD_MAX_LENGTH = 64
"""NIST SP 800-63B's least maximum."""


@dataclass(frozen=True, slots=True)
class Range:
    least: float
    most: float
    plainly: str = ""
    """The most in words, when its unit hides it: `24 hours` for 1440 minutes."""
    above_least: bool = False
    """The least itself is refused: any number above it is taken."""
    whole: bool = True

    def in_units_of(self, size: int) -> Range:
        """The same range counted in a unit `size` times smaller: seconds for minutes."""
        return Range(
            self.least * size, self.most * size, self.plainly, self.above_least, self.whole
        )


RANGES: dict[str, Range] = {
    "key_publish_seconds": Range(1, 30 * DAY, "30 days"),
    # A key retired from the store is still trusted by a process until its next sync.
    "key_sync_seconds": Range(0, HOUR, "an hour", above_least=True, whole=False),
    "jwks_max_age_seconds": Range(1, DAY, "a day"),
    # An access token is a bearer credential that a host's own routes accept until it
    # expires: kept short-lived (ASVS V9.2, V7.4).
    "access_token_expire_minutes": Range(1, 24 * 60, "24 hours"),
    "refresh_token_expire_days": Range(1, 365, "a year"),
    "session_absolute_lifetime_days": Range(1, 365, "a year"),
    # The leeway lengthens every token's life; clocks minutes apart are already a fault.
    "leeway_seconds": Range(0, 600, "10 minutes"),
    # Within the grace a replayed previous refresh token is answered, not caught as reuse.
    "refresh_grace_seconds": Range(0, 300, "5 minutes"),
    "name_reservation_seconds": Range(0, DAY, "a day"),
    # How long a revoked token may still be accepted by a process.
    "revocation_sync_seconds": Range(0, 300, "5 minutes", whole=False),
    "revocation_skew_seconds": Range(0, HOUR, "an hour"),
    # RFC 5321 allows 10 minutes for the longest step of an SMTP exchange.
    "smtp_timeout_seconds": Range(0, 600, "10 minutes", above_least=True, whole=False),
    "password_reset_minutes": Range(1, 24 * 60, "24 hours"),
    "email_verification_hours": Range(1, 7 * 24, "7 days"),
    "audit_retention_days": Range(0, 3650, "10 years"),
    # A recent login, for an administrator's operations: past a working day it is none.
    "admin_max_age_seconds": Range(0, DAY, "a day"),
    # Every refresh lists the user's sessions; a cap past this is no cap.
    "max_sessions_per_user": Range(1, 10000),
    # Each second of it is a second a registration or a new password may wait.
    "breached_passwords_timeout_seconds": Range(0, 30, above_least=True, whole=False),
    # The commonest breached passwords are counted in tens of millions.
    "breached_passwords_threshold": Range(1, 10**9),
    # At least NIST SP 800-63B's 64; past a page of text no one types or generates one.
    "password_max_length": Range(LEAST_PASSWORD_MAX_LENGTH, 4096),
    "argon2_memory_kib": Range(ARGON2_MIN_MEMORY_PER_LANE, ARGON2_MAX_VALUE),
    "argon2_time_cost": Range(1, ARGON2_MAX_VALUE),
    "argon2_parallelism": Range(1, ARGON2_MAX_PARALLELISM),
    # Each running hash holds argon2_memory_kib (19 MiB by default).
    "hash_concurrency": Range(0, 1024),
    "hash_queue": Range(0, 65536),
    "hash_device_queue": Range(0, 65536),
    # The auth app's bodies are forms of a few fields. Below the least, the largest of them
    # is refused with the shortest passwords; `check_ranges` holds it to the longest.
    "max_body_bytes": Range(least_body_bytes(LEAST_PASSWORD_MAX_LENGTH), 1024 * 1024, "1 MiB"),
    "smtp_port": Range(0, 65535),
    # The bits of an IPv6 address that name one client: 128, each address apart.
    "ipv6_prefix_length": Range(1, 128),
}


ACCESS_TOKEN_ACCEPTED = Range(
    RANGES["access_token_expire_minutes"].least * 60 + RANGES["leeway_seconds"].least,
    RANGES["access_token_expire_minutes"].most * 60 + RANGES["leeway_seconds"].most,
    "24 hours and 10 minutes",
)
"""The longest an access token may be accepted after it is issued, in seconds (the settings'
`access_token_accepted_seconds`): its lifetime and the leeway, each within its range."""


def allowed(field: str) -> str:
    """The range of `field` in words, as the README gives it: `from 1 to 1440 (24 hours)`."""
    return described(RANGES[field])


def described(bounds: Range) -> str:
    most = f"{bounds.most:g}" if bounds.most < 1e6 else str(int(bounds.most))
    plainly = f" ({bounds.plainly})" if bounds.plainly else ""
    if bounds.above_least:
        return f"more than {bounds.least:g} and at most {most}{plainly}"
    return f"from {bounds.least:g} to {most}{plainly}"


def out_of_range(field: str, value: Any) -> ConfigurationError:
    """The error for `value` (as given: a string from the environment) of `field`."""
    return refusal(RANGES[field], value, env_name(field))


def refusal(bounds: Range, value: Any, name: str) -> ConfigurationError:
    kind = "a whole number" if bounds.whole else "a number"
    return ConfigurationError(f"{name} must be {kind} {described(bounds)}, not {value!r}")


def check_range(field: str, value: Any) -> None:
    """ConfigurationError unless `value`, of the field's type, is within its range; NaN is in
    none."""
    check_number(RANGES[field], value, env_name(field))


def check_argument(field: str, value: Any, name: str, *, unit: int = 1) -> None:
    """For an argument that takes what the setting `field` does (in a unit `unit` times
    smaller: seconds for minutes), as an object made in code is given it: the setting's own
    range, the error naming `name`."""
    check_number(RANGES[field].in_units_of(unit), value, name)


def check_number(bounds: Range, value: Any, name: str) -> None:
    """ConfigurationError naming `name` unless `value` is a number of the kind `bounds` takes
    (a whole one is an int; a bool is neither) within them; NaN is within none."""
    kind = int if bounds.whole else int | float
    if isinstance(value, bool) or not isinstance(value, kind) or not within(bounds, value):
        raise refusal(bounds, value, name)


def within(bounds: Range, value: float) -> bool:
    """Whether the number `value` is within `bounds`; NaN is within none."""
    above = value > bounds.least if bounds.above_least else value >= bounds.least
    return above and value <= bounds.most
