"""`s3auth check`: the configuration, then the store's capabilities, one line each on
stdout; the exit code says which class of failure stopped it (see `failures`). Whatever the
probes write is removed afterwards, on a `file://` store the directories too."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import ConfigurationError, StoreUnavailableError
from ..storage import keys
from ..storage.local_listing import CONTROL_DIR
from ..storage.probes import REACHABLE, Probe, probe_store
from .context import Context, run_async
from .failures import CONFIGURATION, OK, REFUSED, STORE_HINT, UNAVAILABLE, unavailable_message


def run_check(ctx: Context) -> int:
    try:
        settings = ctx.settings()
    except ConfigurationError as exc:
        print(report_line(Probe("configuration", False, str(exc))), file=ctx.out)
        return CONFIGURATION
    summary = (
        f"store {settings.store_url}, {settings.algorithm}, access tokens "
        f"{settings.access_token_expire_minutes} min, sessions "
        f"{settings.refresh_token_expire_days} d"
    )
    print(report_line(Probe("configuration", True, summary)), file=ctx.out)
    footprint = LocalFootprint.before(settings.store_url)
    try:
        try:
            store = ctx.store(settings)
        except ConfigurationError as exc:
            print(report_line(Probe("store", False, str(exc))), file=ctx.out)
            return CONFIGURATION
        except StoreUnavailableError as exc:
            message = unavailable_message(exc, settings.store_url)
            print(report_line(Probe("store", False, message)), file=ctx.out)
            return UNAVAILABLE
        probes = run_async(lambda: probe_store(store))
    finally:
        if footprint is not None:
            footprint.remove_new()
    for probe in probes:
        print(report_line(probe), file=ctx.out)
    if any(probe.name == REACHABLE and not probe.passed for probe in probes):
        print(f"The store could not be reached: {STORE_HINT}.", file=ctx.out)
        return UNAVAILABLE
    failed = sum(not probe.passed for probe in probes)
    if failed:
        print(f"{failed} problem(s): this store cannot hold s3auth's state safely.", file=ctx.out)
        return REFUSED
    print("All checks passed.", file=ctx.out)
    return OK


def report_line(probe: Probe) -> str:
    return f"{'[ok]  ' if probe.passed else '[FAIL]'} {probe.name}: {probe.message}"


@dataclass(frozen=True)
class LocalFootprint:
    """What of a `file://` store existed before `check` opened it. The probe object is
    deleted by the probes, but a directory store keeps the directory it was in; and opening
    a store creates its directory and a control directory (lock files) when missing."""

    root: Path
    had_root: bool
    had_control: bool

    @classmethod
    def before(cls, url: str) -> LocalFootprint | None:
        if urlsplit(url).scheme != "file":
            return None
        from ..storage.store import local_path

        try:
            root = local_path(url).resolve()
        except (OSError, RuntimeError):
            return None
        return cls(root, root.is_dir(), (root / CONTROL_DIR).is_dir())

    def remove_new(self) -> None:
        """Remove the probe directory, and what `check` created of the control directory and
        the store directory. Only empty directories are removed, besides the control files
        of a control directory made by this run: data written meanwhile stays."""
        probes = self.root / keys.PROBES.rstrip("/")
        with contextlib.suppress(OSError):
            probes.rmdir()
        if not self.had_control:
            control = self.root / CONTROL_DIR
            for directory, _, files in os.walk(control, topdown=False):
                with contextlib.suppress(OSError):
                    for name in files:
                        os.unlink(os.path.join(directory, name))
                    os.rmdir(directory)
        if not self.had_root:
            with contextlib.suppress(OSError):
                self.root.rmdir()
