"""Usernames that look alike in a store, as `s3auth doctor` reports them (`consistency`).

A user registered before the look of a username (its skeleton: `name_index`) was reserved
with it, as by 0.1, has no reservation of its look until a repair writes one
(LOOKALIKE_UNRESERVED), with a claim's conditional writes: until then a look-alike can
register. One that did holds the look, and the two are a pair (LOOKALIKE_USERS) that no
repair can undo: neither account is damaged, and which one passes for the other, if
either, is for the operator to judge. So a pair is reported and not counted as a problem.
"""

from __future__ import annotations

from .identifiers import is_id
from .models import User
from .name_claims import NameClaims
from .open_records import open_record
from .storage import CorruptObjectError, keys

LOOKALIKE_UNRESERVED = "lookalike_unreserved"
LOOKALIKE_USERS = "lookalike_users"
LOOK_RESERVED = "reserved for its username, as a registration reserves it"
"""What the repair of LOOKALIKE_UNRESERVED does."""
PAIR_LEFT = "left as it is: no repair can undo a registration"
"""What becomes of LOOKALIKE_USERS, with `--repair` or without."""


def unreserved_detail(user_id: str) -> str:
    return (
        f"user {user_id} was registered before the look of a username was reserved with it, "
        "and its look is not reserved: another account could register a username that "
        "looks like it"
    )


def pair_detail(user: User, other: User) -> str:
    # Quoted, with whatever a terminal would act on escaped: a stored name may hold anything.
    return (
        f"user {user.id}'s username {user.username!r} looks like {other.username!r}, user "
        f"{other.id}'s, which holds the reservation of that look: the two were registered "
        "before it was reserved for both, and no repair undoes a registration. Both log in "
        "as before; if one passes for the other, `s3auth user delete ID` deletes it"
    )


async def holder_alike(names: NameClaims, key: str, other_id: str) -> User | None:
    """The user `other_id`, when its record holds the skeleton entry `key` too (1 GET):
    its username looks like that of the user whose entry `key` also is."""
    if not key.startswith(keys.SKELETON_INDEX) or not is_id(other_id):
        return None
    try:
        found = open_record(await names.store.get(keys.user(other_id), User), other_id)
    except CorruptObjectError:
        return None
    if found is None or not names.holds_name(key, found):
        return None
    return found.value
