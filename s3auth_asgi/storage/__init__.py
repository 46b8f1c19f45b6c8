"""Storage: one bucket/prefix through obstore; see `keys` for the object layout."""

from . import keys
from .base import CorruptObjectError, ObjectInfo, Store, StoreConflict, Versioned
from .store import ObjectStore, encode

__all__ = [
    "CorruptObjectError",
    "ObjectInfo",
    "ObjectStore",
    "Store",
    "StoreConflict",
    "Versioned",
    "encode",
    "keys",
]
