"""The user record as every reader sees it: a record a deletion has closed
(`User.deleting`, `user_records`) is gone, as it will be once the deletion finishes."""

from __future__ import annotations

from .models import User
from .storage import Store, keys
from .storage.access import get_or_none


async def open_user(store: Store, user_id: str) -> User | None:
    """The user's record (1 GET); None when there is none, or a deletion has closed it."""
    found = await get_or_none(store, keys.user(user_id), User)
    return found.value if found is not None and not found.value.deleting else None
