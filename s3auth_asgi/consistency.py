"""What is inconsistent between the user records and the name index, found by reading all
of them, and the repair of the cases a repair cannot make worse (`s3auth doctor`).

The service mends on its own what a crash between two of its writes leaves (`name_claims`),
but not an object that cannot be read (torn by a crash on `file://`, or damaged by a hand
edit or another tool), nor a record and an index that disagree for such a cause. Both
listings are read `CHUNK` keys at a time, so memory is bounded by the chunk (and the
findings), not by the store:

- each user record: one that cannot be read (CORRUPT_USER); one stored under an id not its
  own (MISPLACED_USER); one a deletion closed and never finished, a reservation's time ago
  (UNFINISHED_DELETION); and for every other, a password hash above the ceiling of
  `hash_costs`, when one is given (COSTLY_HASH: no repair, a new password is the
  operator's), a TOTP seed sealed under a fallback secret key, when the seal is given
  (SEED_UNDER_FALLBACK, a warning: `record_findings`), and the entry of each of its names
  (username, skeleton, email): missing or released (OWN_ENTRY_MISSING; for the skeleton
  of a record from before skeletons were reserved, LOOKALIKE_UNRESERVED), unreadable
  (OWN_ENTRY_CORRUPT), naming another user (OWN_ENTRY_ELSEWHERE; LOOKALIKE_USERS, not a
  problem, when that user's record holds that skeleton too: `look_alikes`);
- each index entry: one that cannot be read and that no readable record holds
  (CORRUPT_ENTRY); one naming a user that does not exist (ENTRY_USER_MISSING: at its key,
  no record or another's copy, as every reader takes it: `open_records`) or whose
  record does not hold the name (ENTRY_NOT_HELD), once a reservation's time old, as the
  service judges abandonment: a younger one may be a claim under way; one an earlier
  version released naming a user, and that no record holds (RELEASED_ENTRY, not a
  problem: `leftovers`);
- the end of every session (`every_session`), which fails every revocation sync while it
  cannot be read (CORRUPT_NOT_BEFORE: no repair, ending every session is the operator's).

The kinds and the words of their details are `findings`'.

A repair (`repair=True`) is made once its chunk is checked, decided again on what the store
then holds (`name_repairs`): for OWN_ENTRY_* and LOOKALIKE_UNRESERVED, the record is read
again and, if it still holds the name, the entry is given back to it (`reclaim`: created
If-None-Match as a claim is), never taken from another user that holds it (a look-alike
that does is then reported as LOOKALIKE_USERS); ENTRY_USER_MISSING and ENTRY_NOT_HELD are
let go as a release lets one go (`release_abandoned`: deleted); UNFINISHED_DELETION is
finished by what the caller gives (`finish`), and RELEASED_ENTRY let go (`leftovers`). No
other user record is ever written or deleted: the other findings are the operator's.

Requests: 1 LIST per 1,000 keys of each of the 4 listings (users and the 3 indexes); 1 GET
per user record and, per living user, 1 GET per name (3), and of the user its skeleton
entry names if another; 1 GET per index entry and, unless it is released or younger than
a reservation, 1 GET of the user it names: some 10 GETs per user; 1 GET of the end of
every session. A repair: 1 GET of the
record and `reclaim`'s requests (1 GET and 1 PUT; 2 GETs more to take an entry over; for a
skeleton it could not give back, 2 GETs more: the entry and the user it names), or
`release_abandoned`'s (3 GETs, 1 PUT, 1 DELETE), or `leftovers`'.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec

from . import every_session, leftovers
from .findings import (
    CHANGED,
    CORRUPT_ENTRY,
    CORRUPT_USER,
    ELSEWHERE,
    ENTRY_NOT_HELD,
    ENTRY_USER_MISSING,
    LOST,
    MISPLACED_USER,
    OWN_ENTRY,
    OWN_ENTRY_CORRUPT,
    OWN_ENTRY_ELSEWHERE,
    OWN_ENTRY_MISSING,
    RELEASED_ENTRY,
    SEED_UNDER_FALLBACK,
    TORN,
    Finding,
    finding,
    label,
)
from .hash_costs import CostCeiling
from .identifiers import is_id
from .leftovers import Finish
from .look_alikes import (
    LOOKALIKE_UNRESERVED,
    LOOKALIKE_USERS,
    PAIR_LEFT,
    holder_alike,
    pair_detail,
    unreserved_detail,
)
from .models import IndexEntry, User
from .name_index import NameIndex
from .open_records import open_record, own_record
from .record_findings import costly_hash, seed_under_fallback
from .storage import CorruptObjectError, Versioned, keys
from .storage.access import batches, gather, get_or_none
from .totp_seeds import SeedSeal

CHUNK = 64
"""Keys of a listing checked at once (the reads of a chunk go 16 at a time: `gather`)."""


class StateCheck:
    """One run over the store of `names`; `report` gets each chunk's findings in listing
    order."""

    def __init__(
        self,
        names: NameIndex,
        report: Callable[[Finding], object],
        *,
        repair: bool = False,
        finish: Finish | None = None,
        ceiling: CostCeiling | None = None,
        seeds: SeedSeal | None = None,
    ) -> None:
        self.names = names
        self.ceiling = ceiling
        """The most a stored password hash may cost to verify; without it, none is judged."""
        self.seeds = seeds
        """The seal of TOTP seeds, with the fallback keys; without it, no seed is judged."""
        self.store = names.store
        self.report = report
        self.repair = repair
        self.finish = finish
        """What finishes an unfinished deletion (`leftovers`); without it, none is."""
        self.users = 0
        self.entries = 0
        self.problems = 0
        self.repaired = 0
        self.lookalikes = 0
        """Pairs of users that look alike (LOOKALIKE_USERS): reported, not problems, since
        nothing is left for a repair or the operator to mend in the store."""
        self.fallback_seeds = 0
        """Seeds sealed under a fallback secret key (SEED_UNDER_FALLBACK): a warning."""
        self.released = 0
        self.let_go = 0
        """Entries released naming a user (RELEASED_ENTRY), and of them those a repair let
        go: reported, not problems (`leftovers`)."""
        self._held: set[str] = set()
        """Unreadable or released entries a living record holds, reported (once) with the
        record."""

    async def run(self) -> None:
        await self._each(keys.USERS, self._user)
        for prefix in keys.NAME_INDEXES:
            await self._each(prefix, self._entry)
        await self._check(
            [keys.SESSIONS_NOT_BEFORE], lambda _: every_session.unreadable(self.store)
        )

    async def _each(self, prefix: str, check: Callable[[str], Awaitable[list[Finding]]]) -> None:
        listed = (info.key async for info in self.store.list(prefix))
        async for chunk in batches(listed, CHUNK):
            await self._check(chunk, check)

    async def _check(
        self, chunk: list[str], check: Callable[[str], Awaitable[list[Finding]]]
    ) -> None:
        for found in await gather([check(key) for key in chunk]):
            for item in found:
                settled = await self._settle(item) if self.repair else item
                self.report(settled)
                if settled.kind == LOOKALIKE_USERS:
                    self.lookalikes += 1
                elif settled.kind == SEED_UNDER_FALLBACK:
                    self.fallback_seeds += 1
                elif settled.kind == RELEASED_ENTRY:
                    self.released += 1
                    self.let_go += bool(settled.repaired)
                else:
                    self.problems += 1
                    self.repaired += bool(settled.repaired)

    async def _user(self, key: str) -> list[Finding]:
        user_id = keys.id_from_key(key)
        if not (is_id(user_id) and key == keys.user(user_id)):
            return []  # another tool's object
        self.users += 1
        try:
            found = await self.store.get(key, User)
        except CorruptObjectError:
            detail = (
                f"user {user_id}'s record cannot be read: it cannot log in, and its names "
                f"stay taken; `s3auth user delete {user_id}` deletes it (its names are then "
                "free once abandoned)"
            )
            return [finding(CORRUPT_USER, key, user_id, detail)]
        if found is None:  # deleted since the listing
            return []
        user = found.value
        if own_record(found, user_id) is None:
            detail = (
                f"the record here is user {user.id}'s: a copy no login finds, whose names were "
                "not checked; remove it by hand once you know where it came from"
            )
            return [finding(MISPLACED_USER, key, user.id, detail)]
        if user.deleting:
            if not self.names.is_old(found):
                return []  # a deletion under way
            finishable = self.finish is not None
            return [leftovers.unfinished_deletion(key, user_id, finishable=finishable)]
        own = [await self._own_entry(user, name) for name in self.names.name_keys(user)]
        alone = [costly_hash(self.ceiling, key, user), seed_under_fallback(self.seeds, key, user)]
        return [item for item in [*alone, *own] if item is not None]

    async def _own_entry(self, user: User, key: str) -> Finding | None:
        user_id, name = user.id, label(key)
        try:
            entry = await self.store.get(key, IndexEntry)
        except CorruptObjectError:
            self._held.add(key)
            detail = f"user {user_id}'s {name} entry cannot be read: {TORN[name]}"
            return finding(OWN_ENTRY_CORRUPT, key, user_id, detail)
        if entry is None or entry.value.released:
            self._held.add(key)
            if name == "skeleton" and user.username_skeleton is None:
                return finding(LOOKALIKE_UNRESERVED, key, user_id, unreserved_detail(user_id))
            detail = f"user {user_id}'s {name} entry is missing or released: {LOST[name]}"
            return finding(OWN_ENTRY_MISSING, key, user_id, detail)
        other = entry.value.user_id
        if other != user_id:
            pair = await self._look_alike(user, key, other)
            if pair is not None:
                return pair
            detail = f"user {user_id}'s {name} entry names user {other}: {ELSEWHERE[name]}"
            return finding(OWN_ENTRY_ELSEWHERE, key, user_id, detail)
        return None

    async def _look_alike(self, user: User, key: str, other_id: str) -> Finding | None:
        """The finding that `user` and `other_id` look alike, when `key` is the skeleton
        entry of both their records (1 GET: `holder_alike`)."""
        other = await holder_alike(self.names, key, other_id)
        if other is None:
            return None
        detail = pair_detail(user, other)
        return Finding(
            kind=LOOKALIKE_USERS,
            key=key,
            user_id=user.id,
            other_user_id=other.id,
            detail=detail,
            repair=None,
        )

    async def _entry(self, key: str) -> list[Finding]:
        if not keys.is_index_entry(key):
            return []  # another tool's object
        self.entries += 1
        name = label(key)
        try:
            found = await self.store.get(key, IndexEntry)
        except CorruptObjectError:
            if key in self._held:
                return []
            detail = (
                f"this {name} entry cannot be read, and no readable record holds its name: "
                "it stays taken for good, since whose it was cannot be read (a record that "
                "cannot be read may hold it)"
            )
            return [finding(CORRUPT_ENTRY, key, None, detail)]
        if found is not None and found.value.released and key not in self._held:
            leftover = leftovers.released_entry(key, found.value)
            return [leftover] if leftover is not None else []
        if found is None or found.value.released or not self.names.is_old(found):
            return []  # deleted since the listing, free, or maybe a claim under way
        owner_id = found.value.user_id
        owner: Versioned[User] | None = None
        if is_id(owner_id):
            try:
                owner = own_record(await self.store.get(keys.user(owner_id), User), owner_id)
            except CorruptObjectError:
                return []  # it may hold the name: reported with the record
        if owner is None:
            named = (
                f"user {owner_id}, which does not exist (a claim"
                if owner_id
                else "nobody (a release"
            )
            detail = (
                f"this {name} entry names {named} that never finished): the name is taken "
                "until its next registration takes it over"
            )
            return [finding(ENTRY_USER_MISSING, key, owner_id, detail)]
        if not self.names.holds_name(key, owner):
            detail = (
                f"this {name} entry names user {owner_id}, whose record does not hold the name "
                "(a claim or change of address that never finished): the name is taken until "
                "its next registration takes it over"
            )
            return [finding(ENTRY_NOT_HELD, key, owner_id, detail)]
        return []

    async def _settle(self, item: Finding) -> Finding:
        """`item` with what its repair came to."""
        if item.kind == LOOKALIKE_USERS:
            return msgspec.structs.replace(item, repaired=False, outcome=PAIR_LEFT)
        if item.repair is None:
            return msgspec.structs.replace(item, repaired=False, outcome="no repair is safe")
        failure: str | None
        if item.kind in OWN_ENTRY:
            assert item.user_id is not None
            given = await self._give_back(item.user_id, item.key)
            if isinstance(given, Finding):  # a look-alike registered meanwhile holds it
                return msgspec.structs.replace(given, repaired=False, outcome=PAIR_LEFT)
            failure = given
        elif item.kind in leftovers.KINDS:
            failure = await leftovers.settle(item, self.names, self.finish)
        elif await self.names.release_abandoned(item.key):
            failure = None
        else:
            failure = CHANGED
        if failure is not None:
            return msgspec.structs.replace(item, repaired=False, outcome=failure)
        return msgspec.structs.replace(item, repaired=True, outcome=item.repair)

    async def _give_back(self, user_id: str, key: str) -> str | Finding | None:
        """Why the entry of `key` could not be given back to the user; None when it was;
        when it is a skeleton entry that another user holds, the finding that the two look
        alike (2 GETs more: the entry, and the user it names)."""
        try:
            record = open_record(await self.store.get(keys.user(user_id), User), user_id)
        except CorruptObjectError:
            return CHANGED
        if record is None or key not in self.names.name_keys(record.value):
            return CHANGED
        if await self.names.reclaim(key, user_id) is None:
            if key.startswith(keys.SKELETON_INDEX):
                entry = await get_or_none(self.store, key, IndexEntry)
                other = entry.value.user_id if entry and not entry.value.released else user_id
                pair = (
                    await self._look_alike(record.value, key, other) if other != user_id else None
                )
                if pair is not None:
                    return pair
            return (
                "not repaired: another user's claim holds the entry, or it changed since it "
                "was read; which account keeps the name is for you to decide"
            )
        return None
