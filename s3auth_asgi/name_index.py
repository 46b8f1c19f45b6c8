"""The name index: `index/username/{digest}` and `index/email/{digest}` objects, each naming
the user that owns a username or an email. Creating one (If-None-Match) is what makes a
name unique; finding a user by name costs 2 GETs (index, user) however many users exist.

Repair. Registration writes both index objects before the user object, so a crash leaves
at most index objects pointing at a user that does not exist: they log nobody in, and
after `name_reservation_seconds` (the store's Last-Modified against the service clock) the
next registration of that name takes the index over with a conditional replace.
"""

from __future__ import annotations

import datetime as dt
import logging

from .errors import ConflictError, S3ValidationError
from .identifiers import fold, looks_like_email, normalise_email, normalise_username
from .models import IndexEntry, User
from .storage import CorruptObjectError, Store, StoreConflict, Versioned, keys
from .storage.access import get_or_none
from .types import Clock

logger = logging.getLogger("s3auth_asgi")


class NameIndex:
    """Reserves names for users and finds users by name."""

    def __init__(self, store: Store, *, clock: Clock, reservation_seconds: float) -> None:
        self.store = store
        self.clock = clock
        self.reservation_seconds = reservation_seconds

    async def reserve(self, key: str, user_id: str, taken: type[ConflictError]) -> None:
        """Create the index object; take over one whose registration never finished."""
        entry = IndexEntry(user_id)
        try:
            await self.store.create(key, entry)
            return
        except StoreConflict:
            pass
        current = await get_or_none(self.store, key, IndexEntry)
        if current is None:
            try:
                await self.store.create(key, entry)
                return
            except StoreConflict:
                raise taken() from None
        age = dt.datetime.fromtimestamp(self.clock(), dt.UTC) - current.last_modified
        if age.total_seconds() < self.reservation_seconds:
            raise taken()
        try:
            owner = await self.store.get(keys.user(current.value.user_id), User)
        except CorruptObjectError:
            raise taken() from None
        if owner is not None:
            raise taken()
        try:
            await self.store.replace(key, entry, current.etag)
        except StoreConflict:
            raise taken() from None
        logger.info("took over an index entry left by an unfinished registration: %s", key)

    async def find(self, identifier: str) -> Versioned[User] | None:
        """The user an email or a username names (2 GETs), with its ETag."""
        try:
            if looks_like_email(identifier):
                normalised = normalise_email(identifier)
                index_key = keys.email_index(normalised)
            else:
                normalised = normalise_username(identifier)
                index_key = keys.username_index(normalised)
        except S3ValidationError:
            return None
        index = await get_or_none(self.store, index_key, IndexEntry)
        if index is None:
            return None
        found = await get_or_none(self.store, keys.user(index.value.user_id), User)
        if found is None:
            return None
        # An index taken over from an unfinished registration may still name a record
        # that another writer finished late: only the owner of the name counts.
        user = found.value
        named = fold(user.email) if looks_like_email(identifier) else fold(user.username)
        return found if named == normalised else None
