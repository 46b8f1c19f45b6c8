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
import hashlib
import logging
from dataclasses import dataclass

from .errors import ConflictError, S3ValidationError
from .identifiers import fold, looks_like_email, normalise_email, normalise_username
from .models import IndexEntry, User
from .storage import CorruptObjectError, Store, StoreConflict, Versioned, keys
from .storage.access import get_or_none
from .types import Clock

logger = logging.getLogger("s3auth_asgi")


def user_account_key(user_id: str) -> str:
    """What attempts at a user's password are counted under, whichever name was typed."""
    return f"user:{user_id}"


@dataclass(frozen=True, slots=True)
class NameLookup:
    """What the index says of a name as typed at a login: the first half of finding its
    user, and all that is needed to know which account an attempt is against."""

    identifier: str
    normalised: str | None
    """The unique form of the name; None when it cannot be a username or an email."""
    is_email: bool
    index: Versioned[IndexEntry] | None

    @property
    def user_id(self) -> str | None:
        """The id the index names (the user record may still be missing)."""
        return self.index.value.user_id if self.index is not None else None

    @property
    def account_key(self) -> str:
        """The user's id when the index names one, so that the username and the email of
        an account are one account; else the normalised name (an unknown name is an account
        too, or probing for names would be free); a name that does not even normalise is
        known by a digest of what was typed."""
        if self.user_id is not None:
            return user_account_key(self.user_id)
        if self.normalised is not None:
            return f"{'email' if self.is_email else 'username'}:{self.normalised}"
        raw = self.identifier.encode("utf-8", "surrogatepass")
        return "raw:" + hashlib.sha256(raw).hexdigest()[:32]


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
        return await self.owner(await self.lookup(identifier))

    async def lookup(self, identifier: str) -> NameLookup:
        """The index entry of a name (1 GET; none for a name that cannot be one)."""
        is_email = looks_like_email(identifier)
        try:
            if is_email:
                normalised = normalise_email(identifier)
                index_key = keys.email_index(normalised)
            else:
                normalised = normalise_username(identifier)
                index_key = keys.username_index(normalised)
        except S3ValidationError:
            return NameLookup(identifier, None, is_email, None)
        index = await get_or_none(self.store, index_key, IndexEntry)
        return NameLookup(identifier, normalised, is_email, index)

    async def owner(self, lookup: NameLookup) -> Versioned[User] | None:
        """The user a looked-up name belongs to, with its ETag (1 GET when indexed)."""
        if lookup.index is None:
            return None
        found = await get_or_none(self.store, keys.user(lookup.index.value.user_id), User)
        if found is None:
            return None
        # An index taken over from an unfinished registration may still name a record
        # that another writer finished late: only the owner of the name counts.
        user = found.value
        named = fold(user.email) if lookup.is_email else fold(user.username)
        return found if named == lookup.normalised else None
