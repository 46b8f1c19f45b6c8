"""The verdict of the store probes (`probes`), kept in the store so that they run once per
store rather than at every start.

A run of the probes in which every probe passed is written to `keys.STORE_VERDICT`, by
`s3auth check` or by the service's own check (`store_check`), with a create: two processes
recording it at once write the same finding, and the one refused has lost nothing. An
object there that is no verdict (corrupt, or written by a release that probed less) is
replaced once the probes pass, on the condition that it is still the object read. It names
the conditional writes that were seen to work; a start that finds them all there costs
that one GET. A run that found a write missing, or that the store failed during, is never
written: the first is refused where it is found, the second says nothing of the store.

Only stores whose conditional writes are the remote service's need it: memory:// keeps its
objects in the process, and file:// makes its own (a lock per key and a digest of the
bytes, `local`), so neither is probed nor given a verdict.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class FoundVerdict:
    """What a read of the verdict found: whether it holds (names every required write),
    and, when an object is there that is no verdict, the version a replace is conditioned
    on."""

    holds: bool
    unusable: str | None = None


async def read_verdict(store: Store) -> FoundVerdict:
    """Read the store's verdict (1 GET). An object there that cannot be read as one (not
    JSON, not a verdict's shape, or naming fewer writes than `REQUIRED`) does not hold: the
    store is probed again, and the verdict of probes that pass replaces it
    (`record_verdict`), or a create would be refused at every start. StoreUnavailableError
    when the store cannot be read."""
    try:
        found = await store.get(keys.STORE_VERDICT, dict)
    except CorruptObjectError as exc:
        return FoundVerdict(False, exc.etag)
    if found is None:
        return FoundVerdict(False)
    passed = found.value.get("passed")
    if isinstance(passed, list) and all(name in passed for name in REQUIRED):
        return FoundVerdict(True)
    return FoundVerdict(False, found.etag)


async def record_verdict(store: Store, by: str, now: float, unusable: str | None = None) -> str:
    """Write the verdict of probes that all passed (1 PUT): a create, or a replace of the
    unusable object at version `unusable` that a read found. What became of it, for the
    record: `written`, `replaced`, `already there` (another process came first), or why it
    could not be written, which costs only a probe at the next start.

    A create refused by an object that is no verdict (`s3auth check` writes without reading
    first) costs 1 GET more and is replaced in the same way. A replace is conditioned on the
    version read, so that a verdict another process wrote meanwhile is kept."""
    verdict = {"passed": list(REQUIRED), "checked_ms": int(now * 1000), "by": by}
    try:
        if unusable is None:
            try:
                await store.create(keys.STORE_VERDICT, verdict)
                return "written"
            except StoreConflict:
                unusable = (await read_verdict(store)).unusable
                if unusable is None:
                    return "already there"
        await store.replace(keys.STORE_VERDICT, verdict, unusable)
    except StoreConflict:
        return "already there"
    except S3AuthError as exc:
        logger.warning("the store's verdict could not be written: %r", exc)
        return f"not written: {exc.detail}"
    logger.warning(
        "the object at %s was no verdict of the store's conditional writes: replaced it with "
        "this one",
        keys.STORE_VERDICT,
    )
    return "replaced"
