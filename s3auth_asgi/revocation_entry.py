"""The PUT of one revocation entry under a millisecond's key (`storage.keys`), and what
finding a key taken means.

Keys are created, never replaced (If-None-Match), so a conflict says the key holds an
entry already. One without a body (`jti`, `session`) says all of itself in its key: the
same revocation was written in the same millisecond, by another process or by a PUT of
ours that the client sent again, which is success. A `user` entry's body names the
sessions it ends, and another one with other sessions may have taken the millisecond
(one GET tells): ours then goes in the next, at most `SAME_MS_ATTEMPTS` times. Past them
the revocation fails as a store down does (StoreUnavailableError), to be tried again: the
last key tried holds another entry, so taken for success it would be this process's alone.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .errors import StoreUnavailableError
from .models import EndedSessions
from .storage import Store, StoreConflict, keys
from .storage.access import get_or_none

SAME_MS_ATTEMPTS = 8


class Created(NamedTuple):
    key: str
    """Where the entry is."""
    ours: bool
    """Whether this PUT wrote it (False: the same entry was found there)."""


async def create_entry(
    store: Store,
    written_ms: int,
    kind: keys.RevocationKind,
    subject: str,
    expires_s: int,
    body: Any,
) -> Created:
    """Write the entry at `written_ms`, or the next free millisecond (see the module)."""
    for _ in range(SAME_MS_ATTEMPTS):
        key = keys.revocation(written_ms, kind, expires_s, subject)
        try:
            await store.create(key, {} if body is None else body)
            return Created(key, ours=True)
        except StoreConflict:
            if body is None or await _holds(store, key, body):
                return Created(key, ours=False)
            written_ms += 1
    raise StoreUnavailableError(
        f"the revocation found {SAME_MS_ATTEMPTS} milliseconds in a row taken by other "
        "entries of the same user: try again"
    )


async def _holds(store: Store, key: str, body: EndedSessions) -> bool:
    found = await get_or_none(store, key, EndedSessions)
    return found is not None and found.value == body
