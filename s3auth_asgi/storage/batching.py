"""How many keys one request covers on each backend, so that `ObjectStore.requests` counts
the requests really made, and deletes are sent the way each backend takes them.

- LIST: S3 and GCS answer up to 1,000 keys a page, Azure up to 5,000.
- DELETE: S3 removes up to 1,000 keys in one request (DeleteObjects) and Azure up to 256 (a
  blob batch); GCS has no multi-object delete in the API obstore speaks, so each key is a
  request of its own (sent ten at a time, as obstore itself would).

A local directory and memory make no requests; they are counted as S3 is, so the counts
asserted on them are S3's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Batching:
    list_page: int
    """Keys one LIST request returns at most."""
    delete_batch: int
    """Keys one DELETE request removes at most."""
    delete_concurrency: int
    """DELETE requests in flight at once."""


S3 = Batching(list_page=1000, delete_batch=1000, delete_concurrency=1)
GCS = Batching(list_page=1000, delete_batch=1, delete_concurrency=10)
AZURE = Batching(list_page=5000, delete_batch=256, delete_concurrency=4)


def batching_of(inner: Any) -> Batching:
    """The batching of an obstore store (S3's for anything else)."""
    from obstore.store import AzureStore, GCSStore

    if isinstance(inner, GCSStore):
        return GCS
    if isinstance(inner, AzureStore):
        return AZURE
    return S3
