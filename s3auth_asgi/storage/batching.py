"""How many keys one request covers on each backend, so that `ObjectStore.requests` counts
the requests really made, and deletes are sent the way each backend takes them.

- LIST: S3 and GCS answer up to 1,000 keys a page, Azure up to 5,000. S3 and GCS are sent
  a listing's offset (`start-after`) and answer only what sorts after it; obstore sends
  Azure none, and lists from the prefix's start (`offset_listing` says what is done there).
- DELETE: S3 removes up to 1,000 keys in one request (DeleteObjects) and Azure up to 256 (a
  blob batch); GCS has no multi-object delete in the API obstore speaks, so each key is a
  request of its own (sent ten at a time, as obstore itself would).

A local directory and memory make no requests; they are counted as S3 is, so the counts
asserted on them are S3's.

A sweep deletes what it lists as it goes (`delete_as_listed`), an S3 DELETE request's worth
at a time, so it holds one batch of keys whatever the history. Deleting what a listing has
passed is safe on every backend: an S3, GCS or Azure listing continues after the last key
it returned, a local directory is read whole before its entries are given (`local_listing`),
and obstore's memory store lists a snapshot.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .access import batches

if TYPE_CHECKING:
    from .base import Store


@dataclass(frozen=True, slots=True)
class Batching:
    list_page: int
    """Keys one LIST request returns at most."""
    delete_batch: int
    """Keys one DELETE request removes at most."""
    delete_concurrency: int
    """DELETE requests in flight at once."""
    offset_sent: bool = True
    """Whether a LIST request carries the offset, so that nothing before it is listed."""


S3 = Batching(list_page=1000, delete_batch=1000, delete_concurrency=1)
GCS = Batching(list_page=1000, delete_batch=1, delete_concurrency=10)
AZURE = Batching(list_page=5000, delete_batch=256, delete_concurrency=4, offset_sent=False)


def batching_of(inner: Any) -> Batching:
    """The batching of an obstore store (S3's for anything else)."""
    from obstore.store import AzureStore, GCSStore

    if isinstance(inner, GCSStore):
        return GCS
    if isinstance(inner, AzureStore):
        return AZURE
    return S3


async def delete_as_listed(store: Store, keys: AsyncIterable[str]) -> int:
    """Delete `keys` as they come, in batches of one S3 DELETE request (so ceil(n / 1,000)
    requests on S3, as one `delete_many` of them all); how many."""
    deleted = 0
    async for batch in batches(keys, S3.delete_batch):
        deleted += await store.delete_many(batch)
    return deleted
