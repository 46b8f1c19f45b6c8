"""Storage: one bucket/prefix through obstore; see `keys` for the object layout and `base`
for the contract. `ObjectStore` (and obstore with it) is imported on first use, so code
that needs only the contract or the key layout does not load the store library."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import keys
from .base import CorruptObjectError, ObjectInfo, Store, StoreConflict, Versioned
from .probes import Probe, probe_store

if TYPE_CHECKING:
    from .store import ObjectStore, encode

__all__ = [
    "CorruptObjectError",
    "ObjectInfo",
    "ObjectStore",
    "Probe",
    "Store",
    "StoreConflict",
    "Versioned",
    "encode",
    "keys",
    "probe_store",
]


def __getattr__(name: str) -> Any:
    if name in ("ObjectStore", "encode"):
        from . import store

        return getattr(store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
