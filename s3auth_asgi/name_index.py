"""The name index: `index/username/{digest}` and `index/email/{digest}` objects, each naming
the user that owns a username or an email. Creating one (If-None-Match) is what makes a
name unique; finding a user by name costs 2 GETs (index, user) however many users exist.
Beside the username, `index/skeleton/{digest}` reserves what it looks like (its TR39
skeleton, `identifiers.username_skeleton`), so that a look-alike of a name is taken too;
it is never read at a login.

Repair. Registration writes its index objects before the user object, and an email change
the new address's before the user object's new version, so a crash (or a lost answer)
leaves at most index objects naming a user that does not hold that name: a user that does
not exist, or one whose address is another. They log nobody in (`owner` checks), and once
both the entry and that user's record are `name_reservation_seconds` old (the store's
Last-Modified against the service clock: a change of address deletes the old entry just
after its record write, and must not find a new owner's there) the next claim of that name
takes the index over with a conditional replace.

A slow claim. The takeover is judged by the entry's age, so a claim whose own record write
is still under way after a reservation's time may have lost a name meanwhile, and its write
then lands on a name another user holds. So a claim that took that long (less the clock
skew allowance, `S3AUTH_REVOCATION_SKEW_SECONDS`: another host's clock may run that far
ahead) reads its entries back once its record is written (`ClaimTimer`, `NameIndex.held`)
and gives way if one names another user. A takeover, for its part, reads the record of the
user it judged to have abandoned the entry once more after its replace has landed: the
claim writes its record then reads its entry, the takeover writes the entry then reads the
record, so one of them at least sees the other's write. The claim gives way; the takeover
puts the entry back as it found it and gives way. So whatever the reservation time is, one
user per name holds, unless a takeover itself stalls a reservation's time between its
write and its read; a prompt claim reads nothing back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import NamedTuple

from .errors import (
    ConflictError,
    EmailTakenError,
    S3AuthError,
    S3ValidationError,
    UsernameTakenError,
)
from .identifiers import IDENTIFIER_MAX, fold, looks_like_email, normalise_email, normalise_username
from .models import IndexEntry, User
from .storage import CorruptObjectError, Store, StoreConflict, Versioned, keys
from .storage.access import delete_quietly, gather, get_or_none
from .types import Clock

logger = logging.getLogger("s3auth_asgi")


def account_keys(user: User) -> tuple[str, str]:
    """The budgets failed attempts at a user's password are charged to: one per name (its
    username's and its email's), each charged with every failure, so that whichever name
    is typed, its budget has counted the failures made under both."""
    return (
        f"username:{unique_name(user, is_email=False)}",
        f"email:{unique_name(user, is_email=True)}",
    )


def unique_name(user: User, *, is_email: bool) -> str:
    """The unique form of one of a user's names, as its index object is keyed."""
    return fold(user.email) if is_email else fold(user.username)


@dataclass(frozen=True, slots=True)
class NameLookup:
    """A name as typed at a login, and what the index says of it: the first half of
    finding its user. What a failed attempt is counted against follows from the name alone,
    so limits can be read before anything is."""

    identifier: str
    normalised: str | None
    """The unique form of the name; None when it cannot be a username or an email."""
    is_email: bool
    index: Versioned[IndexEntry] | None = None
    """The index entry, once read (`NameIndex.look_up`); None before, or when absent."""

    @property
    def user_id(self) -> str | None:
        """The id the index names (the user record may still be missing)."""
        return self.index.value.user_id if self.index is not None else None

    @property
    def account_key(self) -> str:
        """The budget of the name typed: the normalised name (an unknown name has one
        too, or probing for names would be free); a name that does not even normalise is
        known by a digest of what was typed."""
        if self.normalised is not None:
            return f"{'email' if self.is_email else 'username'}:{self.normalised}"
        raw = self.identifier.encode("utf-8", "surrogatepass")
        return "raw:" + hashlib.sha256(raw).hexdigest()[:32]

    def charged_accounts(self, owner: User | None) -> tuple[str, str]:
        """The budgets a wrong password is charged to, the typed name's first: both names
        of the account it belongs to; for a name that is nobody's, its own and a second one
        of its own, so that the failure costs the same requests either way."""
        if owner is None:
            return (self.account_key, "decoy:" + self.account_key)
        names = account_keys(owner)
        return names if names[0] == self.account_key else (names[1], names[0])

    @property
    def decoy_user_key(self) -> str:
        """A user object that does not exist, read for a name that is nobody's in place of
        the user a known name leads to: the same requests either way."""
        digest = hashlib.sha256(self.account_key.encode("utf-8", "surrogatepass"))
        return keys.user(digest.hexdigest()[:32])


