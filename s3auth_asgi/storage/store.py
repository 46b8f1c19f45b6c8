"""ObjectStore: typed JSON objects over obstore with conditional writes and request counts.

Every method maps to object-store requests, counted by kind in `requests` (one per GET,
PUT, LIST page and DELETE request, as `batching` says each backend pages and batches them),
so tests and benchmarks can assert on them. The version token a read or write answers with
keeps what the backend conditions a replace on (`versions`).

Every failure to reach the store, whatever the backend and the request (an OSError from a
local directory or its lock files, a network or HTTP error from S3), is a
StoreUnavailableError (503) whose detail says only whether reading or writing failed, and
that the bucket does not exist when so (`unavailable`): it becomes the public problem
detail, so it names no key, path or exception. The key and what the store said are logged
to "s3auth_asgi.storage" at warning level, and the error's `__cause__` is what the store
said (which `s3auth check` shows to the operator) without the credentials a URL in it
may carry (`unavailable.RedactedStoreError`). A missing object is None (or for
a conditional write, StoreConflict), but a missing bucket is never taken for one, nor a
`file://` store's directory gone from under it (`local.LocalConditionalWrites.vanished`).

A key or prefix that is not a plain relative path (`key_rules`) is a ValueError before any
request, and is not counted: it is the caller's error, not the store's. A listing leaves
such keys out (another tool's objects), logging each once.

A conditional write is StoreConflict only when another writer's write refused it: when
obstore resent it (its answer lost) and the resend was refused by its own first attempt,
the object holds exactly the bytes it sent, and it is reported as made (`resends` says
how that is told, at one GET, and why identical bytes are the write's own).
"""

from __future__ import annotations

import collections
import logging
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import anyio.to_thread
import msgspec
import obstore as obs
from obstore.exceptions import AlreadyExistsError, PreconditionError
from obstore.store import LocalStore, MemoryStore
from obstore.store import from_url as obstore_from_url

from ..errors import ConfigurationError, StoreUnavailableError
from ..shown_urls import redact_urls
from . import resends, versions
from .base import CorruptObjectError, ObjectInfo, StoreConflict, Versioned
from .batching import batching_of
from .client import network_options
from .handoffs import watch_running_loop
from .key_rules import ForeignKeys, check_key, check_keys, check_prefix
from .listing_pages import listing_pages
from .local import PRIVATE_DIRECTORY, LocalConditionalWrites, content_token
from .unavailable import (
    OPEN_FAILED,
    READ_FAILED,
    WRITE_FAILED,
    described,
    missing_holder,
    redacted_error,
    unavailable,
)
from .urls import check_store_url

if TYPE_CHECKING:
    from obstore import ObjectMeta

T = TypeVar("T")

PAGE_SIZE = 1000
_encoder = msgspec.json.Encoder()

logger = logging.getLogger("s3auth_asgi.storage")


def encode(value: Any) -> bytes:
    return _encoder.encode(value)


