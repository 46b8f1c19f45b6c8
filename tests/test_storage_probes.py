"""The store probes behind `s3auth check`, on memory://, file:// and moto's S3, and on those
same stores altered to lack what the package relies on: each probe's verdict, the exact
requests made, and nothing left under the probe prefix afterwards."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import obstore as obs
import pytest
from support import StoreWrapper

from s3auth_asgi import StoreUnavailableError
from s3auth_asgi.storage import ObjectStore, Probe, StoreConflict, encode, keys, probe_store
from s3auth_asgi.storage.probes import (
    CONDITIONAL_UPDATE,
    CREATE_IF_ABSENT,
    DELETE,
    REACHABLE,
)

pytestmark = pytest.mark.anyio
R = TypeVar("R")

PROBES = [REACHABLE, CREATE_IF_ABSENT, CONDITIONAL_UPDATE]
EVERY_REQUEST = {"list": 1, "get": 2, "put": 5, "delete": 1}
"""What the probes of a store with both conditional writes cost."""
memory_and_file = pytest.mark.parametrize("store_url", ["memory", "file"], indirect=True)
REQUEST_KINDS = {"get": "get", "create": "put", "replace": "put", "list_page": "list"}
"""What `store.requests` counts a store method's request as (a delete otherwise)."""


class UnconditionalStore(ObjectStore):
    """An S3-compatible store of the kind that ignores If-None-Match and If-Match: every
    write simply overwrites."""

    async def create(self, key: str, value: Any) -> str:
        self._count("put")
        result = await obs.put_async(self._inner, key, encode(value))
        return result["e_tag"] or ""

    async def replace(self, key: str, value: Any, etag: str) -> str:
        return await self.create(key, value)


class UnreachableStore(ObjectStore):
    """Lists (its listing is of nothing), but every read fails as a refused connection."""

    async def get(self, key: str, type_: Any) -> Any:
        self._count("get")
        raise StoreUnavailableError("GET failed: ConnectError") from ConnectionRefusedError(
            "connection refused by 192.0.2.1:9000"
        )


class ReadOnlyStore(ObjectStore):
    async def create(self, key: str, value: Any) -> str:
        self._count("put")
        raise StoreUnavailableError(f"PUT {key} failed: ClientError") from PermissionError(
            "403 AccessDenied"
        )


class NoIfMatchStore(ObjectStore):
    """Creates conditionally but answers every If-Match with 501 Not Implemented."""

    async def replace(self, key: str, value: Any, etag: str) -> str:
        self._count("put")
        raise StoreUnavailableError(f"PUT {key} failed: NotImplemented") from RuntimeError(
            "501 Not Implemented: If-Match\nheader not supported"
        )


class RefusesEveryIfMatchStore(ObjectStore):
    async def replace(self, key: str, value: Any, etag: str) -> str:
        self._count("put")
        raise StoreConflict(key)


class UndeletableStore(ObjectStore):
    async def delete_many(self, keys: Any) -> int:
        self._count("delete")
        raise StoreUnavailableError("DELETE failed: ClientError")


class FailsDuringProbe(StoreWrapper):
    """The `nth` request `name` (get, create, replace) fails as a 503 would: before it
    reached the store, or `after` it did (whatever the store answered is lost). With `down`,
    every request from then on fails too, as from a store that has gone down. A failed
    request is counted as a request, as the store counts one."""

    def __init__(
        self, inner: ObjectStore, name: str, nth: int, *, after: bool = False, down: bool = False
    ) -> None:
        super().__init__(inner)
        self.name, self.left, self.after, self.down = name, nth, after, down
        self.is_down = False

    async def call(self, name: str, run: Callable[[], Awaitable[R]]) -> R:
        if not self.is_down:
            if name != self.name:
                return await run()
            self.left -= 1
            if self.left != 0:
                return await run()
            self.is_down = self.down
            if self.after:
                with contextlib.suppress(StoreConflict):
                    await run()
                raise unavailable(name)
        self.requests[REQUEST_KINDS.get(name, "delete")] += 1
        raise unavailable(name)


def unavailable(name: str) -> StoreUnavailableError:
    error = StoreUnavailableError(f"{name} failed: ServiceUnavailable")
    error.__cause__ = RuntimeError("503 Service Unavailable")
    return error


async def leftovers(store: ObjectStore) -> list[str]:
    return [info.key async for info in store.list(keys.PROBES)]


def verdicts(probes: list[Probe]) -> list[tuple[str, bool]]:
    return [(probe.name, probe.passed) for probe in probes]


