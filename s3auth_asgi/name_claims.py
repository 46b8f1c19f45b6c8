"""Claiming a name's index entry (`name_index`) for a user, and letting it go.

The model. A claim creates the entry (If-None-Match), or replaces (If-Match) one that is
free: absent, released, or abandoned by a claim that never finished. Every change of an
entry is conditioned on the version it was decided on, so none can undo a change that it
has not seen; the one DELETE, a release's, removes an entry that no claim can take yet
(Release, below).

Repair. Registration writes its index entries before the user object, and an email change
the new address's before the user object's new version, so a crash (or a lost answer)
leaves at most entries naming a user that does not hold that name: a user that does not
exist, or one whose address is another. They log nobody in (`NameIndex.owner` checks), and
once the entry is `name_reservation_seconds` old (the store's Last-Modified against the
service clock) the next claim of that name takes it over.

A slow claim. The takeover is judged by the entry's age, so a claim whose own record write
is still under way after a reservation's time may have lost a name meanwhile, and its write
then lands on a name another user holds. So a claim that took that long (less the clock
skew allowance, `S3AUTH_REVOCATION_SKEW_SECONDS`: another host's clock may run that far
ahead) reads its entries back once its record is written (`ClaimTimer`, `held`) and gives
way if one is not as it wrote it. A takeover, for its part, reads the record of the user
it judged to have abandoned the entry once more after its replace has landed: the claim
writes its record then reads its entry, the takeover writes the entry then reads the
record, so one of them at least sees the other's write. The claim gives way; the takeover
puts the entry back as it found it and gives way. So whatever the reservation time is, one
user per name holds, unless a takeover itself stalls a reservation's time between its
write and its read; a prompt claim reads nothing back.

A change of address that gives way puts its old address back in the record. While the
record held the new one, the old address's entry named a user whose record did not hold
it, and looked abandoned once old; so the record names the address it is letting go
(`User.releasing_email`), which counts as held until a reservation's time after the record
write, and the undo puts back an address nobody could take meanwhile.

Release. A release is conditioned on the version its user held: the one its claim wrote,
or one read while its record held the name; and it is made only once no record can hold
that version any more. A registration that gives way deletes its record first; a change of
address reads the old entry before writing the new address into the record, and releases
it after. A deletion first closes the record (an If-Match write after which no change
applies to it: `user_records`), so that it lets go the names of the version it closed,
whatever change of address landed after its first read; once the record is deleted, it
reads their entries and that of the address the last change let go (the id is never used
again, so whatever version names it then is nobody's). If the entry has changed since
(taken over as abandoned, or released and claimed again), the release fails and the entry
is left to its new claim.

A release removes the entry, in two steps, so that nothing of a name let go stays in the
store (its key is an unkeyed digest of the name, which anyone who can list the bucket can
test a name against). A DELETE cannot be conditioned on the version on every store: it
removes whatever is there when it lands, and a claim of the name just before it would lose
its entry, and a second account could then register the name. So the entry is first
*retired*: replaced, with If-Match on the version the release is conditioned on, by one
that names nobody (an empty user id) and is not released, which no claim takes over until
it is a reservation's time old (an entry whose user does not hold its name: abandoned);
then deleted. A claim that meets it in between is refused as for a name that is taken,
which it was a moment before. The DELETE is sent only while the retirement is younger than
a reservation's time, less the clock-skew allowance (`held` judges a slow claim so); a
release that took longer leaves the retired entry to be taken over once abandoned, or
removed by an operator's repair (`name_repairs`). A release cut short between its steps
leaves the same. Where the reservation time is no longer than the skew allowance, a retired
entry could be taken over at once, so none is deleted: a release marks the entry released
instead, naming nobody, and it stays. Each claim writes a random `IndexEntry.claim`,
because on S3 and `file://` a version is a digest of the content: when a user takes an
address back while an earlier change is still letting it go, the new claim's entry must
differ from the one that change read.

A torn entry. One that cannot be read (a crash cut it short) says whose it was no more, so
no claim takes it over: its user's record may hold the name. A release made while the
user's record holds the name (a deletion's, of the closed version's names; a change of
address's, of the old address) lets it go all the same, conditioned on its version: no
other claim takes a name a record holds, so it can only be that user's; for the same reason
an operator's repair gives it back to that user (`name_repairs`, `s3auth doctor`).

Records from before skeletons. A user registered before skeletons were reserved (by 0.1)
reserved none, and its record names none (`User.username_skeleton`); it holds its
username's skeleton as computed now all the same. So an entry that reserves it for that
user (an operator's repair writes it, as a claim would: `s3auth doctor --repair`) is not
taken for abandoned, and a 0.1 process that rewrites the record in 0.1's shape, which drops
the fields 0.1 does not know, takes nothing from it: a skeleton written into the record
would go with them. Until that entry is written, a look-alike may register and claim it:
two records then hold it, which no repair undoes, and a torn entry of it may be either's.
Computed, the skeleton moves with ICU's Unicode data: the entry of the old one is then
held no more (taken over once abandoned), and the next repair reserves the new one.
A released entry (`IndexEntry.released`: earlier versions' releases) names nobody, and a
claim takes it over at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from .errors import ConflictError, EmailTakenError, S3AuthError, UsernameTakenError
from .identifiers import fold, is_id, username_skeleton
from .models import IndexEntry, User
from .open_records import own_record
from .storage import CorruptObjectError, Store, StoreConflict, Versioned, keys
from .storage.access import gather, get_or_none
from .types import Clock

logger = logging.getLogger("s3auth_asgi")

CLAIM_BYTES = 8


def unique_name(user: User, *, is_email: bool) -> str:
    """The unique form of one of a user's names, as its index entry is keyed."""
    return fold(user.email) if is_email else fold(user.username)


