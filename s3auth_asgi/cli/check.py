"""`s3auth check`: the configuration, then the store's capabilities, one line each."""

from __future__ import annotations

from ..errors import ConfigurationError
from ..storage.probes import Probe, probe_store
from .context import FAILED, OK, Context, run_async


def run_check(ctx: Context) -> int:
    try:
        settings = ctx.settings()
    except ConfigurationError as exc:
        print(report_line(Probe("configuration", False, str(exc))), file=ctx.out)
        return FAILED
    summary = (
        f"store {settings.store_url}, {settings.algorithm}, access tokens "
        f"{settings.access_token_expire_minutes} min, sessions "
        f"{settings.refresh_token_expire_days} d"
    )
    print(report_line(Probe("configuration", True, summary)), file=ctx.out)
    try:
        store = ctx.open_store(settings.store_url)
    except ConfigurationError as exc:
        print(report_line(Probe("store", False, str(exc))), file=ctx.out)
        return FAILED
    probes = run_async(lambda: probe_store(store))
    for probe in probes:
        print(report_line(probe), file=ctx.out)
    failed = sum(not probe.passed for probe in probes)
    if failed:
        print(f"{failed} problem(s): this store cannot hold s3auth's state safely.", file=ctx.out)
        return FAILED
    print("All checks passed.", file=ctx.out)
    return OK


def report_line(probe: Probe) -> str:
    return f"{'[ok]  ' if probe.passed else '[FAIL]'} {probe.name}: {probe.message}"
