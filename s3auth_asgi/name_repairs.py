"""Repairs of the name index that an operator asks for (`s3auth doctor`, `consistency`),
made with the conditional writes of `name_claims` and judged as its claims are, on what the
store holds when each is made:

- an entry given back to the user whose record holds its name, when the entry is missing,
  released, unreadable, or left naming another user by a claim that never finished. One
  that cannot be read is that user's, as a release takes it to be (`name_claims`: no other
  claim takes a name a record holds), so it is replaced, conditioned on its version;
- an entry left by a claim that never finished (naming a user that does not exist, or
  nobody, or a user whose record does not hold the name, a reservation's time after it was
  written) let go as a takeover would take it: retired, and put back if its user's record
  turns out to hold the name after all, then deleted, as a release deletes an entry
  (`name_claims`);
- an entry an earlier version released naming the user that let it go (releases now name
  nobody) let go as a release now lets one go: retired with If-Match on the version read,
  then deleted, under a release's timing rule. Released, it is free for any claim at once,
  so one made meanwhile wins (the retirement fails), and one made after it is refused as
  for a name that is taken, which it was a moment before.
"""

from __future__ import annotations

import secrets

from .models import IndexEntry
from .name_claims import CLAIM_BYTES, Claim, NameClaims
from .storage import CorruptObjectError, StoreConflict, Versioned
from .storage.access import get_or_none


class NameRepairs(NameClaims):
    """The repairs; a part of `NameIndex`."""

    async def reclaim(self, key: str, user_id: str) -> Claim | None:
        """The entry of `key` given back to `user_id`, whose record the caller has just read
        holding the name: created when absent, replaced when unreadable (on its version),
        taken over when released or abandoned. None when another user's claim holds it, or
        it changed meanwhile. 1 GET and 1 PUT; taking over an abandoned entry, 2 GETs more
        (its user's record, before and after)."""
        entry = IndexEntry(user_id, claim=secrets.token_hex(CLAIM_BYTES))
        current: Versioned[IndexEntry] | None = None
        torn: str | None = None
        try:
            current = await self.store.get(key, IndexEntry)
        except CorruptObjectError as exc:
            if exc.etag is None:  # the store did not say which version it could not read
                return None
            torn = exc.etag
        try:
            if torn is not None:
                return Claim(key, entry, await self.store.replace(key, entry, torn))
            if current is None:
                return Claim(key, entry, await self.store.create(key, entry))
            if not current.value.released and current.value.user_id == user_id:
                return Claim(key, current.value, current.etag)  # given back meanwhile
            return Claim(key, entry, await self._take_over(key, current, entry))
        except StoreConflict:
            return None

    async def release_abandoned(self, key: str) -> bool:
        """Let go of the entry of `key` if a claim that never finished left it; whether it
        was. 1 GET; when abandoned, 2 GETs of its user's record (none for an entry naming
        nobody), 1 conditional PUT and 1 DELETE."""
        current = await get_or_none(self.store, key, IndexEntry)
        if current is None or current.value.released:
            return False
        started = self.start_claim()
        try:
            await self._take_over(key, current, self.retired_entry())
        except StoreConflict:
            return False
        await self.delete_retired([key], started)
        return True

    async def release_leftover(self, key: str) -> bool:
        """Let go of the entry of `key` if it is released and names a user (see the module);
        whether it was. 1 GET; when it is, 1 conditional PUT and 1 DELETE."""
        current = await get_or_none(self.store, key, IndexEntry)
        if current is None or not (current.value.released and current.value.user_id):
            return False
        started = self.start_claim()
        try:
            await self.store.replace(key, self.retired_entry(), current.etag)
        except StoreConflict:
            return False
        await self.delete_retired([key], started)
        return True
