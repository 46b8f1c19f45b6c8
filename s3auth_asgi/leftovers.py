"""What a deletion leaves of its account's owner that `s3auth doctor` finds (`consistency`),
and the repair of it, so that once the sweep has run nothing in the store identifies the
owner of a deleted account ("What a deletion leaves", docs/accounts.md):

- UNFINISHED_DELETION: a record that a deletion closed and did not delete, a reservation's
  time ago. It keeps the account's names, address and password hash, and its names stay
  taken. The repair is that deletion, finished as a deletion by the id finishes it
  (`Finish`, which the caller gives: the service's `finish_deletion`, and the audit event
  of an administrator's deletion), of a record only while it is still closed: one put back
  open since it was read (a backup restored) is neither closed nor deleted. A deletion of
  the id racing it, or another run's repair, makes the same steps, each conditioned as the
  service's own (`user_directory`): whichever lands first, the other changes nothing, and
  no entry a new claim of a name holds is let go;
- RELEASED_ENTRY: an index entry that an earlier version released (`IndexEntry.released`)
  still naming the user that let it go: a deleted user, or one that moved off the name.
  Nothing is wrong with it (it is free, and the next claim of its name takes it over), so
  it is reported as a warning, not as a problem; but until then it ties a name, whose
  digest anyone who can list the bucket can test, to that user's id. Its repair lets it
  go as a release now does (`NameRepairs.release_leftover`). One whose user's record holds
  the name is that user's own missing entry, reported and given back with the record
  (OWN_ENTRY_MISSING).

Requests: an unfinished deletion's repair, `delete_user`'s of a closed record (13 with
sessions: `user_directory`), and the event's PUT; of a record open again, 1 GET. A
released entry's: 1 GET, 1 PUT and 1 DELETE.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .findings import CHANGED, RELEASED_ENTRY, UNFINISHED_DELETION, Finding, finding, label
from .models import IndexEntry
from .name_index import NameIndex

Finish = Callable[[str], Awaitable[bool]]
"""Finish the deletion of a user whose record a deletion closed; whether it did (False when
no closed record was there)."""
KINDS = (UNFINISHED_DELETION, RELEASED_ENTRY)


def unfinished_deletion(key: str, user_id: str, *, finishable: bool) -> Finding:
    detail = (
        f"user {user_id}'s deletion closed the record and did not finish: the account logs "
        f"nobody in and its names stay taken; `s3auth user delete {user_id}` finishes it"
    )
    found = finding(UNFINISHED_DELETION, key, user_id, detail)
    if not finishable:
        found.repair = None
    return found


def released_entry(key: str, entry: IndexEntry) -> Finding | None:
    """The finding of the entry of `key`, if it is released and names a user."""
    if not (entry.released and entry.user_id):
        return None
    detail = (
        f"this {label(key)} entry was released by an earlier version and still names user "
        f"{entry.user_id}: its name is free, but the entry ties it to that user's id"
    )
    return finding(RELEASED_ENTRY, key, entry.user_id, detail)


async def settle(item: Finding, names: NameIndex, finish: Finish | None) -> str | None:
    """Why `item`, one of KINDS, could not be repaired; None when it was."""
    assert item.user_id is not None
    if item.kind == UNFINISHED_DELETION:
        assert finish is not None  # no repair is offered without it
        return None if await finish(item.user_id) else CHANGED
    if await names.release_leftover(item.key):
        return None
    return "not repaired: it changed since it was read (claimed again, or let go)"
