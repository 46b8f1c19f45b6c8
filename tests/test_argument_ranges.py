"""Objects made in code hold their numbers to the ranges the settings hold theirs to.

A JwksVerifier, PasswordHasher or TokenBlacklist made by hand took any number: an access-token
lifetime of 1e300 s (every token accepted for ever), NaN (no comparison ever true), a negative
leeway, an argon2 memory past argon2's own bound (the first hash then fails), a queue of 10**30.
Each argument that takes what a setting gives is now held to that setting's range, the error
naming the argument; what `from_settings` passes is in range whatever the settings are."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from conftest import make_settings

from s3auth_asgi import (
    ConfigurationError,
    JwksVerifier,
    PasswordHasher,
    PasswordPolicy,
    TokenBlacklist,
)
from s3auth_asgi.storage import ObjectStore

NOT_NUMBERS = [math.nan, math.inf, -math.inf, 1e300, 10**30, "5", True]


def jwks_verifier(**arguments: Any) -> JwksVerifier:
    return JwksVerifier("jwks.json", **arguments)


def blacklist(**arguments: Any) -> TokenBlacklist:
    return TokenBlacklist(ObjectStore.from_url("memory://"), **arguments)


CASES: list[tuple[Callable[..., object], str, str, list[Any]]] = [
    (
        jwks_verifier,
        "access_token_seconds",
        "JwksVerifier access_token_seconds must be a whole number from 60 to 86400 (24 hours)",
        [59, 86_401, 0, -1, 1800.0],
    ),
    (
        jwks_verifier,
        "leeway_seconds",
        "JwksVerifier leeway_seconds must be a whole number from 0 to 600 (10 minutes)",
        [-1, 601, 5.0],
    ),
    (
        jwks_verifier,
        "refresh_seconds",
        "JwksVerifier refresh_seconds must be a number more than 0 and at most 3600 (an hour)",
        [0, -1, 3600.5],
    ),
    (
        jwks_verifier,
        "min_refresh_seconds",
        "JwksVerifier min_refresh_seconds must be a number more than 0 and at most 3600 (an hour)",
        [0, -1, 3601],
    ),
    (
        jwks_verifier,
        "timeout_seconds",
        "JwksVerifier timeout_seconds must be a number more than 0 and at most 60 (a minute)",
        [0, -1, 61],
    ),
    (
        PasswordHasher,
        "memory_kib",
        "PasswordHasher memory_kib must be a whole number from 8 to 4294967295",
        [7, 0, 2**32],
    ),
    (
        PasswordHasher,
        "time_cost",
        "PasswordHasher time_cost must be a whole number from 1 to 4294967295",
        [0, 2**32],
    ),
    (
        PasswordHasher,
        "parallelism",
        "PasswordHasher parallelism must be a whole number from 1 to 16777215",
        [0, 2**24],
    ),
    (
        PasswordHasher,
        "concurrency",
        "PasswordHasher concurrency must be a whole number from 0 to 1024",
        [-1, 1025, 2.0],
    ),
    (
        PasswordHasher,
        "queue",
        "PasswordHasher queue must be a whole number from 0 to 65536",
        [-1, 65_537],
    ),
    (
        PasswordHasher,
        "device_queue",
        "PasswordHasher device_queue must be a whole number from 0 to 65536",
        [-1, 65_537],
    ),
    (
        PasswordPolicy,
        "max_length",
        "PasswordPolicy max_length must be a whole number from 64 to 4096",
        [63, 4097, 0, 128.0],
    ),
    (
        # At most the maximum: past it no password could be set, and every registration
        # would be refused for rules no password can meet.
        PasswordPolicy,
        "min_length",
        "PasswordPolicy min_length must be a whole number from 1 to 128",
        [0, -1, 129, 8.0],
    ),
    (
        blacklist,
        "lookback_seconds",
        "TokenBlacklist lookback_seconds must be a whole number from 60 to 87000 (24 hours and "
        "10 minutes)",
        [0, 59, 87_001, 1860.0],
    ),
    (
        blacklist,
        "sync_seconds",
        "TokenBlacklist sync_seconds must be a number from 0 to 300 (5 minutes)",
        [-1, 300.5],
    ),
    (
        blacklist,
        "skew_seconds",
        "TokenBlacklist skew_seconds must be a whole number from 0 to 3600 (an hour)",
        [-1, 3601, 10.0],
    ),
]


@pytest.mark.parametrize(
    ("make", "argument", "message", "value"),
    [
        pytest.param(make, argument, message, value, id=f"{argument}={value!r}")
        for make, argument, message, outside in CASES
        for value in [*NOT_NUMBERS, *outside]
    ],
)
def test_an_argument_outside_its_settings_range_is_refused(
    make: Callable[..., object], argument: str, message: str, value: Any
) -> None:
    with pytest.raises(ConfigurationError) as info:
        make(**{argument: value})
    assert str(info.value) == f"{message}, not {value!r}"


def test_arguments_at_the_ends_of_their_ranges_are_taken() -> None:
    jwks_verifier(
        access_token_seconds=60, leeway_seconds=0, refresh_seconds=1e-3, min_refresh_seconds=1e-3
    )
    jwks_verifier(
        access_token_seconds=86_400,
        leeway_seconds=600,
        refresh_seconds=3600,
        min_refresh_seconds=3600,
        timeout_seconds=60,
    )
    hasher = PasswordHasher(concurrency=1024, queue=65_536, device_queue=65_536)
    assert (hasher.concurrency, hasher.queue, hasher.device_queue) == (1024, 65_536, 65_536)
    PasswordHasher(memory_kib=2**32 - 1, time_cost=2**32 - 1, parallelism=2**24 - 1)
    blacklist(lookback_seconds=60, sync_seconds=0, skew_seconds=0)
    blacklist(lookback_seconds=87_000, sync_seconds=300, skew_seconds=3600)
    PasswordPolicy(min_length=1, max_length=64)
    PasswordPolicy(min_length=4096, max_length=4096)


def test_the_shortest_refresh_is_at_most_the_refresh() -> None:
    with pytest.raises(ConfigurationError) as info:
        jwks_verifier(refresh_seconds=10, min_refresh_seconds=11)
    assert str(info.value) == "JwksVerifier min_refresh_seconds must be at most its refresh_seconds"


def test_argon2_memory_must_hold_its_lanes() -> None:
    """As the settings: argon2 needs 8 KiB for each lane, or its first hash fails."""
    PasswordHasher(memory_kib=32, parallelism=4)
    with pytest.raises(ConfigurationError) as info:
        PasswordHasher(memory_kib=31, parallelism=4)
    assert str(info.value) == (
        "PasswordHasher memory_kib must be at least 32 KiB: argon2 needs 8 KiB for each lane "
        "of PasswordHasher parallelism (4)"
    )


def test_the_settings_at_their_ends_make_every_object() -> None:
    """One range each: whatever the settings take, the objects made from them take."""
    for end in ("least", "most"):
        most = end == "most"
        settings = make_settings(
            access_token_expire_minutes=1440 if most else 1,
            leeway_seconds=600 if most else 0,
            revocation_skew_seconds=3600 if most else 0,
            revocation_sync_seconds=300 if most else 0,
            hash_concurrency=1024 if most else 0,
            hash_queue=65_536 if most else 0,
            hash_device_queue=65_536 if most else 0,
            argon2_memory_kib=2**32 - 1 if most else 8,
            argon2_time_cost=2**32 - 1 if most else 1,
            argon2_parallelism=2**24 - 1 if most else 1,
        )
        PasswordHasher.from_settings(settings)
        for policy in ("default", "nist"):
            chosen = msgspec.structs.replace(
                settings,
                password_policy=policy,
                password_max_length=4096 if most else 64,
                max_body_bytes=1024 * 1024 if most else 7496,
            )
            PasswordPolicy.from_settings(chosen)
        made = TokenBlacklist.from_settings(ObjectStore.from_url("memory://"), settings)
        assert made.lookback_seconds == (87_000 if most else 60)
        jwks_verifier(
            access_token_seconds=settings.access_token_seconds,
            leeway_seconds=settings.leeway_seconds,
            refresh_seconds=settings.key_sync_seconds,
            min_refresh_seconds=settings.key_sync_seconds,
        )
