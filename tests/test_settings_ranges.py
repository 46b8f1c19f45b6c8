"""Every numeric setting has a documented range, checked when the settings are made, from the
environment and from keyword arguments alike: a value that is not finite, that would
overflow where it is used, or that is past a sane maximum is a ConfigurationError naming the
variable and the range, at start rather than at the first token or key rotation.

The lifetimes follow OWASP ASVS 5.0 (V7.3, V9.2): access tokens stay short-lived (at most 24
hours), sessions end within a year, the clock-skew allowance stays within 10 minutes."""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from conftest import SECRET, make_settings
from hypothesis import HealthCheck, given, reject
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from support import Clock, login

from s3auth_asgi import ConfigurationError, S3AuthService, S3AuthSettings
from s3auth_asgi.cli.table_text import iso
from s3auth_asgi.settings import env_name

ABOVE_ZERO = -1
"""The least of a range that takes any number above 0, but not 0."""

RANGES: dict[str, tuple[int, int]] = {
    # Lifetimes and intervals.
    "key_publish_seconds": (1, 30 * 86400),
    "key_sync_seconds": (ABOVE_ZERO, 3600),
    "jwks_max_age_seconds": (1, 86400),
    "access_token_expire_minutes": (1, 24 * 60),
    "refresh_token_expire_days": (1, 365),
    "session_absolute_lifetime_days": (1, 365),
    "leeway_seconds": (0, 600),
    "refresh_grace_seconds": (0, 300),
    "name_reservation_seconds": (0, 86400),
    "revocation_sync_seconds": (0, 300),
    "revocation_skew_seconds": (0, 3600),
    "smtp_timeout_seconds": (ABOVE_ZERO, 600),
    "password_reset_minutes": (1, 24 * 60),
    "email_verification_hours": (1, 7 * 24),
    "audit_retention_days": (0, 3650),
    "admin_max_age_seconds": (0, 86400),
    # Counts and sizes.
    "max_sessions_per_user": (1, 10000),
    "breached_passwords_timeout_seconds": (ABOVE_ZERO, 30),
    "breached_passwords_threshold": (1, 10**9),
    "password_max_length": (64, 4096),
    "argon2_memory_kib": (8, 2**32 - 1),
    "argon2_time_cost": (1, 2**32 - 1),
    "argon2_parallelism": (1, 2**24 - 1),
    "hash_concurrency": (0, 1024),
    "hash_queue": (0, 65536),
    "hash_device_queue": (0, 65536),
    "max_body_bytes": (7496, 1024 * 1024),
    "smtp_port": (0, 65535),
    "ipv6_prefix_length": (1, 128),
}

COMPANIONS: dict[str, dict[str, Any]] = {
    # What a bound needs of the settings it must agree with.
    "key_publish_seconds": {"jwks_max_age_seconds": 1, "key_sync_seconds": 0.1},
    "key_sync_seconds": {"key_publish_seconds": 30 * 86400},
    "jwks_max_age_seconds": {"key_publish_seconds": 30 * 86400},
    "refresh_token_expire_days": {"session_absolute_lifetime_days": 365},
    "session_absolute_lifetime_days": {"refresh_token_expire_days": 1},
    "leeway_seconds": {"revocation_skew_seconds": 3600},
    "revocation_skew_seconds": {"leeway_seconds": 0},
    "argon2_parallelism": {"argon2_memory_kib": 2**32 - 1},
    # The largest request, two passwords of the longest, must fit in the body limit.
    "password_max_length": {"max_body_bytes": 1024 * 1024},
    "max_body_bytes": {"password_max_length": 64},
}

NUMERIC = [
    field.name
    for field in msgspec.structs.fields(S3AuthSettings)
    if field.type in (int, float, int | None, float | None)
]


def range_text(name: str) -> str:
    least, most = RANGES[name]
    return f"more than 0 and at most {most}" if least == ABOVE_ZERO else f"from {least} to {most}"


def refusal(**values: Any) -> str:
    with pytest.raises(ConfigurationError) as info:
        S3AuthSettings(secret_key=SECRET, **values)
    return str(info.value)


def test_every_numeric_setting_has_a_documented_range() -> None:
    assert sorted(NUMERIC) == sorted(RANGES)


