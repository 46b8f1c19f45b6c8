"""What every command runs with: its arguments, its output streams, the settings and store
they select, and a way to run the store's async API to completion."""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, TypeVar
from urllib.parse import urlsplit

import anyio

from ..errors import ConfigurationError
from ..profile_fields import ProfileFields
from ..service import S3AuthService
from ..settings import S3AuthSettings, env_name
from ..storage.handoffs import HANDOFFS
from ..types import Clock
from .written_revocations import check_quietly, check_written

if TYPE_CHECKING:
    from ..storage import ObjectStore

T = TypeVar("T")
OpenStore = Callable[[str], "ObjectStore"]
CLOCK: Clock = time.time
"""The clock of the services commands run (`Context.service`); tests move it."""


@dataclass
class Context:
    args: argparse.Namespace
    out: TextIO
    err: TextIO
    open_store: OpenStore | None = None
    """Tests inject a store here; by default `ObjectStore.from_url`."""
    store_url: str | None = None
    """The URL of the store the command opened, for messages about it."""
    services: list[S3AuthService] = field(default_factory=list)
    """The services made for the command, whose revocations `run` checks."""

    @property
    def demo(self) -> bool:
        """Whether the command runs on the demo's state: `--demo`, or either option that
        says where the demo's state is (never the S3AUTH_* store: the operator meant the
        demo)."""
        return bool(self.args.demo or self.args.demo_dir or self.args.demo_store)

    def settings(self) -> S3AuthSettings:
        if self.demo:
            return demo_settings(self.args.demo_dir, self.args.demo_store)
        return S3AuthSettings.from_env()

    def store(self, settings: S3AuthSettings, *, create: bool = False) -> ObjectStore:
        """The store at `settings.store_url`. A `file://` one whose parent directory is
        missing is created only with `--create`, S3AUTH_STORE_CREATE, or for the demo's
        own directory (`--demo`, or `create` from the demo command); otherwise that is a
        ConfigurationError."""
        self.store_url = settings.store_url
        if self.open_store is not None:
            return self.open_store(settings.store_url)
        if is_memory(settings.store_url):
            # A store that ends with the command would report a user created, or a store
            # checked, for nothing.
            raise ConfigurationError(
                f"{env_name('store_url')} is a memory:// store (also what an unset "
                f"{env_name('store_url')} means), which would vanish when the command exits: "
                "set it to the store your app uses, or use --demo"
            )
        from ..storage import ObjectStore

        in_demo_directory = self.demo and not self.args.demo_store
        create = (
            create
            or in_demo_directory
            or getattr(self.args, "create", False)
            or settings.store_create
        )
        return ObjectStore.from_url(settings.store_url, create_parents=create)

    def service(
        self,
        settings: S3AuthSettings | None = None,
        *,
        clock: Clock | None = None,
        profile_fields: ProfileFields | None = None,
    ) -> S3AuthService:
        """A service on `settings` (by default those the command line selects), with the
        application's `profile_fields` where a command was given them."""
        settings = settings or self.settings()
        store = self.store(settings)
        service = S3AuthService(
            settings, store=store, clock=clock or CLOCK, profile_fields=profile_fields
        )
        self.services.append(service)
        return service

    def run(self, function: Callable[[], Awaitable[T]]) -> T:
        """`run_async(function)`, then, before the command exits, the check of the
        revocations its services wrote (`written_revocations`), also after a failure."""

        async def checked() -> T:
            try:
                result = await function()
            except Exception:
                await check_quietly(self.services, self.err)
                raise
            await check_written(self.services, self.err, self.store_url)
            return result

        return run_async(checked)


def is_memory(url: str) -> bool:
    """Whether `url` opens an in-process store: its scheme parsed as `ObjectStore.from_url`
    parses it, in any case (`MEMORY://` too)."""
    try:
        return urlsplit(url).scheme == "memory"
    except ValueError:  # not a URL: opening it says so
        return False


# The demo package is imported only when a command uses it: the others, `gen-secret` above
# all, have no need to load it.


def demo_directory(option: str | None) -> Path:
    from ..demo.config import DEFAULT_DEMO_DIR

    return Path(option) if option else DEFAULT_DEMO_DIR


def demo_settings(option: str | None, store_url: str | None) -> S3AuthSettings:
    """The demo's settings, in the directory `option` names, else in its default one."""
    from ..demo import config

    return config.demo_settings(Path(option) if option else None, store_url=store_url)


def run_async(function: Callable[[], Awaitable[T]]) -> T:
    """`function()` to completion on asyncio (obstore's async API needs it); then, even when
    it failed, wait until obstore's threads have handed every answer back
    (`storage.handoffs`), so that the process never exits under one of them."""
    try:
        return anyio.run(function, backend="asyncio")
    finally:
        HANDOFFS.settle()


def settle() -> None:
    """Wait for obstore's hand-offs after the last use of a store (`storage.handoffs`)."""
    HANDOFFS.settle()
