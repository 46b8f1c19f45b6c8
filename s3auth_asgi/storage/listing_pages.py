"""The pages a listing comes in on each backend, each with the LIST requests it cost, so
that `ObjectStore.requests` counts the requests made (`batching`):

- a `file://` directory: walked in key order, a page at a time, in a worker thread
  (`local_listing`), past the directories that sort before the offset;
- S3, GCS (and `memory://`): obstore's listing, sent the offset (`start-after`), a page of
  the backend's size per request;
- Azure, which obstore sends no offset: the directories that can hold keys after it, or a
  flat prefix from its start (`offset_listing`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio.to_thread
import obstore as obs

from .batching import Batching
from .local_listing import next_page, walk_local
from .offset_listing import Page, object_info, pages_after


async def listing_pages(
    inner: Any, local_root: Path | None, batching: Batching, prefix: str, offset: str | None
) -> AsyncIterator[Page]:
    """Pages of the objects under `prefix` after `offset` of the obstore store `inner`
    (the local directory `local_root`, if it is one)."""
    size = batching.list_page
    if local_root is not None:
        # A page at a time, as a network listing: a sweep deleting as it lists holds
        # a page, not the history (`walk_local` reads one directory at a time).
        walk = await anyio.to_thread.run_sync(walk_local, local_root, prefix, offset)
        while page := await anyio.to_thread.run_sync(next_page, walk, size):
            yield 1, page
            if len(page) < size:
                return
        return
    if offset is not None and not batching.offset_sent:
        async for found in pages_after(inner, prefix, offset, size):
            yield found
        return
    # A chunk of the backend's page size is one LIST request's answer.
    kwargs: dict[str, Any] = {"prefix": prefix, "chunk_size": size}
    if offset is not None:
        kwargs["offset"] = offset
    async for chunk in obs.list(inner, **kwargs):
        yield 1, [object_info(meta) for meta in chunk]
