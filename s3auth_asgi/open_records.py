"""The user record as every reader sees it: a record a deletion has closed
(`User.deleting`, `user_records`) is gone, as it will be once the deletion finishes; so is
a record at another user's key (a copy made by another tool, which `s3auth doctor`
reports), which no account has and the user list leaves out."""

from __future__ import annotations

from .models import User
from .storage import Store, Versioned, keys
from .storage.access import get_or_none


def own_record(found: Versioned[User] | None, user_id: str) -> Versioned[User] | None:
    """`found`, read at `user_id`'s key, when it is that user's record, closed or not;
    None when there is none or it is another user's (a copy)."""
    return found if found is not None and found.value.id == user_id else None


def open_record(found: Versioned[User] | None, user_id: str) -> Versioned[User] | None:
    """`found`, read at `user_id`'s key, when it is that user's account: its own record,
    and no deletion has closed it."""
    own = own_record(found, user_id)
    return own if own is not None and not own.value.deleting else None


async def open_user(store: Store, user_id: str) -> User | None:
    """The user's record (1 GET); None when there is none, a deletion has closed it, or it
    is another user's."""
    found = open_record(await get_or_none(store, keys.user(user_id), User), user_id)
    return found.value if found is not None else None
