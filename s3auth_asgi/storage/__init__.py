"""Storage: one bucket/prefix through obstore; see `keys` for the object layout."""

from . import keys
from .store import (
    CorruptObjectError,
    ObjectInfo,
    ObjectStore,
    StoreConflict,
    Versioned,
    encode,
)

__all__ = [
    "CorruptObjectError",
    "ObjectInfo",
    "ObjectStore",
    "StoreConflict",
    "Versioned",
    "encode",
    "keys",
]
