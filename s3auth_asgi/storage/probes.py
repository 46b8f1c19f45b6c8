"""Probes of a store for what this package's correctness rests on (`s3auth check`).

Every write that must not be lost or doubled is one of two conditional writes:

- conditional create, `If-None-Match: *`: written only if the key is absent. A username or
  an email is claimed by creating its index object, so on a store that overwrites instead,
  two people could register the same name;
- conditional replace, `If-Match: <etag>`: written only if the object still has the ETag it
  was read with (on GCS, `x-goog-if-generation-match` with its generation; the version
  token holds whichever the backend uses, see `versions`). Refresh-token rotation and
  profile changes are read-modify-write cycles; on a store that accepts a stale version,
  two at once overwrite each other without an error.

Some S3-compatible stores reject these headers, which is loud; others accept and ignore
them, which stays silent until two writers race. So a probe does not ask whether a header
is supported: it makes the write that must be refused and checks that it was.

The probes share one throw-away object under `keys.PROBES`, deleted at the end whatever
happened, and write nothing else. On a store that has both writes, `probe_store` costs
1 LIST, 2 GETs, 5 PUTs and 1 DELETE. It returns data; showing it is the caller's business.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..errors import S3AuthError
from . import keys
from .base import Store, StoreConflict
from .versions import never_issued

REACHABLE = "reachable"
CREATE_IF_ABSENT = "create-if-absent (If-None-Match: *)"
CONDITIONAL_UPDATE = "conditional update (If-Match)"
DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Probe:
    """The outcome of one probe; `message` says what was seen, in a sentence for people."""

    name: str
    passed: bool
    message: str


async def probe_store(store: Store) -> list[Probe]:
    """Reachability, then each conditional write. When the store cannot be listed, read or
    written at all, that one failed probe is the whole answer: the conditional writes could
    not even be tried."""
    key = keys.probe()
    reachable, etag = await _probe_reachable(store, key)
    if etag is None:
        return [reachable]
    probes = [reachable]
    try:
        probes.append(await _probe_create_if_absent(store, key))
        probes.append(await _probe_if_match(store, key, etag))
    finally:
        removal = await _remove(store, key)
        if removal is not None:
            probes.append(removal)
    return probes


async def _probe_reachable(store: Store, key: str) -> tuple[Probe, str | None]:
    """The probe, and the version token of the probe object when it could be written."""
    started = time.perf_counter()
    try:
        await store.list_page(keys.USERS, None, 1)
        await store.get(key, dict)
    except S3AuthError as exc:
        return Probe(REACHABLE, False, f"cannot list or read: {exc.detail}{_cause(exc)}"), None
    try:
        etag = await store.create(key, {"probe": 1})
    except (S3AuthError, StoreConflict) as exc:
        return Probe(REACHABLE, False, f"cannot write: {exc}{_cause(exc)}"), None
    elapsed_ms = (time.perf_counter() - started) * 1000
    return Probe(REACHABLE, True, f"listed, read and wrote ({elapsed_ms:.0f} ms)"), etag


async def _probe_create_if_absent(store: Store, key: str) -> Probe:
    """A second create of the existing probe object must be refused."""
    try:
        await store.create(key, {"probe": 2})
    except StoreConflict:
        return Probe(CREATE_IF_ABSENT, True, "a second create of the same key was refused")
    except S3AuthError as exc:
        return _unsupported(CREATE_IF_ABSENT, exc)
    return Probe(
        CREATE_IF_ABSENT,
        False,
        "the store overwrote an existing object: it ignores If-None-Match, so two people "
        "could register the same name",
    )


async def _probe_if_match(store: Store, key: str, stale_etag: str) -> Probe:
    """A replace with the current version must succeed, and one with a stale version must
    not: one the store issued for an earlier write, and one it never issued (of the form its
    own take, so that on GCS it is a generation), since a store that ignores conditions on
    versions it does not know must be caught too."""
    try:
        current = await store.get(key, dict)
        if current is None:
            return Probe(CONDITIONAL_UPDATE, False, "the probe object vanished")
        fresh_etag = await store.replace(key, {"probe": 3}, current.etag)
    except StoreConflict:
        return Probe(CONDITIONAL_UPDATE, False, "an update with the current ETag was refused")
    except S3AuthError as exc:
        return _unsupported(CONDITIONAL_UPDATE, exc)
    for etag in (stale_etag, never_issued(stale_etag)):
        # A store whose ETags do not follow the content may hand the old one out again;
        # that ETag is then current, and a write with it rightly succeeds.
        if etag == fresh_etag:
            continue
        try:
            await store.replace(key, {"probe": 4}, etag)
        except StoreConflict:
            continue
        except S3AuthError as exc:
            return _unsupported(CONDITIONAL_UPDATE, exc)
        return Probe(
            CONDITIONAL_UPDATE,
            False,
            "an update with a stale ETag was accepted: the store ignores If-Match, so "
            "concurrent refreshes and profile changes could overwrite each other",
        )
    return Probe(CONDITIONAL_UPDATE, True, "an update with a stale ETag was refused")


async def _remove(store: Store, key: str) -> Probe | None:
    """None once the probe object is gone; a failed probe when it could not be deleted, so
    that what is left behind is reported rather than found later."""
    try:
        await store.delete(key)
    except S3AuthError as exc:
        return Probe(DELETE, False, f"cannot delete {key}: {exc.detail}")
    return None


def _unsupported(name: str, exc: S3AuthError) -> Probe:
    return Probe(name, False, f"not supported: {exc.detail}{_cause(exc)}")


def _cause(exc: BaseException) -> str:
    """The first line of the underlying error, which names what the store said (the
    wrapping StoreUnavailableError only names the request that failed)."""
    cause = exc.__cause__
    if cause is None:
        return ""
    text = str(cause).strip().splitlines()
    return f" ({type(cause).__name__}: {text[0][:200]})" if text else ""
