"""Listing after an offset on a backend that is sent none: Azure Blob Storage.

obstore sends S3 and GCS a listing's offset (`start-after`), and they answer only what
sorts after it. On Azure it lists the prefix from its start and drops what sorts before the
offset itself: each key before it is still answered by the service, read here, and counted
among the 5,000 of a request, so a revocation sync would cost the whole history again.

Keys that sort in time order under dated directories (revocation shards, see `keys`) are
listed as `local_listing` walks a local directory: where the offset lies inside a directory
under the prefix, one listing with a delimiter names the directories and the objects of the
prefix's own level (0.1's unsharded revocations), and only the directories that can hold
keys after the offset are listed, whatever sorts before it unread. A flat prefix (`users/`,
an audit trail) has no directory to skip: it is listed from its start and filtered here, so
that every request made is counted (obstore's filtered answer has fewer pages than it made).

Same answers as obstore's listing with an offset: every object under the prefix whose key
sorts after the offset, in key order.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import obstore as obs

from .base import ObjectInfo
from .local_listing import all_before

Page = tuple[int, list[ObjectInfo]]
"""The LIST requests a page of objects cost (none for one that a listing made before
answered), and its objects."""


async def pages_after(
    inner: Any, prefix: str, offset: str | None, size: int
) -> AsyncIterator[Page]:
    """Pages of the objects under `prefix` (ending in "/", or "") after `offset`, listed
    with `size` keys a request (see the module)."""
    if prefix and not prefix.endswith("/"):
        prefix += "/"  # as obstore reads a prefix: whole path segments
    rest = offset.removeprefix(prefix) if offset is not None else ""
    if offset is None or not offset.startswith(prefix) or "/" not in rest:
        async for flat in _flat(inner, prefix, offset, size):
            yield flat
        return
    found = await obs.list_with_delimiter_async(inner, prefix or None)
    objects, directories = found["objects"], found["common_prefixes"]
    requests = max(1, math.ceil((len(objects) + len(directories)) / size))
    # A directory's keys continue with "/", so that is where it sorts among the objects.
    level = sorted(
        [(meta["path"], object_info(meta)) for meta in objects]
        + [(f"{directory}/", None) for directory in directories],
        key=lambda entry: entry[0],
    )
    page: list[ObjectInfo] = []
    for name, info in level:
        if info is not None:
            if name > offset:
                page.append(info)
        elif not all_before(name, offset):
            yield requests, page
            requests, page = 0, []
            # Inside the directory the offset lies in, the walk goes on; after it, all is new.
            within = offset if offset.startswith(name) else None
            async for deeper in pages_after(inner, name, within, size):
                yield deeper
    yield requests, page


async def _flat(inner: Any, prefix: str, offset: str | None, size: int) -> AsyncIterator[Page]:
    async for chunk in obs.list(inner, prefix=prefix, chunk_size=size):
        yield 1, [object_info(meta) for meta in chunk if offset is None or meta["path"] > offset]


def object_info(meta: Any) -> ObjectInfo:
    """What obstore says of a listed object, as a listing gives it."""
    return ObjectInfo(meta["path"], meta["last_modified"], meta["size"])
