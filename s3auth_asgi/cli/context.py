"""What every command runs with: its arguments, its output streams, the settings and store
they select, and a way to run the store's async API to completion."""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO, TypeVar

import anyio

from ..service import S3AuthService
from ..settings import S3AuthSettings
from ..storage import ObjectStore

OK, FAILED, USAGE = 0, 1, 2
OBSTORE_SETTLE_SECONDS = 0.05

T = TypeVar("T")
OpenStore = Callable[[str], ObjectStore]


class CommandError(Exception):
    """A failure to report in one line, exit code 1."""


@dataclass
class Context:
    args: argparse.Namespace
    out: TextIO
    err: TextIO
    open_store: OpenStore

    def settings(self) -> S3AuthSettings:
        if self.args.demo:
            return demo_settings(demo_directory(self.args.demo_dir))
        return S3AuthSettings.from_env()

    def service(self, settings: S3AuthSettings | None = None) -> S3AuthService:
        """A service on `settings` (by default those the command line selects)."""
        settings = settings or self.settings()
        return S3AuthService(settings, store=self.open_store(settings.store_url))


# The demo package is imported only when a command uses it: the others, `gen-secret` above
# all, have no need to load it.


def demo_directory(option: str | None) -> Path:
    from ..demo.config import DEFAULT_DEMO_DIR

    return Path(option) if option else DEFAULT_DEMO_DIR


def demo_settings(directory: Path) -> S3AuthSettings:
    from ..demo import config

    return config.demo_settings(directory)


def run_async(function: Callable[[], Awaitable[T]]) -> T:
    result = anyio.run(function, backend="asyncio")  # obstore's async API needs asyncio
    settle()
    return result


def settle() -> None:
    """Call after the last use of a store, before the process may exit.

    obstore (0.12) finishes an async listing on its own runtime threads a moment after the
    awaiting loop is done; if the interpreter shuts down in that moment the process aborts
    (SIGABRT, ~40% of the time here). A short pause lets those threads finish.
    """
    time.sleep(OBSTORE_SETTLE_SECONDS)
