"""ASGI types shared by every module that speaks ASGI (no framework imports)."""

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .errors import ConfigurationError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# Loose on purpose: Quart's and Litestar's apps type their scopes as TypedDicts, which a
# MutableMapping parameter would refuse.
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

Clock = Callable[[], float]
"""Seconds since the epoch, as `time.time`; injected so tests can move time."""


def checked_app(app: object) -> ASGIApp:
    """`app`, if it can be called as an ASGI application: the first check of every
    wrapper's constructor, so a mistake shows at start-up rather than on a request."""
    if not callable(app):
        raise ConfigurationError(f"app must be an ASGI application, got {type(app).__name__}")
    return app
