"""The verdict of the store probes (`probes`), kept in the store so that they run once per
store rather than at every start.

A run of the probes in which every probe passed is written to `keys.STORE_VERDICT`, by
`s3auth check` or by the service's own check (`store_check`), with a create: two processes
recording it at once write the same finding, and the one refused has lost nothing. It names
the conditional writes that were seen to work; a start that finds them all there costs
that one GET. A run that found a write missing, or that the store failed during, is never
written: the first is refused where it is found, the second says nothing of the store.

Only stores whose conditional writes are the remote service's need it: memory:// keeps its
objects in the process, and file:// makes its own (a lock per key and a digest of the
bytes, `local`), so neither is probed nor given a verdict.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from ..errors import S3AuthError
from . import keys
from .base import CorruptObjectError, Store, StoreConflict
from .probes import CONDITIONAL_UPDATE, CREATE_IF_ABSENT, Probe

logger = logging.getLogger("s3auth_asgi.storage")

REQUIRED = (CREATE_IF_ABSENT, CONDITIONAL_UPDATE)
"""What a verdict must name: a verdict written by a release that probed less is no verdict
for one that probes more, and the store is probed again."""

OWN_SEMANTICS = ("memory", "file")


def needs_verdict(store_url: str) -> bool:
    """Whether a store at `store_url` relies on the remote service's conditional writes."""
    return urlsplit(store_url).scheme not in OWN_SEMANTICS


def all_passed(probes: list[Probe]) -> bool:
    return all(probe.passed for probe in probes)


def lacking(probes: list[Probe]) -> list[Probe]:
    """The probes that found the store lacking a write: failed, and not for the store
    failing meanwhile (`Probe.store_failed`)."""
    return [probe for probe in probes if not probe.passed and not probe.store_failed]


async def read_verdict(store: Store) -> bool:
    """Whether the store holds a verdict naming every required write (1 GET). One that
    cannot be read as one is not: the store is probed again, and left as it is.
    StoreUnavailableError when the store cannot be read."""
    try:
        found = await store.get(keys.STORE_VERDICT, dict)
    except CorruptObjectError:
        return False
    if found is None:
        return False
    passed = found.value.get("passed")
    return isinstance(passed, list) and all(name in passed for name in REQUIRED)


async def record_verdict(store: Store, by: str, now: float) -> str:
    """Write the verdict of probes that all passed (1 PUT); what became of it, for the
    record: `written`, `already there` (another process came first), or why it could not be
    written, which costs only a probe at the next start."""
    verdict = {"passed": list(REQUIRED), "checked_ms": int(now * 1000), "by": by}
    try:
        await store.create(keys.STORE_VERDICT, verdict)
    except StoreConflict:
        return "already there"
    except S3AuthError as exc:
        logger.warning("the store's verdict could not be written: %r", exc)
        return f"not written: {exc.detail}"
    return "written"