def held_skeleton(user: User) -> str:
    """The skeleton of its username that a user's record holds: the one its registration
    reserved, or, in a record from before skeletons were reserved, the one computed now
    (see the module)."""
    if user.username_skeleton is not None:
        return user.username_skeleton
    return username_skeleton(user.username)


class Claim(NamedTuple):
    """An entry as a claim wrote it, or as read while its user held the name: what a
    release is conditioned on."""

    key: str
    entry: IndexEntry
    etag: str


@dataclass(frozen=True, slots=True)
class ClaimTimer:
    """When a claim began, by the service clock (which takeovers are judged by) and by the
    monotonic one (which no clock step moves back)."""

    wall: float
    monotonic: float


class NameClaims:
    """Claims and releases of index entries. A part of `NameIndex`, which knows which
    entries a user's names are."""

    def __init__(
        self, store: Store, *, clock: Clock, reservation_seconds: float, skew_seconds: float = 0
    ) -> None:
        self.store = store
        self.clock = clock
        self.reservation_seconds = reservation_seconds
        self.skew_seconds = skew_seconds

    def start_claim(self) -> ClaimTimer:
        return ClaimTimer(self.clock(), time.monotonic())

    async def held(self, claims: list[Claim], started: ClaimTimer) -> list[Claim]:
        """Those of `claims` whose entries are still as they wrote them: all of them,
        without a request, unless the claim begun at `started` has lasted long enough for
        another to take one over (see the module); then one GET each."""
        if self._prompt(started):
            return claims
        entries = await gather([get_or_none(self.store, c.key, IndexEntry) for c in claims])
        return [
            claim
            for claim, entry in zip(claims, entries, strict=True)
            if entry is not None and entry.value == claim.entry
        ]

    def _prompt(self, started: ClaimTimer) -> bool:
        """Whether what began at `started` is too recent for another to have taken over an
        entry it wrote, on any clock within the skew allowance."""
        elapsed = max(self.clock() - started.wall, time.monotonic() - started.monotonic)
        return elapsed < self.reservation_seconds - self.skew_seconds

    async def reserve(self, key: str, user_id: str, taken: type[ConflictError]) -> Claim:
        """Claim the entry for `user_id`: create it, or take over one that is free (released,
        or abandoned by a claim that never finished); `taken` if it is not."""
        entry = IndexEntry(user_id, claim=secrets.token_hex(CLAIM_BYTES))
        try:
            return Claim(key, entry, await self.store.create(key, entry))
        except StoreConflict:
            pass
        current = await get_or_none(self.store, key, IndexEntry)
        try:
            if current is None:  # corrupt, or deleted meanwhile (released)
                return Claim(key, entry, await self.store.create(key, entry))
            return Claim(key, entry, await self._take_over(key, current, entry))
        except StoreConflict:
            raise taken() from None

    async def _take_over(self, key: str, current: Versioned[IndexEntry], entry: IndexEntry) -> str:
        """Replace `current`, the entry of `key`, with `entry` if it is free: released, or
        abandoned by a claim that never finished. The new version; StoreConflict when it is
        not free, or changed meanwhile, or its user turns out to hold it after all."""
        previous = current.value
        free = previous.released or (
            self.is_old(current) and not await self._holds(key, previous.user_id)
        )
        if not free:
            raise StoreConflict(key)
        etag = await self.store.replace(key, entry, current.etag)
        if previous.released:
            return etag
        # Its user's record was read before the replace, and a slow claim may have written
        # it since, then read the entry back before the replace landed (see the module).
        if await self._holds(key, previous.user_id):
            with contextlib.suppress(StoreConflict, S3AuthError):
                await self.store.replace(key, previous, etag)
            raise StoreConflict(key)
        logger.info("replaced an index entry left by an unfinished name claim: %s", key)
        return etag

    def is_old(self, found: Versioned[IndexEntry] | Versioned[User]) -> bool:
        """Whether an object was written a reservation's time ago or more."""
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        return (now - found.last_modified).total_seconds() >= self.reservation_seconds

    async def _holds(self, key: str, user_id: str) -> bool:
        """Whether the user's record holds the name of `key` (1 GET); a corrupt one is
        taken to, and one a deletion closed does until it is deleted; another user's copied
        to its key is nobody's (`open_records`). An entry naming no id at all (a hand edit)
        names no record."""
        if not is_id(user_id):
            return False
        try:
            owner = own_record(await self.store.get(keys.user(user_id), User), user_id)
        except CorruptObjectError:
            return True
        return owner is not None and self.holds_name(key, owner)

    def holds_name(self, key: str, owner: Versioned[User]) -> bool:
        """Whether the record `owner` holds the name of `key` (whose record it is, the
        caller asks `open_records`)."""
        user = owner.value
        if key in self.name_keys(user):
            return True
        # An address a change is letting go stays its user's while that change may still
        # be under way (it may put the address back); a release makes it free at once.
        return key == self.releasing_key(user) and not self.is_old(owner)

    @classmethod
    def name_keys(cls, user: User) -> list[str]:
        """The entries that a user's names hold."""
        return [key for key, _ in cls._claims(user)]

    @staticmethod
    def releasing_key(user: User) -> str | None:
        """The entry of the address the user's last change of address let go, if any."""
        return keys.email_index(fold(user.releasing_email)) if user.releasing_email else None

    @staticmethod
    def _claims(user: User) -> list[tuple[str, type[ConflictError]]]:
        return [
            (keys.username_index(unique_name(user, is_email=False)), UsernameTakenError),
            (keys.skeleton_index(held_skeleton(user)), UsernameTakenError),
            (keys.email_index(unique_name(user, is_email=True)), EmailTakenError),
        ]

    async def reserve_names(self, user: User) -> list[Claim]:
        """Claim a new user's names, in order: its username, the username's skeleton (a
        taken look is a taken username: same error), its email. On a refusal or a failure,
        release those claimed before it and raise. An entry whose write failed is left
        alone: it may be somebody else's, and is taken over once abandoned."""
        claims: list[Claim] = []
        try:
            for key, taken in self._claims(user):
                claims.append(await self.reserve(key, user.id, taken))
        except BaseException:
            await self.release(claims)
            raise
        return claims

    async def holding(self, key: str, user_id: str, *, record_holds: bool) -> Claim | None:
        """The entry of `key` as a claim of `user_id`'s, to release once its record no
        longer holds the name; None when it names nobody or another (1 GET). One that
        cannot be read (a crash tore it) is the user's when its record holds the name
        (`record_holds`): no other claim takes a name a record holds."""
        try:
            found = await self.store.get(key, IndexEntry)
        except CorruptObjectError as exc:
            if not record_holds or exc.etag is None:
                return None
            logger.warning("letting go of its user's unreadable index entry %s", key)
            return Claim(key, IndexEntry(user_id, claim=secrets.token_hex(CLAIM_BYTES)), exc.etag)
        if found is None or found.value.released or found.value.user_id != user_id:
            return None
        return Claim(key, found.value, found.etag)

    async def release(self, claims: Iterable[Claim]) -> None:
        """Let the names of `claims` go, each only if its entry is still the claim's version:
        retired (1 conditional PUT each, at once), then deleted (1 batch DELETE; see the
        module). Best effort, as clean-ups are: an entry left naming a user that does not
        hold its name, or nobody, is taken over once abandoned."""
        started = self.start_claim()
        retired = await gather([self._retire(claim) for claim in claims])
        await self.delete_retired([key for key in retired if key is not None], started)

    async def release_names(self, user: User) -> None:
        """Once `user`'s record is deleted: release the entries that still name it,
        whichever version (no record can hold one any more), of its names and of the
        address its last change of address let go (that change may not have released it
        yet). 1 GET per entry, at once, then `release`'s requests for those still naming
        it; best effort, as `release`."""

        names = self.name_keys(user)

        async def held_by_user(key: str) -> Claim | None:
            try:
                return await self.holding(key, user.id, record_holds=key in names)
            except S3AuthError:
                return None

        releasing = self.releasing_key(user)
        let_go = [*names, releasing] if releasing is not None and releasing not in names else names
        held = await gather([held_by_user(key) for key in let_go])
        await self.release([claim for claim in held if claim is not None])

    @property
    def deletes_released(self) -> bool:
        """Whether a release deletes the entry: only where a retired one is not free for a
        while on every clock within the skew allowance (see the module). Elsewhere it is
        marked released, naming nobody, and stays."""
        return self.reservation_seconds > self.skew_seconds

    def retired_entry(self) -> IndexEntry:
        """What an entry let go is replaced with: one naming nobody, taken over only once
        abandoned, or released where it cannot be deleted (`deletes_released`)."""
        claim = secrets.token_hex(CLAIM_BYTES)
        return IndexEntry("", claim=claim, released=not self.deletes_released)

    async def _retire(self, claim: Claim) -> str | None:
        """The claim's key once its entry is retired; None when it is not the claim's
        version any more (claimed again meanwhile) or the store failed."""
        try:
            await self.store.replace(claim.key, self.retired_entry(), claim.etag)
        except (StoreConflict, S3AuthError):
            return None
        return claim.key

    async def delete_retired(self, retired: list[str], started: ClaimTimer) -> None:
        """Delete the entries `retired` since `started` (1 batch DELETE), while no claim can
        have taken one over (see the module); best effort."""
        if retired and self.deletes_released and self._prompt(started):
            with contextlib.suppress(S3AuthError):
                await self.store.delete_many(retired)
