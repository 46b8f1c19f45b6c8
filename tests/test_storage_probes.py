"""The store probes behind `s3auth check`, on memory://, file:// and moto's S3, and on those
same stores altered to lack what the package relies on: each probe's verdict, the exact
requests made, and nothing left under the probe prefix afterwards."""

from __future__ import annotations

import re
from typing import Any

import obstore as obs
import pytest

from s3auth_asgi import StoreUnavailableError
from s3auth_asgi.storage import ObjectStore, Probe, StoreConflict, encode, keys, probe_store
from s3auth_asgi.storage.probes import (
    CONDITIONAL_UPDATE,
    CREATE_IF_ABSENT,
    DELETE,
    REACHABLE,
)

pytestmark = pytest.mark.anyio

PROBES = [REACHABLE, CREATE_IF_ABSENT, CONDITIONAL_UPDATE]


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
    assert dict(store.requests) == {"list": 1, "get": 2, "put": 5, "delete": 1}
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
    assert dict(store.requests) == {"list": 1, "get": 2, "put": 3, "delete": 1}
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
