"""Name churn: several instances on one store register, change the address of and delete
accounts over a handful of names, all at once, with a little random latency on every
request. Whatever the interleaving, once they are done one user per name holds: every live
user's names are its own, and no two live users share one.

The clock does not leap here (`JUMP` 0): with leaps past a reservation, claims under way
look abandoned and are taken over, and one run in many ended with a live user's entry
naming another. That interleaving (a change of address undone after its old address was
taken over) is fixed and tested in `test_slow_claims`; until a long seeded search shows
no other, the takeovers are tested one interleaving at a time there and in
`test_name_release`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from conftest import make_settings
from support import Clock, StoreWrapper

from s3auth_asgi import (
    ConflictError,
    EmailTakenError,
    S3AuthService,
    User,
    UsernameTakenError,
    UserNotFoundError,
)
from s3auth_asgi.identifiers import fold
from s3auth_asgi.models import IndexEntry
from s3auth_asgi.name_index import NameIndex
from s3auth_asgi.storage import ObjectStore, Store, Versioned, keys

pytestmark = pytest.mark.anyio
R = TypeVar("R")
T = TypeVar("T")
PASSWORD = "SecurePass123!"
RESERVATION = 120
JUMP = 0.0
INSTANCES = 6
ROUNDS = 4
ACTIONS = 3
"""Each round, every instance runs this many actions in a row, all instances at once."""
USERNAMES = 6
ADDRESSES = 2
"""Few addresses: most registrations and changes of address contend for one."""
TARGETS = 2
"""Changes and deletions pick among the accounts registered last, so that they meet."""
EXPECTED = (ConflictError, EmailTakenError, UsernameTakenError, UserNotFoundError)
"""What an action may meet when another got there first."""


class Churn(StoreWrapper):
    """The instances' shared store, on their clock. Every request waits a random moment
    first, so that instances interleave, and now and then one stalls past a reservation
    (the clock leaps). An object's Last-Modified is the clock's time at its write, as it is
    on a store whose clock agrees with the instances'."""

    def __init__(self, inner: Store, rng: random.Random, clock: Clock) -> None:
        super().__init__(inner)
        self.rng = rng
        self.clock = clock
        self.written: dict[tuple[str, str], dt.datetime] = {}

    async def call(self, name: str, run: Callable[[], Awaitable[R]]) -> R:
        if self.rng.random() < JUMP:
            self.clock.advance(RESERVATION + 1)
        await anyio.sleep(self.rng.random() * 0.002)
        return await run()

    def _stamp(self, key: str, etag: str) -> str:
        self.written[key, etag] = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        return etag

    async def get(self, key: str, type_: type[T]) -> Versioned[T] | None:
        found = await super().get(key, type_)
        if found is None:
            return None
        # A version not stamped yet is one whose write has not answered yet: it is new.
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        written = self.written.get((key, found.etag), now)
        return dataclasses.replace(found, last_modified=written)

    async def create(self, key: str, value: Any) -> str:
        return self._stamp(key, await super().create(key, value))

    async def replace(self, key: str, value: Any, etag: str) -> str:
        return self._stamp(key, await super().replace(key, value, etag))


async def assert_one_user_per_name(store: Store, service: S3AuthService) -> None:
    users: list[User] = []
    async for info in store.list(keys.USERS):
        found = await store.get(info.key, User)
        assert found is not None
        users.append(found.value)
    for user in users:
        for key in NameIndex.name_keys(user):
            entry = await store.get(key, IndexEntry)
            assert entry is not None, f"{user.username} ({user.email}) lacks {key}"
            assert entry.value.user_id == user.id, f"{key} of {user.username} names another"
            assert not getattr(entry.value, "released", False), f"{key} is released"
        found = await service.get_user_by_email(user.email)
        assert found is not None and found.id == user.id
    for held in (
        [fold(user.username) for user in users],
        [user.username_skeleton for user in users],
        [fold(user.email) for user in users],
    ):
        assert len(held) == len(set(held)), held
    # Every other entry is a claim under way, an abandoned one or a released one: it
    # decodes and names a user id.
    for prefix in (keys.USERNAME_INDEX, keys.SKELETON_INDEX, keys.EMAIL_INDEX):
        async for info in store.list(prefix):
            entry = await store.get(info.key, IndexEntry)
            assert entry is not None and entry.value.user_id


async def _churn(services: list[S3AuthService], rng: random.Random) -> None:
    ids: list[str] = []

    def address() -> str:
        return f"addr{rng.randrange(ADDRESSES)}@example.com"

    async def act(service: S3AuthService) -> None:
        for _ in range(ACTIONS):
            action = rng.randrange(3)
            try:
                if action == 0 or not ids:
                    name = f"user{rng.randrange(USERNAMES)}"
                    ids.append((await service.create_user(name, address(), PASSWORD)).id)
                elif action == 1:
                    await service.update_user(rng.choice(ids[-TARGETS:]), email=address())
                else:
                    await service.delete_user(rng.choice(ids[-TARGETS:]))
            except EXPECTED:
                pass

    for _ in range(ROUNDS):
        async with anyio.create_task_group() as tg:
            for service in services:
                tg.start_soon(act, service)


@pytest.mark.parametrize(("kind", "seeds"), [("memory", 40), ("file", 10)])
async def test_one_user_per_name_under_churn(kind: str, seeds: int, tmp_path: Path) -> None:
    for seed in range(seeds):
        rng = random.Random(seed)
        url = "memory://" if kind == "memory" else f"file://{tmp_path / str(seed)}"
        shared = ObjectStore.from_url(url)
        clock = Clock()
        store = Churn(shared, rng, clock)
        settings = make_settings(url, name_reservation_seconds=RESERVATION)
        services = [S3AuthService(settings, store=store, clock=clock) for _ in range(INSTANCES)]
        await _churn(services, rng)
        await assert_one_user_per_name(shared, services[0])
