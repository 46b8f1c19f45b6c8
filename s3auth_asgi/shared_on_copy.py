"""SharedOnCopy: objects whose deep copy is the object itself.

A service, its blacklist, its token codec, a rate limiter or a JWKS verifier is a
process's one handle on live state: a store and its connections, a snapshot kept fresh in
the background, caches, locks, tasks. A copy would keep its own, and see what the original
writes (a logout, a rotated key, a request counted) only a sync later, if ever; one over
a store cannot be made at all. Frameworks deep-copy what their configuration holds:
Litestar copies a Router, with the arguments of its middleware, when registering it.
"""

from __future__ import annotations

from typing import Any, Self


class SharedOnCopy:
    """Mixed into a class whose instances hold live state: `copy.deepcopy` hands back the
    instance itself, wherever it sits in what is copied."""

    __slots__ = ()

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        return self
