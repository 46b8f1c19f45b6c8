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

A store failing for a moment (a 503, a dropped connection) must not pass for one that lacks
a write, so a conditional write that fails is followed by a plain read of the probe object.
When that fails too, the store failed during the probe, which then says nothing of what the
store supports (`Probe.store_failed`), and the probes stop there. When the read shows the
write landed (its answer was lost), the write counts as made; a second try of a replace
would now be refused, its version no longer current. Otherwise the write is tried once
more, and a store that fails it again while answering plain reads lacks it.

The probes share one throw-away object under `keys.PROBES`, deleted at the end whatever
happened, and write nothing else. On a store that has both writes, `probe_store` costs
1 LIST, 2 GETs, 5 PUTs and 1 DELETE. Each conditional write that fails adds 1 GET, and
1 PUT unless the GET fails or shows the write landed. It returns data; showing it is the
caller's business.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..errors import S3AuthError
from . import keys
from .base import Store, StoreConflict
from .unavailable import RedactedStoreError, redacted_error
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
    store_failed: bool = False
    """A request failed unanswered (for a conditional write, a plain read after it too): the
    probe tells nothing of what the store supports, and may pass when run again."""


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
        if not probes[-1].store_failed:
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
        failure = f"cannot list or read: {_failed(exc)}"
        return Probe(REACHABLE, False, failure, store_failed=True), None
    try:
        etag = await store.create(key, {"probe": 1})
    except (S3AuthError, StoreConflict) as exc:
        return Probe(REACHABLE, False, f"cannot write: {exc}{_cause(exc)}", store_failed=True), None
    elapsed_ms = (time.perf_counter() - started) * 1000
    return Probe(REACHABLE, True, f"listed, read and wrote ({elapsed_ms:.0f} ms)"), etag


async def _probe_create_if_absent(store: Store, key: str) -> Probe:
    """A second create of the existing probe object must be refused."""
    try:
        await _write(store, CREATE_IF_ABSENT, key, {"probe": 2}, None)
    except StoreConflict:
        return Probe(CREATE_IF_ABSENT, True, "a second create of the same key was refused")
    except _Verdict as verdict:
        return verdict.probe
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
    except S3AuthError as exc:
        return _store_failed(CONDITIONAL_UPDATE, exc)
    if current is None:
        return _vanished(CONDITIONAL_UPDATE)
    try:
        fresh_etag = await _write(store, CONDITIONAL_UPDATE, key, {"probe": 3}, current.etag)
    except StoreConflict:
        return Probe(CONDITIONAL_UPDATE, False, "an update with the current ETag was refused")
    except _Verdict as verdict:
        return verdict.probe
    for etag in (stale_etag, never_issued(stale_etag)):
        # A store whose ETags do not follow the content may hand the old one out again;
        # that ETag is then current, and a write with it rightly succeeds.
        if etag == fresh_etag:
            continue
        try:
            await _write(store, CONDITIONAL_UPDATE, key, {"probe": 4}, etag)
        except StoreConflict:
            continue
        except _Verdict as verdict:
            return verdict.probe
        return Probe(
            CONDITIONAL_UPDATE,
            False,
            "an update with a stale ETag was accepted: the store ignores If-Match, so "
            "concurrent refreshes and profile changes could overwrite each other",
        )
    return Probe(CONDITIONAL_UPDATE, True, "an update with a stale ETag was refused")


class _Verdict(Exception):
    """A conditional write the store neither made nor refused: `probe` says whether it was
    not tested (the store failed) or is not supported."""

    def __init__(self, probe: Probe) -> None:
        super().__init__(probe.message)
        self.probe = probe


async def _write(store: Store, name: str, key: str, value: dict[str, int], etag: str | None) -> str:
    """`value` created under `key` if absent (`etag` None), else replaced if the object is
    at version `etag`; the new version, or StoreConflict when refused. When the store fails
    to answer, a plain read tells that apart from a refusal of the condition (see the module
    docstring); _Verdict when the write ends the probe unanswered."""
    try:
        return await _send(store, key, value, etag)
    except S3AuthError as exc:
        failed = exc
    try:
        seen = await store.get(key, dict)
    except S3AuthError as exc:
        then = ", and a plain read after it failed too"
        raise _Verdict(_store_failed(name, failed, then)) from exc
    if seen is None:
        raise _Verdict(_vanished(name))
    if seen.value == value:
        return seen.etag
    # Not landed, so the object is as it was: the same write, with the same version, asks
    # the same question again.
    try:
        return await _send(store, key, value, etag)
    except S3AuthError as exc:
        raise _Verdict(_unsupported(name, exc)) from exc


async def _send(store: Store, key: str, value: dict[str, int], etag: str | None) -> str:
    if etag is None:
        return await store.create(key, value)
    return await store.replace(key, value, etag)


async def _remove(store: Store, key: str) -> Probe | None:
    """None once the probe object is gone; a failed probe when it could not be deleted, so
    that what is left behind is reported rather than found later."""
    try:
        await store.delete(key)
    except S3AuthError as exc:
        failure = f"cannot delete {key}: {exc.detail}{_cause(exc)}"
        return Probe(DELETE, False, failure, store_failed=True)
    return None


def _unsupported(name: str, exc: S3AuthError) -> Probe:
    return Probe(name, False, f"not supported: {exc.detail}{_cause(exc)}")


def _store_failed(name: str, exc: S3AuthError, then: str = "") -> Probe:
    message = f"not tested, the store failed during it: {exc.detail}{_cause(exc)}{then}"
    return Probe(name, False, message, store_failed=True)


def _vanished(name: str) -> Probe:
    return Probe(name, False, "the probe object vanished")


def _cause(exc: BaseException) -> str:
    """The first line of the underlying error, which names what the store said (the
    wrapping StoreUnavailableError only names the request that failed), without what a URL
    in it holds of credentials (`unavailable.redacted_error`)."""
    cause = exc.__cause__
    if cause is None:
        return ""
    shown = redacted_error(cause)
    if shown.hint is not None:
        return f" ({shown.hint})"
    text = shown.said.strip().splitlines()
    return f" ({shown.kind}: {text[0][:200]})" if text else ""


def _failed(exc: S3AuthError) -> str:
    """The error's detail and its cause; without the detail's "try again later" where the
    cause says what to do instead."""
    detail = exc.detail
    cause = exc.__cause__
    if isinstance(cause, RedactedStoreError) and cause.hint is not None:
        detail = detail.split(";")[0]
    return f"{detail}{_cause(exc)}"
