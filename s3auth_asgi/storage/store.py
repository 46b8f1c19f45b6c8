"""ObjectStore: typed JSON objects over obstore with conditional writes and request counts.

Every method maps to object-store requests, counted by kind in `requests` (one per GET,
PUT, per LIST page of up to 1,000 keys, per batch DELETE of up to 1,000 keys), so tests
and benchmarks can assert on them.
"""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import anyio.lowlevel
import anyio.to_thread
import msgspec
import obstore as obs
from obstore.exceptions import AlreadyExistsError, PreconditionError
from obstore.store import LocalStore, MemoryStore
from obstore.store import from_url as obstore_from_url

from ..errors import ConfigurationError, StoreUnavailableError
from .base import CorruptObjectError, ObjectInfo, StoreConflict, Versioned
from .local import LocalConditionalWrites
from .local_listing import list_local

T = TypeVar("T")

PAGE_SIZE = 1000
_encoder = msgspec.json.Encoder()


def encode(value: Any) -> bytes:
    return _encoder.encode(value)


class ObjectStore:
    """One bucket/prefix. Construct with `ObjectStore.from_url(url)`."""

    def __init__(self, inner: Any, *, local_root: Path | None = None, url: str = "") -> None:
        self._inner = inner
        self._local = LocalConditionalWrites(inner, local_root) if local_root else None
        self._local_root = local_root
        self._decoders: dict[Any, msgspec.json.Decoder[Any]] = {}
        self.url = url
        self.requests: collections.Counter[str] = collections.Counter()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> ObjectStore:
        """`memory://`, `file:///path` (relative: `file://./dir`), or any obstore URL
        (`s3://bucket/prefix`, `gs://…`, `az://…`) with obstore's own env variables."""
        scheme = urlsplit(url).scheme
        if url == "memory://" or scheme == "memory":
            return cls(MemoryStore(), url=url)
        if scheme == "file":
            raw = unquote(url[len("file://") :])
            root = Path(raw or ".").expanduser().resolve()
            root.mkdir(parents=True, exist_ok=True)
            return cls(LocalStore(root), local_root=root, url=url)
        try:
            return cls(obstore_from_url(url, **options), url=url)
        except Exception as exc:
            raise ConfigurationError(f"S3AUTH_STORE_URL: cannot open {url!r}: {exc}") from None

    def reset_counts(self) -> None:
        self.requests.clear()

    def _count(self, kind: str, n: int = 1) -> None:
        self.requests[kind] += n

    def _decoder(self, type_: Any) -> msgspec.json.Decoder[Any]:
        decoder = self._decoders.get(type_)
        if decoder is None:
            decoder = self._decoders[type_] = msgspec.json.Decoder(type_)
        return decoder

    async def get(self, key: str, type_: type[T]) -> Versioned[T] | None:
        """The object decoded as `type_`, with its ETag; None when it does not exist."""
        self._count("get")
        try:
            result = await obs.get_async(self._inner, key)
            data = await result.bytes_async()
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise StoreUnavailableError(f"GET {key} failed: {type(exc).__name__}") from exc
        meta = result.meta
        try:
            value = self._decoder(type_).decode(bytes(data))
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise CorruptObjectError(f"{key} is not a valid {type_.__name__}") from exc
        return Versioned(value, meta["e_tag"] or "", meta["last_modified"])

    async def create(self, key: str, value: Any) -> str:
        """Write only if absent (If-None-Match: *). Raises StoreConflict when it exists."""
        self._count("put")
        try:
            result = await obs.put_async(self._inner, key, encode(value), mode="create")
        except (AlreadyExistsError, PreconditionError) as exc:
            raise StoreConflict(key) from exc
        except Exception as exc:
            raise StoreUnavailableError(f"PUT {key} failed: {type(exc).__name__}") from exc
        return result["e_tag"] or ""

    async def replace(self, key: str, value: Any, etag: str) -> str:
        """Write only if the current ETag is `etag` (If-Match). StoreConflict otherwise."""
        self._count("put")
        data = encode(value)
        if self._local is not None:
            new = await anyio.to_thread.run_sync(self._local.replace, key, data, etag)
            if new is None:
                raise StoreConflict(key)
            return new
        try:
            result = await obs.put_async(self._inner, key, data, mode={"e_tag": etag})
        except (AlreadyExistsError, PreconditionError, FileNotFoundError) as exc:
            raise StoreConflict(key) from exc
        except Exception as exc:
            raise StoreUnavailableError(f"PUT {key} failed: {type(exc).__name__}") from exc
        return result["e_tag"] or ""

    async def delete(self, key: str) -> None:
        await self.delete_many((key,))

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Delete in batches of up to 1,000 keys; missing keys are not an error."""
        batch = list(keys)
        for start in range(0, len(batch), PAGE_SIZE):
            chunk = batch[start : start + PAGE_SIZE]
            self._count("delete")
            try:
                if self._local is not None:
                    await anyio.to_thread.run_sync(self._local.delete, chunk)
                else:
                    await obs.delete_async(self._inner, chunk)
            except Exception as exc:
                raise StoreUnavailableError(f"DELETE failed: {type(exc).__name__}") from exc
        return len(batch)

    async def list_page(
        self, prefix: str, after: str | None, limit: int
    ) -> tuple[list[ObjectInfo], bool]:
        """Up to `limit` objects under `prefix` sorting after `after`, in key order, and
        whether more follow. Local directories list unsorted, so those are sorted here."""
        items: list[ObjectInfo] = []
        async for info in self.list(prefix, after):
            items.append(info)
            if self._local is None and len(items) > limit:
                break
        items.sort(key=lambda info: info.key)
        return items[:limit], len(items) > limit

    async def list(self, prefix: str, offset: str | None = None) -> AsyncIterator[ObjectInfo]:
        """Every object under `prefix` (after `offset`), paged to the end."""
        pages = 0
        try:
            async for chunk in self._pages(prefix, offset):
                pages += 1
                self._count("list")
                for info in chunk:
                    yield info
        except FileNotFoundError:
            pass
        except Exception as exc:
            if pages == 0:
                self._count("list")  # a failed request is a request too
            raise StoreUnavailableError(f"LIST {prefix} failed: {type(exc).__name__}") from exc
        if pages == 0:
            self._count("list")

    async def _pages(self, prefix: str, offset: str | None) -> AsyncIterator[Sequence[ObjectInfo]]:
        """Pages of up to 1,000 objects: what one LIST request returns. A local directory
        is read by `list_local`, which skips what sorts before the offset."""
        if self._local_root is not None:
            found = await anyio.to_thread.run_sync(list_local, self._local_root, prefix, offset)
            for start in range(0, len(found), PAGE_SIZE):
                yield found[start : start + PAGE_SIZE]
                # A network page is awaited; a local one is not: let the loop breathe.
                await anyio.lowlevel.checkpoint()
            return
        kwargs: dict[str, Any] = {"prefix": prefix, "chunk_size": PAGE_SIZE}
        if offset is not None:
            kwargs["offset"] = offset
        async for chunk in obs.list(self._inner, **kwargs):
            yield [ObjectInfo(m["path"], m["last_modified"], m["size"]) for m in chunk]
