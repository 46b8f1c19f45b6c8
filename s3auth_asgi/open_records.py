"""The user record as every reader sees it: a record a deletion has closed
(`User.deleting`, `user_records`) is gone, as it will be once the deletion finishes; so is
a record at another user's key (a copy made by another tool, which `s3auth doctor`
reports), which no account has and the user list leaves out."""

from __future__ import annotations

from .models import User
from .storage import Store, keys
from .storage.access import get_or_none


async def open_user(store: Store, user_id: str) -> User | None:
    """The user's record (1 GET); None when there is none, a deletion has closed it, or it
    is another user's."""
    found = await get_or_none(store, keys.user(user_id), User)
    if found is None or found.value.deleting or found.value.id != user_id:
        return None
    return found.value