async def test_a_store_with_both_conditional_writes_passes(store: ObjectStore) -> None:
    await store.create("users/existing.json", {"kept": True})
    store.reset_counts()
    probes = await probe_store(store)
    assert verdicts(probes) == [(name, True) for name in PROBES]
    assert probes[0].message.startswith("listed, read and wrote (")
    assert probes[1].message == "a second create of the same key was refused"
    assert probes[2].message == "an update with a stale ETag was refused"
    # 1 list and 1 get to read, then 2 creates, 1 update with the current ETag, 2 with stale
    # ones (one the store issued, one it never did), 1 get for the current ETag, 1 delete.
    assert dict(store.requests) == EVERY_REQUEST
    assert await leftovers(store) == []
    kept = await store.get("users/existing.json", dict)
    assert kept is not None and kept.value == {"kept": True}


async def test_a_store_that_ignores_conditional_headers_fails_both(store_url: str) -> None:
    store = UnconditionalStore.from_url(store_url)
    probes = await probe_store(store)
    assert verdicts(probes) == [(REACHABLE, True), (CREATE_IF_ABSENT, False),
                                (CONDITIONAL_UPDATE, False)]  # fmt: skip
    assert "ignores If-None-Match" in probes[1].message
    assert "ignores If-Match" in probes[2].message
    # The first stale ETag is accepted, so the second is never tried.
    assert dict(store.requests) == {"list": 1, "get": 2, "put": 4, "delete": 1}
    assert await leftovers(store) == []


async def test_an_unreachable_store_is_one_failure_and_no_write() -> None:
    store = UnreachableStore.from_url("memory://")
    probes = await probe_store(store)
    assert probes == [
        Probe(
            REACHABLE,
            False,
            "cannot list or read: GET failed: ConnectError "
            "(ConnectionRefusedError: connection refused by 192.0.2.1:9000)",
            store_failed=True,
        )
    ]
    assert dict(store.requests) == {"list": 1, "get": 1}


async def test_a_read_only_store_stops_at_the_first_write() -> None:
    store = ReadOnlyStore.from_url("memory://")
    probes = await probe_store(store)
    assert verdicts(probes) == [(REACHABLE, False)]
    assert probes[0].message.startswith("cannot write: PUT _s3auth-check/")
    assert probes[0].message.endswith("failed: ClientError (PermissionError: 403 AccessDenied)")
    assert dict(store.requests) == {"list": 1, "get": 1, "put": 1}
    assert await leftovers(store) == []


async def test_a_store_without_if_match_says_so_and_cleans_up(store_url: str) -> None:
    store = NoIfMatchStore.from_url(store_url)
    probes = await probe_store(store)
    assert verdicts(probes) == [(REACHABLE, True), (CREATE_IF_ABSENT, True),
                                (CONDITIONAL_UPDATE, False)]  # fmt: skip
    assert re.fullmatch(
        r"not supported: PUT _s3auth-check/[0-9a-f]{32} failed: NotImplemented "
        r"\(RuntimeError: 501 Not Implemented: If-Match\)",  # the cause's first line only
        probes[2].message,
    ), probes[2].message
    assert not probes[2].store_failed
    # The refused update costs a plain read, which succeeds, and the update again.
    assert dict(store.requests) == {"list": 1, "get": 3, "put": 4, "delete": 1}
    assert await leftovers(store) == []


async def test_a_store_that_refuses_the_current_etag_fails() -> None:
    store = RefusesEveryIfMatchStore.from_url("memory://")
    probes = await probe_store(store)
    assert probes[2] == Probe(
        CONDITIONAL_UPDATE, False, "an update with the current ETag was refused"
    )
    assert dict(store.requests) == {"list": 1, "get": 2, "put": 3, "delete": 1}
    assert await leftovers(store) == []


async def test_a_probe_object_that_cannot_be_deleted_is_reported() -> None:
    store = UndeletableStore.from_url("memory://")
    probes = await probe_store(store)
    assert verdicts(probes) == [(name, True) for name in PROBES] + [(DELETE, False)]
    [left] = await leftovers(store)
    assert probes[3].message == f"cannot delete {left}: DELETE failed: ClientError"
    assert dict(store.requests)["delete"] == 1


# A store that fails for a moment is not a store without conditional writes --------------

# Which request fails: the probes' second create (the first is the reachability's), their
# first replace (with the current version) and the two with stale versions.
CONDITIONAL_REQUESTS = pytest.mark.parametrize(
    ("name", "nth"),
    [("create", 2), ("replace", 1), ("replace", 2), ("replace", 3)],
    ids=["if-none-match", "if-match current", "if-match stale", "if-match never issued"],
)


