"""What every command runs with: its arguments, its output streams, the settings and store
they select, and a way to run the store's async API to completion."""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import anyio

from ..service import S3AuthService
from ..settings import S3AuthSettings

if TYPE_CHECKING:
    from ..storage import ObjectStore

T = TypeVar("T")
OpenStore = Callable[[str], "ObjectStore"]

SETTLE_GRACE_SECONDS = 0.005
SETTLE_LIMIT_SECONDS = 2.0


@dataclass
class Context:
    args: argparse.Namespace
    out: TextIO
    err: TextIO
    open_store: OpenStore | None = None
    """Tests inject a store here; by default `ObjectStore.from_url`."""
    store_url: str | None = None
    """The URL of the store the command opened, for messages about it."""

    def settings(self) -> S3AuthSettings:
        if self.args.demo:
            return demo_settings(demo_directory(self.args.demo_dir))
        return S3AuthSettings.from_env()

    def store(self, settings: S3AuthSettings, *, create: bool = False) -> ObjectStore:
        """The store at `settings.store_url`. A `file://` one whose parent directory is
        missing is created only with `--create`, S3AUTH_STORE_CREATE, or for the demo
        (`--demo`, or `create` from the demo command); otherwise that is a
        ConfigurationError."""
        self.store_url = settings.store_url
        if self.open_store is not None:
            return self.open_store(settings.store_url)
        from ..storage import ObjectStore

        create = (
            create or self.args.demo or getattr(self.args, "create", False) or settings.store_create
        )
        return ObjectStore.from_url(settings.store_url, create_parents=create)

    def service(self, settings: S3AuthSettings | None = None) -> S3AuthService:
        """A service on `settings` (by default those the command line selects)."""
        settings = settings or self.settings()
        return S3AuthService(settings, store=self.store(settings))


# The demo package is imported only when a command uses it: the others, `gen-secret` above
# all, have no need to load it.


def demo_directory(option: str | None) -> Path:
    from ..demo.config import DEFAULT_DEMO_DIR

    return Path(option) if option else DEFAULT_DEMO_DIR


def demo_settings(directory: Path) -> S3AuthSettings:
    from ..demo import config

    return config.demo_settings(directory)


def run_async(function: Callable[[], Awaitable[T]]) -> T:
    """`function()` to completion on asyncio (obstore's async API needs it); then, even when
    it failed, wait until obstore's threads have handed every answer back (`Handoffs`)."""
    handoffs = Handoffs()

    async def watched() -> T:
        handoffs.watch(asyncio.get_running_loop())
        return await function()

    try:
        return anyio.run(watched, backend="asyncio")
    finally:
        handoffs.settle()


class Handoffs:
    """Counts the threads inside the loop's `call_soon_threadsafe`, so that the process
    does not shut down while one is.

    obstore answers an awaited request from a thread of its own (tokio's, through
    pyo3-async-runtimes): that thread calls the loop's `call_soon_threadsafe`, whose wake-up
    write releases the GIL. The loop can then run the answer, finish the command and start
    shutting the interpreter down before that thread takes the GIL back. Python 3.11 ends a
    thread that asks for the GIL during finalization with pthread_exit, whose unwinding
    through Rust frames aborts the process: SIGABRT, exit 134, 2 runs in 3 of `user list` on
    an unreachable store, whose failed listing is the last request. The thread enters
    `call_soon_threadsafe` before the loop can see the answer, so once the loop is done the
    count only falls; `settle` waits for 0 (bounded, should a thread never come back).
    """

    def __init__(self) -> None:
        self.inside = 0
        self._lock = threading.Lock()

    def watch(self, loop: asyncio.AbstractEventLoop) -> None:
        original = loop.call_soon_threadsafe

        def call_soon_threadsafe(
            callback: Callable[..., object], *args: object, context: Any = None
        ) -> asyncio.Handle:
            with self._lock:
                self.inside += 1
            try:
                return original(callback, *args, context=context)
            finally:
                with self._lock:
                    self.inside -= 1

        loop.call_soon_threadsafe = call_soon_threadsafe  # type: ignore[method-assign]

    def settle(self) -> None:
        settle()
        deadline = time.monotonic() + SETTLE_LIMIT_SECONDS
        while self.inside and time.monotonic() < deadline:
            time.sleep(0.001)


def settle() -> None:
    """A moment for obstore's threads to finish with Python after the last use of a store
    (one woken by a cancelled request takes the GIL once more), before the process exits."""
    time.sleep(SETTLE_GRACE_SECONDS)