class ObjectStore:
    """One bucket/prefix. Construct with `ObjectStore.from_url(url)`."""

    def __init__(self, inner: Any, *, local_root: Path | None = None, url: str = "") -> None:
        self._inner = inner
        self._local = LocalConditionalWrites(inner, local_root) if local_root else None
        self._local_root = local_root
        # obstore resends over the network only (`resends`).
        self._resends = not isinstance(inner, MemoryStore | LocalStore)
        self._batching = batching_of(inner)
        self._decoders: dict[Any, msgspec.json.Decoder[Any]] = {}
        self._foreign = ForeignKeys()
        self.url = url
        self.requests: collections.Counter[str] = collections.Counter()

    @classmethod
    def from_url(cls, url: str, *, create_parents: bool = True, **options: Any) -> ObjectStore:
        """`memory://`, `file:///path` (relative: `file://./dir`; see `urls.local_path`), or
        an obstore URL for S3, Google Cloud Storage or Azure (`s3://bucket/prefix`, `gs://…`,
        `az://…`, `abfs://…`) with obstore's own env variables, retried within
        `client.RETRY_WINDOW`. Any other scheme, or a URL
        naming no directory or bucket, is a ConfigurationError, checked before obstore is
        called. A missing `file://` directory is created (owner-only); with
        `create_parents=False` only when its parent exists: otherwise ConfigurationError."""
        root = check_store_url(url)
        scheme = urlsplit(url).scheme
        if scheme == "memory":
            return cls(MemoryStore(), url=url)
        if root is not None:
            try:
                root = root.resolve()
                if not root.exists():
                    if not create_parents and not root.parent.exists():
                        raise ConfigurationError(
                            f"S3AUTH_STORE_URL: {root.parent}, the parent directory of the "
                            "file:// store, does not exist: create it, or have it created "
                            "with S3AUTH_STORE_CREATE=true (or the command's --create)"
                        )
                    # Owner-only: the store holds password hashes and session secrets.
                    # exist_ok: another process opening the same new store (workers
                    # starting together) may create it between the check and here.
                    root.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIRECTORY)
                return cls(LocalStore(root), local_root=root, url=url)
            except ConfigurationError:
                raise
            except Exception as exc:  # OSError, or obstore's own error for the directory
                raise unavailable("OPEN", str(root), exc, OPEN_FAILED) from redacted_error(exc)
        try:
            return cls(obstore_from_url(url, **network_options(options)), url=url)
        except Exception as exc:
            # obstore's message goes on with a multi-line "Debug source:" dump.
            said = redact_urls(str(exc)).strip().splitlines()
            raise ConfigurationError(
                f"S3AUTH_STORE_URL: cannot open the {scheme}:// store: {said[0] if said else exc!r}"
            ) from None

    def reset_counts(self) -> None:
        self.requests.clear()

    def _count(self, kind: str, n: int = 1) -> None:
        # Every request starts here: its answer comes back through obstore's thread.
        watch_running_loop()
        self.requests[kind] += n

    def _decoder(self, type_: Any) -> msgspec.json.Decoder[Any]:
        decoder = self._decoders.get(type_)
        if decoder is None:
            decoder = self._decoders[type_] = msgspec.json.Decoder(type_)
        return decoder

    async def get(self, key: str, type_: type[T]) -> Versioned[T] | None:
        """The object decoded as `type_`, with its version token; None when it does not
        exist."""
        check_key(key)
        found = await self._read(key)
        if found is None:
            return None
        data, meta = found
        if self._local is not None:
            token = content_token(data)
        else:
            token = versions.encode(meta["e_tag"], meta["version"])
        try:
            value = self._decoder(type_).decode(data)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            logger.warning("store object %s is not a valid %s: %s", key, type_.__name__, exc)
            # Its title says it, without the key, which the operator's tools take from `key`.
            raise CorruptObjectError(etag=token, key=key) from exc
        return Versioned(value, token, meta["last_modified"])

    async def _read(self, key: str) -> tuple[bytes, ObjectMeta] | None:
        """The object's bytes and what the store says of it (1 GET); None when absent."""
        self._count("get")
        try:
            result = await obs.get_async(self._inner, key)
            data = await result.bytes_async()
        except Exception as exc:
            if isinstance(exc, FileNotFoundError) and missing_holder(exc) is None:
                gone = self._local.vanished() if self._local is not None else None
                if gone is None:
                    return None
                exc = gone
            raise unavailable("GET", key, exc, READ_FAILED) from redacted_error(exc)
        return bytes(data), result.meta

    async def _refused(self, key: str, sent: bytes, exc: Exception) -> str:
        """What a conditional write the store refused answers: StoreConflict, unless the
        refusal was of obstore's resend of the write and the object holds exactly the bytes
        it sent (`resends`): then the version of the write, which landed. A bucket that
        does not exist (a conditional PUT there is a 404, which obstore may report as a
        failed precondition) is StoreUnavailableError."""
        if missing_holder(exc) is not None:
            raise unavailable("PUT", key, exc, WRITE_FAILED) from redacted_error(exc)
        if self._resends and resends.was_resent(exc):
            found = await self._read(key)
            if found is not None and found[0] == sent:
                logger.info("store PUT %s was resent and refused by itself: it landed", key)
                return versions.encode(found[1]["e_tag"], found[1]["version"])
        raise StoreConflict(key) from redacted_error(exc)

    async def create(self, key: str, value: Any) -> str:
        """Write only if absent (If-None-Match: *, on GCS generation 0). Raises
        StoreConflict when another write made it exist; returns the new version token."""
        check_key(key)
        self._count("put")
        data = encode(value)
        if self._local is not None:
            try:
                created = await anyio.to_thread.run_sync(self._local.create, key, data)
            except Exception as exc:
                raise unavailable("PUT", key, exc, WRITE_FAILED) from redacted_error(exc)
            if created is None:
                raise StoreConflict(key)
            return created
        try:
            result = await obs.put_async(self._inner, key, data, mode="create")
        except (AlreadyExistsError, PreconditionError) as exc:
            return await self._refused(key, data, exc)
        except Exception as exc:
            raise unavailable("PUT", key, exc, WRITE_FAILED) from redacted_error(exc)
        return versions.encode(result["e_tag"], result["version"])

    async def replace(self, key: str, value: Any, etag: str) -> str:
        """Write only if the object is still at the version token `etag` (If-Match, on GCS
        the generation). StoreConflict when another write changed it; returns the new
        version token."""
        check_key(key)
        self._count("put")
        data = encode(value)
        if self._local is not None:
            try:
                new = await anyio.to_thread.run_sync(self._local.replace, key, data, etag)
            except Exception as exc:  # an OSError from the lock or temporary files too
                raise unavailable("PUT", key, exc, WRITE_FAILED) from redacted_error(exc)
            if new is None:
                raise StoreConflict(key)
            return new
        try:
            result = await obs.put_async(self._inner, key, data, mode=versions.put_mode(etag))
        except (AlreadyExistsError, PreconditionError, FileNotFoundError) as exc:
            return await self._refused(key, data, exc)
        except Exception as exc:
            raise unavailable("PUT", key, exc, WRITE_FAILED) from redacted_error(exc)
        return versions.encode(result["e_tag"], result["version"])

    async def delete(self, key: str) -> None:
        await self.delete_many((key,))

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Delete in as few requests as the backend takes (`batching`); missing keys are not
        an error."""
        batch = check_keys(keys)
        if self._local is not None:
            for start in range(0, len(batch), PAGE_SIZE):
                chunk = batch[start : start + PAGE_SIZE]
                self._count("delete")
                try:
                    await anyio.to_thread.run_sync(self._local.delete, chunk)
                except Exception as exc:
                    raise unavailable(
                        "DELETE", described(chunk), exc, WRITE_FAILED
                    ) from redacted_error(exc)
            return len(batch)
        size = self._batching.delete_batch
        chunks = [batch[start : start + size] for start in range(0, len(batch), size)]
        failures: list[StoreUnavailableError] = []
        limiter = anyio.CapacityLimiter(self._batching.delete_concurrency)

        async def send(chunk: list[str]) -> None:
            async with limiter:
                if failures:  # the caller gets an error whatever follows: send no more
                    return
                self._count("delete")
                try:
                    await obs.delete_async(self._inner, chunk)
                except Exception as exc:
                    # GCS answers 404 for a key that is not there, and Azure's batch names
                    # it after deleting the others: gone either way, as on S3. (Behind
                    # that 404 only a per-blob refusal could hide, a lease or a legal hold,
                    # neither of which this package sets; access is decided per batch.)
                    if isinstance(exc, FileNotFoundError) and missing_holder(exc) is None:
                        return
                    failure = unavailable("DELETE", described(chunk), exc, WRITE_FAILED)
                    failure.__cause__ = redacted_error(exc)
                    failures.append(failure)

        if len(chunks) == 1:
            await send(chunks[0])
        else:
            async with anyio.create_task_group() as tg:
                for chunk in chunks:
                    tg.start_soon(send, chunk)
        if failures:
            raise failures[0]
        return len(batch)

    async def list_page(
        self, prefix: str, after: str | None, limit: int
    ) -> tuple[list[ObjectInfo], bool]:
        """Up to `limit` objects under `prefix` sorting after `after`, in key order, and
        whether more follow: 1 LIST, whatever follows (a `file://` store's walk is in key
        order too, `local_listing`, and stops with the page); on Azure, which is sent no
        offset, a flat prefix is listed from its start: a LIST per 5,000 keys up to the
        page's end (`listing_pages`)."""
        items: list[ObjectInfo] = []
        async for info in self.list(prefix, after):
            items.append(info)
            if len(items) > limit:
                break
        return items[:limit], len(items) > limit

    async def list(self, prefix: str, offset: str | None = None) -> AsyncIterator[ObjectInfo]:
        """Every object under `prefix` (after `offset`) that a key may name, to the end, as
        each backend pages it (`listing_pages`)."""
        check_prefix(prefix)
        made = 0
        try:
            pages = listing_pages(self._inner, self._local_root, self._batching, prefix, offset)
            async for requests, chunk in pages:
                if requests:
                    made += requests
                    self._count("list", requests)
                for info in chunk:
                    if not self._foreign.left_out(info.key, prefix, offset):
                        yield info
        except Exception as exc:
            if made == 0:
                self._count("list")  # a failed request is a request too
            if isinstance(exc, FileNotFoundError) and missing_holder(exc) is None:
                return
            raise unavailable("LIST", prefix, exc, READ_FAILED) from redacted_error(exc)
        if made == 0:
            self._count("list")
