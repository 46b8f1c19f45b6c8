"""ASGI types shared by every module that speaks ASGI (no framework imports)."""

import datetime as dt
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .errors import ConfigurationError, S3ValidationError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# Loose on purpose: Quart's and Litestar's apps type their scopes as TypedDicts, which a
# MutableMapping parameter would refuse.
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

Clock = Callable[[], float]
"""Seconds since the epoch, as `time.time`; injected so tests can move time."""


def elapsed_clock(clock: Clock) -> Clock:
    """What measures time passing (a snapshot's age, a pause) for a process whose clock is
    `clock`: `time.monotonic` for the real `time.time`, since a step of the host's clock
    (NTP correcting a host that booted ahead) would stretch or skip an interval; a clock
    given in its place (a test's, moved by hand) measures it as well."""
    return time.monotonic if clock is time.time else clock


def epoch_seconds(value: int | float | dt.datetime) -> int:
    """A time given as a datetime (naive: UTC) or as seconds since the epoch, in whole
    seconds; S3ValidationError for anything else."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return int(value.timestamp())
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise S3ValidationError("expires_at must be a datetime or a Unix timestamp")
    return int(value)


def checked_app(app: object) -> ASGIApp:
    """`app`, if it can be called as an ASGI application: the first check of every
    wrapper's constructor, so a mistake shows at start-up rather than on a request."""
    if not callable(app):
        raise ConfigurationError(f"app must be an ASGI application, got {type(app).__name__}")
    return app
