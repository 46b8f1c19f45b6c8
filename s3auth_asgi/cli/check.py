"""`s3auth check`: the configuration, then the store's capabilities, one line each on
stdout, and a `[warn]` line for what the app would take but warn of, which fails nothing;
the exit code says which class of failure stopped it (see `failures`). Whatever the
probes write is removed afterwards, on a `file://` store the directories too; a store whose
conditional writes are the remote service's keeps the verdict of probes that all passed
(`storage.verdicts`), which the service's start reads instead of probing again."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..auth_limits import DEFAULT_AUTH_LIMITS
from ..errors import ConfigurationError, StoreUnavailableError
from ..keys.ring import KeyRing
from ..ratelimit.policy import misspelt_names, parse_rate_limits
from ..settings import S3AuthSettings
from ..settings_warnings import settings_warnings
from ..shown_urls import shown_url
from ..storage import keys
from ..storage.base import Store
from ..storage.local_listing import CONTROL_DIR
from ..storage.probes import REACHABLE, Probe, probe_store
from ..storage.verdicts import needs_verdict, record_verdict
from ..types import Clock
from .context import Context, run_async
from .failures import (
    CONFIGURATION,
    OK,
    REFUSED,
    STORE_HINT,
    UNAVAILABLE,
    unavailable_message,
)

CLOCK: Clock = time.time


def run_check(ctx: Context) -> int:
    try:
        settings = ctx.settings()
    except ConfigurationError as exc:
        print(report_line(Probe("configuration", False, str(exc))), file=ctx.out)
        return CONFIGURATION
    summary = (
        f"store {shown_url(settings.store_url)}, {settings.algorithm}, access tokens "
        f"{settings.access_token_expire_minutes} min, sessions "
        f"{settings.refresh_token_expire_days} d"
    )
    print(report_line(Probe("configuration", True, summary)), file=ctx.out)
    # Taken by the app, which only logs them: the command's quiet logging would hide them.
    warnings = configuration_warnings(settings)
    for warning in warnings:
        print(f"[warn] configuration: {warning}", file=ctx.out)
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
        code = check_store(ctx, settings, store)
    finally:
        # Only once nothing reads the store any more: the keys are read from the directory
        # and its control directory, which a store no service has opened yet had not.
        if footprint is not None:
            footprint.remove_new()
    if code == OK:
        if warnings:
            count = f"{len(warnings)} warning{'s' if len(warnings) > 1 else ''}"
            print(f"All checks passed, with {count} above.", file=ctx.out)
        else:
            print("All checks passed.", file=ctx.out)
    return code


def check_store(ctx: Context, settings: S3AuthSettings, store: Store) -> int:
    """The store's probes, its verdict, and its signing keys, one line each; the exit code."""
    probes = run_async(lambda: probe_store(store))
    for probe in probes:
        print(report_line(probe), file=ctx.out)
    if any(probe.name == REACHABLE and not probe.passed for probe in probes):
        print(f"The store could not be reached: {STORE_HINT}.", file=ctx.out)
        return UNAVAILABLE
    # What the store was seen to lack outweighs what could not be tested: a second run would
    # find it again.
    failed = sum(not probe.passed and not probe.store_failed for probe in probes)
    if failed:
        print(f"{failed} problem(s): this store cannot hold s3auth's state safely.", file=ctx.out)
        return REFUSED
    if any(probe.store_failed for probe in probes):
        print(
            f"The store failed during the check: {STORE_HINT}; then run `s3auth check` again.",
            file=ctx.out,
        )
        return UNAVAILABLE
    if needs_verdict(settings.store_url):
        outcome = run_async(lambda: record_verdict(store, "s3auth check", CLOCK()))
        print(verdict_line(outcome), file=ctx.out)
    keys_probe = run_async(lambda: probe_keys(settings, store))
    print(report_line(keys_probe), file=ctx.out)
    return OK if keys_probe.passed else CONFIGURATION


def configuration_warnings(settings: S3AuthSettings) -> list[str]:
    """What the auth app warns of when it starts with `settings`, not refusing it: an
    S3AUTH_RATE_LIMITS name that looks like one of its limits misspelt, and a verified
    address required where no mail is sent (as far as the settings say: a mailer may be
    given in code), mailed links that can expire before the mail budgets let another go
    (the auth app's default limits, S3AUTH_RATE_LIMITS on top), an argon2 cost below
    OWASP's, and a secret key with a comma, which only the JSON form of the fallbacks keeps
    whole."""
    configured = parse_rate_limits(settings.rate_limits)
    misspelt = misspelt_names(configured, DEFAULT_AUTH_LIMITS)
    limits = {**DEFAULT_AUTH_LIMITS, **configured}
    return [*misspelt, *settings_warnings(settings, limits)]


async def probe_keys(settings: S3AuthSettings, store: Store) -> Probe:
    """The signing keys load: the key given in the environment is usable, or the keys kept
    in the store open (sealed ones with S3AUTH_KEY_ENCRYPTION_KEY). Writes nothing: a store
    without keys yet gets its first at the service's start."""
    try:
        ring = KeyRing(settings, store, clock=CLOCK)
        if ring.stored is None:
            keys = ring.key_set()
        else:
            found = await ring.stored.read()
            if found is None:
                return Probe("signing keys", True, "none yet: the service makes the first")
            keys = ring.stored.key_set(found[0])
        signing = keys.signing_key(CLOCK())
    except ConfigurationError as exc:
        return Probe("signing keys", False, str(exc))
    return Probe(
        "signing keys",
        True,
        f"{len(keys)} from {ring.source}, {signing.algorithm} {signing.kid} signs",
    )


def verdict_line(outcome: str) -> str:
    """What became of the verdict the passing probes leave in the store, which spares the
    service's start the probes (`store_check`); one not written fails nothing."""
    if outcome == "written":
        return f"[ok]   verdict: written to {keys.STORE_VERDICT}: services start without probing"
    if outcome == "replaced":
        return (
            f"[ok]   verdict: replaced the object in {keys.STORE_VERDICT}, which was none: "
            "services start without probing"
        )
    if outcome == "already there":
        return f"[ok]   verdict: already in {keys.STORE_VERDICT}"
    return f"[warn] verdict: {outcome}: the service's first start probes the store itself"


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
        from ..storage.urls import local_path

        try:
            root = local_path(url).resolve()
        except (ConfigurationError, OSError, RuntimeError):
            return None  # opening the store says what is wrong with it
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
