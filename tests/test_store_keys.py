"""What a store key may be, the same on every store: keys with `#`, `%`, `?`, spaces or
non-ASCII characters are objects like any other, and a key that is not a plain relative
path (a leading `/`, `.` or `..` segments, a backslash, a control character) is refused
before any request, so that on `file://` nothing is written outside the store's directory.
"""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path

import pytest
from conftest import on_every_store

from s3auth_asgi import InvalidUsernameError, S3AuthService
from s3auth_asgi.storage import ObjectStore, StoreConflict, keys

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


def refused_keys(tmp_path: Path) -> list[str]:
    """Keys that are not plain relative paths. Those that would leave a `file://` store's
    directory point into `tmp_path`, beside it, so that a store that followed them writes
    nowhere but there."""
    return [
        f"{tmp_path}/absolute.json",
        "../escaped.json",
        "users/../../climbed.json",
        "users/./here.json",
        "./here.json",
        "users\\back.json",
        "users/nul\x00.json",
        "users/bell\x07.json",
        "users//empty.json",
        "users/",
        "",
        "users/staged#1",
        ".s3auth/locks/00.lock",
    ]


def outside_the_store(tmp_path: Path) -> list[Path]:
    return sorted(p for p in tmp_path.rglob("*") if "store" not in p.relative_to(tmp_path).parts)


@on_every_store
async def test_a_key_that_is_not_a_plain_relative_path_is_refused_before_any_request(
    store: ObjectStore, tmp_path: Path
) -> None:
    await store.create("users/kept.json", {"n": 1})
    etag = await store.create("users/other.json", {"n": 1})
    store.reset_counts()
    for key in refused_keys(tmp_path):
        calls: dict[str, Awaitable[object]] = {
            "create": store.create(key, {"n": 2}),
            "get": store.get(key, dict),
            "replace": store.replace(key, {"n": 2}, etag),
            "delete": store.delete(key),
            # One bad key in a batch: none of it is deleted.
            "delete_many": store.delete_many(["users/kept.json", key]),
        }
        for name, call in calls.items():
            with pytest.raises(ValueError, match="store key") as info:
                await call
            assert repr(key) in str(info.value), (name, key)
    for prefix in (f"{tmp_path}/", "../", "users/../../", ".s3auth/", "users\\", "a//b/"):
        with pytest.raises(ValueError, match="store prefix"):
            [info async for info in store.list(prefix)]
        with pytest.raises(ValueError, match="store prefix"):
            await store.list_page(prefix, None, 10)
    assert dict(store.requests) == {}
    assert outside_the_store(tmp_path) == []
    listed = [info.key async for info in store.list("") if info.key != keys.STORE_VERDICT]
    assert listed == ["users/kept.json", "users/other.json"]
    got = await store.get("users/other.json", dict)
    assert got is not None and got.value == {"n": 1} and got.etag == etag


async def test_a_file_store_follows_no_key_out_of_its_directory(tmp_path: Path) -> None:
    """The same refusals, looked at from the file system: nothing lands outside the
    store's directory, and nothing in it but the object written with a good key."""
    root = tmp_path / "store"
    store = ObjectStore.from_url(f"file://{root}")
    for key in refused_keys(tmp_path):
        with pytest.raises(ValueError):
            await store.create(key, {"n": 1})
    await store.create("users/a.json", {"n": 1})
    assert outside_the_store(tmp_path) == []
    written = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert [p for p in written if not p.startswith(".s3auth/locks/")] == ["users/a.json"]


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
