"""The name index: `index/username/{digest}` and `index/email/{digest}` objects, each naming
the user that owns a username or an email. Creating one (If-None-Match) is what makes a
name unique; finding a user by name costs 2 GETs (index, user) however many users exist.
Beside the username, `index/skeleton/{digest}` reserves what it looks like (its TR39
skeleton, `identifiers.username_skeleton`), so that a look-alike of a name is taken too;
it is never read at a login.

How an entry is claimed, repaired when a claim never finished, and let go, so that one
user per name holds under any interleaving: `name_claims`; what an operator can have
repaired besides: `name_repairs`. An entry that was let go names
nobody: a look-up treats it as absent.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import NamedTuple

from .errors import S3AuthError, S3ValidationError
from .identifiers import IDENTIFIER_MAX, looks_like_email, normalise_email, normalise_username
from .models import IndexEntry, User
from .name_claims import Claim, unique_name
from .name_repairs import NameRepairs
from .open_records import open_record
from .storage import Versioned, keys
from .storage.access import get_or_none


def owner_account(user_id: str) -> str:
    """What is counted against an account, by its user id, whichever of its names is
    typed: no name normalises to `user:` (`NameLookup.account_key`)."""
    return f"user:{user_id}"


def account_keys(user: User) -> tuple[str, str]:
    """A user's two names, username and email, as a login that types them knows them
    (`NameLookup.account_key`)."""
    return (
        f"username:{unique_name(user, is_email=False)}",
        f"email:{unique_name(user, is_email=True)}",
    )


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

    @property
    def owner_key(self) -> str:
        """What is counted against the account the name leads to, once the index is read:
        the owner's (`owner_account`), whichever of its names was typed; for a name that is
        nobody's, that name's own (`account_key`), read at the same cost."""
        return owner_account(self.user_id) if self.user_id is not None else self.account_key

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


class NameIndex(NameRepairs):
    """Reserves names for users and finds users by name."""

    async def register(self, user: User) -> None:
        """Reserve a new user's names, then write its record; raise the taken error of a
        name lost to another claim meanwhile, with nothing of this one left behind."""
        started = self.start_claim()
        claims = await self.reserve_names(user)
        try:
            await self.store.create(keys.user(user.id), user)
            held = await self.held(claims, started)
        except BaseException:
            await self._withdraw(user, claims)
            raise
        if len(held) < len(claims):
            await self._withdraw(user, held)
            lost = next(claim.key for claim in claims if claim not in held)
            raise dict(self._claims(user))[lost]()

    async def _withdraw(self, user: User, claims: list[Claim]) -> None:
        """Delete a registration's record, then release its names: a name must not be free
        while a record may hold it, so if the record cannot be deleted they stay (the user
        may exist; if not, they are taken over once abandoned). The id is new, so deleting
        the record cannot hit anybody else's user; it may have been written even if the
        answer was lost."""
        try:
            await self.store.delete(keys.user(user.id))
        except S3AuthError:
            return
        await self.release(claims)

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
        if index is not None and index.value.released:
            index = None
        return dataclasses.replace(name, index=index)

    async def owner(self, lookup: NameLookup) -> Versioned[User] | None:
        """The user a looked-up name belongs to, with its ETag (1 GET when indexed)."""
        if lookup.index is None:
            return None
        user_id = lookup.index.value.user_id
        # A record closed by a deletion that has not finished, or another user's copied to
        # this id's key, belongs to nobody (`open_records`).
        found = open_record(await get_or_none(self.store, keys.user(user_id), User), user_id)
        if found is None:
            return None
        # An index taken over from an unfinished registration may still name a record
        # that another writer finished late: only the owner of the name counts.
        user = found.value
        named = unique_name(user, is_email=lookup.is_email)
        return found if named == lookup.normalised else None