@memory_and_file
@CONDITIONAL_REQUESTS
@pytest.mark.parametrize("after", [False, True], ids=["not sent", "answer lost"])
async def test_a_conditional_write_that_fails_once_is_tried_again(
    store_url: str, name: str, nth: int, after: bool
) -> None:
    store = FailsDuringProbe(ObjectStore.from_url(store_url), name, nth, after=after)
    probes = await probe_store(store)
    assert verdicts(probes) == [(probe, True) for probe in PROBES], probes
    assert probes[2].message == "an update with a stale ETag was refused"
    # The failure costs a plain read of the probe object, which shows whether the write
    # landed; then the write again, unless it had (its answer was lost).
    landed = name == "replace" and nth == 1 and after
    again = {"get": 1, "put": 0 if landed else 1}
    assert dict(store.requests) == {
        kind: count + again.get(kind, 0) for kind, count in EVERY_REQUEST.items()
    }
    assert await leftovers(store.inner) == []


# Each failing request, and what the probes cost until then: the reachability's (1 list,
# 1 get, 1 put), those before, the failed one, the plain read after it (failed too) and the
# delete (failed too).
GOES_DOWN = pytest.mark.parametrize(
    ("name", "nth", "failed", "requests"),
    [
        ("create", 2, CREATE_IF_ABSENT, {"list": 1, "get": 2, "put": 2, "delete": 1}),
        ("replace", 1, CONDITIONAL_UPDATE, {"list": 1, "get": 3, "put": 3, "delete": 1}),
        ("replace", 2, CONDITIONAL_UPDATE, {"list": 1, "get": 3, "put": 4, "delete": 1}),
        ("replace", 3, CONDITIONAL_UPDATE, {"list": 1, "get": 3, "put": 5, "delete": 1}),
    ],
    ids=["if-none-match", "if-match current", "if-match stale", "if-match never issued"],
)


@memory_and_file
@GOES_DOWN
async def test_a_store_that_goes_down_during_a_probe_is_not_called_unsupported(
    store_url: str, name: str, nth: int, failed: str, requests: dict[str, int]
) -> None:
    store = FailsDuringProbe(ObjectStore.from_url(store_url), name, nth, down=True)
    probes = await probe_store(store)
    passed = PROBES[: PROBES.index(failed)]
    assert verdicts(probes) == [(probe, True) for probe in passed] + [
        (failed, False),
        (DELETE, False),
    ]
    assert probes[-2].message == (
        f"not tested, the store failed during it: {name} failed: ServiceUnavailable "
        "(RuntimeError: 503 Service Unavailable), and a plain read after it failed too"
    )
    assert probes[-1].message.endswith(
        ": delete failed: ServiceUnavailable (RuntimeError: 503 Service Unavailable)"
    ), probes[-1]
    assert [probe.store_failed for probe in probes] == [False] * len(passed) + [True, True]
    assert dict(store.requests) == requests


@memory_and_file
async def test_a_plain_read_that_fails_during_a_probe_is_the_store_failing(
    store_url: str,
) -> None:
    """The read of the current version, before the replaces."""
    store = FailsDuringProbe(ObjectStore.from_url(store_url), "get", 2)
    probes = await probe_store(store)
    assert verdicts(probes) == [(REACHABLE, True), (CREATE_IF_ABSENT, True),
                                (CONDITIONAL_UPDATE, False)]  # fmt: skip
    assert probes[2] == Probe(
        CONDITIONAL_UPDATE,
        False,
        "not tested, the store failed during it: get failed: ServiceUnavailable "
        "(RuntimeError: 503 Service Unavailable)",
        store_failed=True,
    )
    assert dict(store.requests) == {"list": 1, "get": 2, "put": 2, "delete": 1}
    assert await leftovers(store.inner) == []


async def test_a_lost_answer_does_not_hide_a_store_that_ignores_conditions() -> None:
    # The second create overwrote, and its answer was lost: the plain read shows it landed.
    store = FailsDuringProbe(UnconditionalStore.from_url("memory://"), "create", 2, after=True)
    probes = await probe_store(store)
    assert verdicts(probes) == [(REACHABLE, True), (CREATE_IF_ABSENT, False),
                                (CONDITIONAL_UPDATE, False)]  # fmt: skip
    assert "ignores If-None-Match" in probes[1].message and not probes[1].store_failed
    assert dict(store.requests) == {"list": 1, "get": 3, "put": 4, "delete": 1}
