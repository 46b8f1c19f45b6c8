"""What a store key may be, the same on every store: keys with `#`, `%`, `?`, spaces or
non-ASCII characters are objects like any other."""

from __future__ import annotations

import pytest
from conftest import on_every_store

from s3auth_asgi import InvalidUsernameError, S3AuthService
from s3auth_asgi.storage import ObjectStore, StoreConflict

pytestmark = pytest.mark.anyio
PASSWORD = "SecurePass123!"

SPECIAL_NAMES = (
    "hash#tag",
    "hash#1x",
    "trailing#",
    "per%41cent",
    "per%cent",
    "what?now=1&x",
    "with space",
    "zoë-ünïcode-名前",
    "plus+and=equals",
    "tilde~and'quote",
    ".hidden",
)


@on_every_store
async def test_keys_with_special_characters_are_objects_like_any_other(
    store: ObjectStore, backend: str
) -> None:
    prefix = "special/dir#1 ü%/"
    keys = [prefix + name for name in SPECIAL_NAMES]
    for key in keys:
        await store.create(key, {"key": key})
        with pytest.raises(StoreConflict):
            await store.create(key, {"again": True})
    for key in keys:
        got = await store.get(key, dict)
        assert got is not None and got.value == {"key": key}, key
    await store.create("special/other", {})
    listed = [info.key async for info in store.list(prefix)]
    assert sorted(listed) == sorted(keys)
    page, more = await store.list_page(prefix, None, len(keys))
    assert [info.key for info in page] == sorted(keys) and not more
    after = sorted(keys)[4]
    assert sorted([i.key async for i in store.list(prefix, after)]) == sorted(keys)[5:]
    store.reset_counts()
    assert await store.delete_many(keys) == len(keys)
    assert [info.key async for info in store.list(prefix)] == []
    for key in keys:
        assert await store.get(key, dict) is None, key
    requests = {"get": len(keys), "list": 1}
    requests["delete"] = len(keys) if backend == "gcs" else 1
    assert dict(store.requests) == requests


# Names that users choose reach no key but through a digest (`keys`); these register, are
# found and are listed alike on every store.
UNUSUAL_EMAIL = "o'neil+a#b%c?d/e=f@exämple.com"


@on_every_store
async def test_users_with_unusual_names_and_addresses_work_on_every_store(
    service: S3AuthService,
) -> None:
    user = await service.create_user("zoë.名前", UNUSUAL_EMAIL, PASSWORD)
    other = await service.create_user("plain", "plain@example.com", PASSWORD)
    for name in ("#hash", "per%cent", "what?", "with space", "a/b"):
        with pytest.raises(InvalidUsernameError):
            await service.create_user(name, "x@example.com", PASSWORD)
    by_name = await service.get_user_by_username("ZOË.名前")
    by_email = await service.get_user_by_email(UNUSUAL_EMAIL.upper())
    assert by_name is not None and by_email is not None and by_name.id == by_email.id == user.id
    assert by_email.email == "o'neil+a#b%c?d/e=f@exämple.com"
    found = await service.authenticate_user(UNUSUAL_EMAIL, PASSWORD)
    assert found is not None and found.id == user.id
    users, cursor = await service.list_users()
    assert sorted(u.id for u in users) == sorted((user.id, other.id)) and cursor is None
    listed, _ = await service.list_users(search="名前")
    assert [u.id for u in listed] == [user.id]
    assert await service.delete_user(user.id)
    assert await service.get_user_by_email(UNUSUAL_EMAIL) is None
    assert [u.id for u in (await service.list_users())[0]] == [other.id]