@pytest.mark.parametrize("name", sorted(RANGES))
@pytest.mark.parametrize(
    "text", ["nan", "NaN", "inf", "-inf", "1e23", "99999999999999999999999", "-1e23"]
)
def test_a_value_that_is_not_finite_or_absurd_is_refused_from_the_environment(
    name: str, text: str
) -> None:
    variable = env_name(name)
    with pytest.raises(ConfigurationError) as info:
        S3AuthSettings.from_env({"S3AUTH_SECRET_KEY": SECRET, variable: text})
    message = str(info.value)
    assert message.startswith(f"{variable} must be") and range_text(name) in message, message


@pytest.mark.parametrize("name", sorted(RANGES))
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e23, 10**23, -(10**23)])
def test_a_value_that_is_not_finite_or_absurd_is_refused_as_an_argument(
    name: str, value: float
) -> None:
    message = refusal(**{name: value})
    assert message.startswith(f"{env_name(name)} must be") and range_text(name) in message


@pytest.mark.parametrize("name", sorted(RANGES))
def test_each_range_holds_to_its_ends(name: str) -> None:
    least, most = RANGES[name]
    companions = COMPANIONS.get(name, {})
    assert getattr(make_settings(**companions, **{name: most}), name) == most
    kind = type(getattr(S3AuthSettings(secret_key=SECRET), name))
    past = math.nextafter(most, math.inf) if kind is float else most + 1
    assert range_text(name) in refusal(**companions, **{name: past})
    if least == ABOVE_ZERO:
        assert range_text(name) in refusal(**{name: 0.0})
        return
    if name != "key_publish_seconds":  # it must exceed max-age (at least 1) and two syncs
        assert getattr(make_settings(**companions, **{name: least}), name) == least
    assert range_text(name) in refusal(**companions, **{name: least - 1})


def test_the_message_shows_the_value_given() -> None:
    with pytest.raises(ConfigurationError) as info:
        S3AuthSettings.from_env(
            {"S3AUTH_SECRET_KEY": SECRET, "S3AUTH_ACCESS_TOKEN_EXPIRE_MINUTES": "1e23"}
        )
    assert str(info.value) == (
        "S3AUTH_ACCESS_TOKEN_EXPIRE_MINUTES must be a whole number from 1 to 1440 "
        "(24 hours), not '1e23'"
    )


def test_the_readme_gives_each_range() -> None:
    from s3auth_asgi.settings_ranges import allowed

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    rows = {
        name: [line for line in readme.splitlines() if line.startswith("|") and f"`{name}`" in line]
        for name in map(env_name, RANGES)
    }
    missing = [
        field for field in RANGES if not any(allowed(field) in row for row in rows[env_name(field)])
    ]
    assert missing == []


# Whatever is accepted works: the token lifetimes ----------------------------------------

LIFETIMES = st.sampled_from(
    [
        "access_token_expire_minutes",
        "refresh_token_expire_days",
        "session_absolute_lifetime_days",
        "leeway_seconds",
        "revocation_skew_seconds",
    ]
)
NUMBERS = st.one_of(st.integers(-2, 2000), st.integers(-2, 10**16))


@given(name=LIFETIMES, value=NUMBERS)
@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_accepted_lifetime_issues_tokens_that_verify(name: str, value: int) -> None:
    """A token is issued, verified and refreshed, and every moment a lifetime leads to (the
    token's expiry, the session's, when a key that signed it may retire) is a date: the
    CLI shows them as such, and a verifier in another language reads them as one."""
    companions = {
        "refresh_token_expire_days": {"session_absolute_lifetime_days": max(value, 1)},
        "session_absolute_lifetime_days": {"refresh_token_expire_days": 1},
        "leeway_seconds": {"revocation_skew_seconds": max(value, 10)},
        "revocation_skew_seconds": {"leeway_seconds": 0},
    }.get(name, {})
    try:
        settings = make_settings(**companions, **{name: value})
    except ConfigurationError:
        reject()
    clock = Clock()
    service = S3AuthService(settings, clock=clock)

    async def round_trip() -> None:
        _, pair = await login(service)
        claims = service.tokens.verify_access_token(pair.access_token)
        assert claims["exp"] - claims["iat"] == settings.access_token_seconds
        refreshed = await service.refresh_access_token(pair.refresh_token)
        again = service.tokens.verify_access_token(refreshed.access_token)
        assert again["sub"] == claims["sub"]
        now = int(clock())
        for moment in (
            claims["exp"] + settings.leeway_seconds,
            now + refreshed.refresh_expires_in + settings.revocation_skew_seconds,
            now + settings.session_absolute_seconds + settings.revocation_skew_seconds,
        ):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", iso(moment) or "")
            assert dt.datetime.fromtimestamp(moment, dt.UTC).year < 2**16

    anyio.run(round_trip, backend="asyncio")