class LoginCheck(NamedTuple):
    """The outcome of a password checked against a name."""

    user: User | None
    """The user, when the password matches and the account is active."""
    accounts: tuple[str, str]
    """The budgets a failure is charged to (`NameLookup.charged_accounts`)."""
    stale_device: bool = False
    """The password was not checked: the device the login showed predates a change that
    ended the account's sessions, so the attempt must be counted as one without it."""


def parse_name(identifier: str) -> NameLookup:
    """A name as typed, before the index is read: its unique form, if it has one."""
    is_email = looks_like_email(identifier)
    if len(identifier) > IDENTIFIER_MAX:  # not worth normalising
        return NameLookup(identifier, None, is_email)
    try:
        normalised = normalise_email(identifier) if is_email else normalise_username(identifier)
    except S3ValidationError:
        return NameLookup(identifier, None, is_email)
    return NameLookup(identifier, normalised, is_email)


@dataclass(frozen=True, slots=True)
class ClaimTimer:
    """When a claim began, by the service clock (which takeovers are judged by) and by the
    monotonic one (which no clock step moves back)."""

    wall: float
    monotonic: float


class NameIndex:
    """Reserves names for users and finds users by name."""

    def __init__(
        self, store: Store, *, clock: Clock, reservation_seconds: float, skew_seconds: float = 0
    ) -> None:
        self.store = store
        self.clock = clock
        self.reservation_seconds = reservation_seconds
        self.skew_seconds = skew_seconds

    def start_claim(self) -> ClaimTimer:
        return ClaimTimer(self.clock(), time.monotonic())

    async def held(self, reserved: list[str], user_id: str, started: ClaimTimer) -> list[str]:
        """Those of `reserved` that still name `user_id`: all of them, without a request,
        unless the claim begun at `started` has lasted long enough for another to take one
        over (see the module); then one GET each."""
        elapsed = max(self.clock() - started.wall, time.monotonic() - started.monotonic)
        if elapsed < self.reservation_seconds - self.skew_seconds:
            return reserved
        entries = await gather([get_or_none(self.store, k, IndexEntry) for k in reserved])
        return [
            key
            for key, entry in zip(reserved, entries, strict=True)
            if entry is not None and entry.value.user_id == user_id
        ]

    async def register(self, user: User) -> None:
        """Reserve a new user's names, then write its record; raise the taken error of a
        name lost to another claim meanwhile, with nothing of this one left behind."""
        started = self.start_claim()
        reserved = await self.reserve_names(user)
        record = keys.user(user.id)
        try:
            await self.store.create(record, user)
            held = await self.held(reserved, user.id, started)
        except BaseException:
            # The id is new, so deleting it cannot hit anybody else's user; it may have
            # been written even if the response was lost. An entry that cannot be shown
            # to be this claim's any more is left to expire.
            try:
                ours = await self.held(reserved, user.id, started)
            except S3AuthError:
                ours = []
            await delete_quietly(self.store, *ours, record)
            raise
        if len(held) < len(reserved):
            await delete_quietly(self.store, record, *held)
            lost = next(key for key in reserved if key not in held)
            raise dict(self._claims(user))[lost]()

    async def reserve(self, key: str, user_id: str, taken: type[ConflictError]) -> None:
        """Create the index object; take over one whose registration or change of address
        never finished (its user does not hold the name)."""
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
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        if (now - current.last_modified).total_seconds() < self.reservation_seconds:
            raise taken()
        try:
            owner = await self.store.get(keys.user(current.value.user_id), User)
        except CorruptObjectError:
            raise taken() from None
        if owner is not None and (
            key in self.name_keys(owner.value)
            # A user that has just let the name go (a change of address) deletes the entry
            # next: taken over before, the entry that deletion removes would be the new one.
            or (now - owner.last_modified).total_seconds() < self.reservation_seconds
        ):
            raise taken()
        try:
            etag = await self.store.replace(key, entry, current.etag)
        except StoreConflict:
            raise taken() from None
        # Its user's record was read before the replace, and a slow claim may have written
        # it since, then read the entry back before the replace landed (see the module).
        if await self._holds(key, current.value.user_id):
            with contextlib.suppress(StoreConflict, S3AuthError):
                await self.store.replace(key, current.value, etag)
            raise taken()
        logger.info("took over an index entry left by an unfinished name claim: %s", key)

    async def _holds(self, key: str, user_id: str) -> bool:
        """Whether the user's record holds the name of `key` (1 GET); a corrupt one is
        taken to."""
        try:
            owner = await self.store.get(keys.user(user_id), User)
        except CorruptObjectError:
            return True
        return owner is not None and key in self.name_keys(owner.value)

    async def reserve_names(self, user: User) -> list[str]:
        """Reserve a new user's names, in order: its username, the username's skeleton (a
        taken look is a taken username: same error), its email. On a refusal or a failure,
        release what was reserved before it and raise; else return the keys, for the
        caller to release if the user record cannot be written. An object whose write
        failed is left alone: it may be somebody else's, and is taken over once abandoned."""
        reserved: list[str] = []
        try:
            for key, taken in self._claims(user):
                await self.reserve(key, user.id, taken)
                reserved.append(key)
        except BaseException:
            if reserved:
                await delete_quietly(self.store, *reserved)
            raise
        return reserved

    @classmethod
    def name_keys(cls, user: User) -> list[str]:
        """The index objects that a user's names hold, to delete with the user."""
        return [key for key, _ in cls._claims(user)]

    @staticmethod
    def _claims(user: User) -> list[tuple[str, type[ConflictError]]]:
        claims: list[tuple[str, type[ConflictError]]] = [
            (keys.username_index(unique_name(user, is_email=False)), UsernameTakenError)
        ]
        # None: a user registered before skeletons were reserved holds none, and another
        # user may hold the skeleton of its name.
        if user.username_skeleton is not None:
            claims.append((keys.skeleton_index(user.username_skeleton), UsernameTakenError))
        claims.append((keys.email_index(unique_name(user, is_email=True)), EmailTakenError))
        return claims

    async def find(self, identifier: str) -> Versioned[User] | None:
        """The user an email or a username names (2 GETs), with its ETag."""
        return await self.owner(await self.lookup(identifier))

    async def lookup(self, identifier: str) -> NameLookup:
        """The index entry of a name (1 GET; none for a name that cannot be one)."""
        return await self.look_up(parse_name(identifier))

    async def look_up(self, name: NameLookup) -> NameLookup:
        """`name` with its index entry read (1 GET; none for a name that cannot be one)."""
        if name.normalised is None:
            return name
        if name.is_email:
            index_key = keys.email_index(name.normalised)
        else:
            index_key = keys.username_index(name.normalised)
        index = await get_or_none(self.store, index_key, IndexEntry)
        return dataclasses.replace(name, index=index)

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
        named = unique_name(user, is_email=lookup.is_email)
        return found if named == lookup.normalised else None
