"""The storage contract: what the service, the revocation list and the rate-limit store ask
of an object store, and the values it answers with.

`ObjectStore` is the implementation; anything with the same methods (a wrapper that counts,
delays or injects faults) can stand in for it. Correctness rests on two conditional writes
that every backend offers: `create` (If-None-Match: *) and `replace` (If-Match: etag).
"""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from ..errors import StoreUnavailableError

T = TypeVar("T")


class StoreConflict(Exception):
    """A conditional write lost: another write made the object exist (create) or changed it
    (replace). Never the refusal of a resend of the write itself (`resends`)."""


class CorruptObjectError(StoreUnavailableError):
    code = "corrupt_object"
    title = "A stored object could not be read"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Iterable[tuple[str, str]] = (),
        etag: str | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__(detail, headers=headers)
        self.etag = etag
        """The version token of the object that could not be read, when the store said it:
        a replace conditioned on it overwrites that object and nothing written since."""
        self.key = key
        """The key of the object, for the operator (`s3auth`'s failure line names it): a key
        holds ids and digests, never a secret (`keys`), but it is no client's business, so
        the detail, which a client is answered, leaves it out."""


@dataclass(frozen=True, slots=True)
class Versioned(Generic[T]):
    value: T
    etag: str
    last_modified: dt.datetime


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    last_modified: dt.datetime
    size: int


class Store(Protocol):
    """Typed JSON objects under keys, with conditional writes. Every failure to reach the
    store is a StoreUnavailableError, and a key that is not a plain relative path
    (`key_rules`) a ValueError, which no listing yields; `requests` counts requests by
    kind (get, put, list, delete)."""

    requests: collections.Counter[str]

    def reset_counts(self) -> None: ...

    async def get(self, key: str, type_: type[T]) -> Versioned[T] | None: ...

    async def create(self, key: str, value: Any) -> str: ...

    async def replace(self, key: str, value: Any, etag: str) -> str: ...

    async def delete(self, key: str) -> None: ...

    async def delete_many(self, keys: Iterable[str]) -> int: ...

    async def list_page(
        self, prefix: str, after: str | None, limit: int
    ) -> tuple[list[ObjectInfo], bool]: ...

    def list(self, prefix: str, offset: str | None = None) -> AsyncIterator[ObjectInfo]: ...
