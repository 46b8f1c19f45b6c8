"""What `s3auth doctor` reports (`consistency`): the kinds of inconsistency between user
records and the name index, what one record shows alone (`record_findings`), and an end of
every session that cannot be read (`every_session`), each as a `Finding` at the key of the
object it was found at, with what a repair of it does and the words its detail is made
of."""

from __future__ import annotations

import msgspec

from .look_alikes import LOOK_RESERVED, LOOKALIKE_UNRESERVED
from .storage import keys

CORRUPT_USER = "corrupt_user"
MISPLACED_USER = "misplaced_user"
UNFINISHED_DELETION = "unfinished_deletion"
OWN_ENTRY_MISSING = "own_entry_missing"
OWN_ENTRY_CORRUPT = "own_entry_corrupt"
OWN_ENTRY_ELSEWHERE = "own_entry_elsewhere"
CORRUPT_ENTRY = "corrupt_entry"
ENTRY_USER_MISSING = "entry_user_missing"
ENTRY_NOT_HELD = "entry_not_held"
RELEASED_ENTRY = "released_entry"
COSTLY_HASH = "costly_hash"
SEED_UNDER_FALLBACK = "seed_under_fallback"
CORRUPT_NOT_BEFORE = "corrupt_not_before"

OWN_ENTRY = (OWN_ENTRY_MISSING, OWN_ENTRY_CORRUPT, OWN_ENTRY_ELSEWHERE, LOOKALIKE_UNRESERVED)
REPAIRS = {
    LOOKALIKE_UNRESERVED: LOOK_RESERVED,
    OWN_ENTRY_MISSING: "written from the record",
    OWN_ENTRY_CORRUPT: "rewritten from the record",
    OWN_ENTRY_ELSEWHERE: "given back to the record's user, if the other's claim never finished",
    ENTRY_USER_MISSING: "released",
    ENTRY_NOT_HELD: "released",
    UNFINISHED_DELETION: "finished, as a deletion by its id finishes it",
    RELEASED_ENTRY: "let go as a release lets a name go",
}
LABELS = {
    keys.USERNAME_INDEX: "username",
    keys.SKELETON_INDEX: "skeleton",
    keys.EMAIL_INDEX: "email",
}
LOST = {
    "username": "it cannot log in by its username, which another account could register",
    "skeleton": "another account could register a username that looks like it",
    "email": "it cannot log in by its address, which another account could register",
}
TORN = {
    "username": "it cannot log in by its username, which stays taken",
    "skeleton": "its username's look stays reserved, but the entry is damaged",
    "email": "it cannot log in by its address, which stays taken",
}
ELSEWHERE = {
    "username": "it cannot log in by its username",
    "skeleton": "its username's look is reserved for the other",
    "email": "it cannot log in by its address",
}
CHANGED = "not repaired: it changed since it was read; run the command again"


class Finding(msgspec.Struct, kw_only=True):
    """One inconsistency, at the key of the object it was found at."""

    kind: str
    key: str
    user_id: str | None
    """The user the object is, or is of, or names."""
    other_user_id: str | None = None
    """LOOKALIKE_USERS: the user whose username looks like `user_id`'s, and which holds
    the reservation of that look."""
    detail: str
    repair: str | None
    """What a repair does; None when none is safe (`detail` says what is left to do)."""
    repaired: bool | None = None
    """With a repair asked for: whether this run repaired it; None without."""
    outcome: str | None = None
    """With a repair asked for: what came of it."""


def label(key: str) -> str:
    return next(name for prefix, name in LABELS.items() if key.startswith(prefix))


def finding(kind: str, key: str, user_id: str | None, detail: str) -> Finding:
    return Finding(kind=kind, key=key, user_id=user_id, detail=detail, repair=REPAIRS.get(kind))
