"""ASGI types shared by every module that speaks ASGI (no framework imports)."""

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# Loose on purpose: Quart's and Litestar's apps type their scopes as TypedDicts, which a
# MutableMapping parameter would refuse.
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]
