"""Which key signs, and since when a key no longer does: one rule for the key set a process
verifies with and for the stored records `s3auth keys` reads without opening them.

Keys rank by activation, newest first; of keys activating at the same moment, the one
added last ranks first (a rotation made at once outranks the key it replaces). The signing
key is the highest-ranked live key whose activation has passed; a key stopped signing when
the first key that outranks it activated. A key rotated in at once outranks every other
because its rotation removed the keys that had not activated yet (`stored.withdrawn_at_once`),
not by a rule here: the ranking stays a function of the stored set alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar


class Timed(Protocol):
    @property
    def activates_at(self) -> float: ...

    @property
    def retires_at(self) -> float | None: ...


K = TypeVar("K", bound=Timed)


def ranked(keys: Sequence[K]) -> list[K]:
    """`keys` (in the order they were added), highest rank first."""
    return sorted(reversed(keys), key=lambda key: key.activates_at, reverse=True)


def signer(keys: Sequence[K], now: float) -> K | None:
    for key in ranked(keys):
        if key.activates_at <= now and (key.retires_at is None or now < key.retires_at):
            return key
    return None


def superseded_at(keys: Sequence[K], target: K) -> float | None:
    """When `target` stopped signing (or will): the earliest activation of a key that
    outranks it; None while nothing does."""
    order = ranked(keys)
    above = order[: next(i for i, key in enumerate(order) if key is target)]
    return min((key.activates_at for key in above), default=None)
