"""What `s3auth user list` costs and prints past one page of the store's listing: one
listing of `users/` read to its end (a LIST per 1,000 keys as S3 answers them, per 5,000 on
Azure) and a GET per record, whatever other tools keep under `users/`."""

from __future__ import annotations

import io
from typing import Any

import anyio
import msgspec
import obstore
import pytest
from azurite_server import Azurite
from conftest import SECRET

from s3auth_asgi import cli
from s3auth_asgi.cli.context import run_async
from s3auth_asgi.cli.users import user_line
from s3auth_asgi.identifiers import new_id
from s3auth_asgi.models import User
from s3auth_asgi.storage import ObjectStore, keys

HEADER = f"{'ID':32}  {'USERNAME':20}  {'EMAIL':30}  STATUS"


def list_users(store: ObjectStore, *flags: str) -> str:
    """What `s3auth user list` prints on `store`; it must succeed."""
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["user", "list", *flags], stdout=out, stderr=err, open_store=lambda _: store)
    assert code == 0 and err.getvalue() == "", (code, out.getvalue(), err.getvalue())
    return out.getvalue()


def seed(store: ObjectStore, count: int, **fields: Any) -> list[User]:
    """`count` user records written at their keys (their names unindexed: only the listing
    reads them), in id order."""
    users = sorted(
        (
            User(
                id=new_id(),
                username=f"user{i:05d}",
                email=f"u{i}@example.com",
                hashed_password="unused",
                is_admin=i % 7 == 0,
                is_active=i % 5 != 0,
                **fields,
            )
            for i in range(count)
        ),
        key=lambda user: user.id,
    )

    async def write() -> None:
        limiter = anyio.CapacityLimiter(64)

        async def one(user: User) -> None:
            async with limiter:
                await store.create(keys.user(user.id), user)

        async with anyio.create_task_group() as tg:
            for user in users:
                tg.start_soon(one, user)

    run_async(write)
    return users


def expected_table(users: list[User]) -> str:
    lines = [HEADER, *map(user_line, users), f"{len(users)} user(s)"]
    return "".join(f"{line}\n" for line in lines)


def expected_json(users: list[User]) -> str:
    if not users:
        return "[]\n"
    items = ",\n".join(msgspec.json.encode(user.public()).decode() for user in users)
    return f"[\n{items}\n]\n"


def test_listing_1001_users_costs_two_lists_and_a_get_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("S3AUTH_STORE_URL", "memory://")
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    store = ObjectStore.from_url("memory://")
    users = seed(store, 1001)
    # Not users: a closed record (a deletion cut short), a backup beside a record, a copy in
    # a folder, and a record copied to another user's key. Each is a key of the listing.
    closed = seed(store, 1, deleting=True)[0]
    first = keys.user(users[0].id)

    async def others() -> None:
        data = await (await obstore.get_async(store._inner, first)).bytes_async()
        for key in (f"{first}.bak", f"{keys.USERS}archive/{users[0].id}.json", keys.user("f" * 32)):
            await obstore.put_async(store._inner, key, bytes(data))

    run_async(others)
    # 1,006 keys under users/: one listing, 2 LIST pages of 1,000; a GET per key that is a
    # user's (the closed record and the copy at a user's key too).
    store.reset_counts()
    assert list_users(store) == expected_table(users)
    assert dict(store.requests) == {"list": 2, "get": 1001 + 2}
    store.reset_counts()
    assert list_users(store, "--json") == expected_json(users)
    assert dict(store.requests) == {"list": 2, "get": 1001 + 2}
    store.reset_counts()
    found = list_users(store, "--search", "user0100")
    assert found == expected_table([user for user in users if "user0100" in user.username])
    assert dict(store.requests) == {"list": 2, "get": 1001 + 2}
    assert closed.id not in found


def test_listing_users_on_azure_is_one_listing(
    azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Azure is sent no offset: paging after a cursor listed every key before it again.
    401 users, which pages of 200 took 3 listings for, are one listing of the service's."""
    url = azurite.fresh_url()
    monkeypatch.setenv("S3AUTH_STORE_URL", url)
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    store = ObjectStore.from_url(url)
    users = seed(store, 401)
    store.reset_counts()
    assert list_users(store) == expected_table(users)
    assert dict(store.requests) == {"list": 1, "get": 401}
    # As Azurite itself answered them, with the records' PUTs.
    assert azurite.requests(url) == {"put": 401, "list": 1, "get": 401}
