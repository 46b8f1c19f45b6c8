"""A login answers in the same time whether the account exists: the same store requests,
to the same kinds of object, and one password verification, for an unknown name, a wrong
password and a disabled account — asserted as request sequences, and as times with a store
that takes a fixed time per request, the way S3 does."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import pytest
from conftest import make_service
from support import StoreWrapper

from s3auth_asgi import S3AuthService
from s3auth_asgi.storage import Store, Versioned

pytestmark = pytest.mark.anyio

R = TypeVar("R")
T = TypeVar("T")
PASSWORD = "Correct-horse-9"
REQUEST_SECONDS = 0.04
"""Longer than a cheap test hash by far, so that one request more or less shows."""


class SlowStore(StoreWrapper):
    """Takes REQUEST_SECONDS per request, and records what each request was for."""

    def __init__(self, inner: Store, delay: float = 0.0) -> None:
        super().__init__(inner)
        self.delay = delay
        self.log: list[str] = []

    async def call(self, name: str, run: Callable[[], Awaitable[R]]) -> R:
        await anyio.sleep(self.delay)
        return await run()

    async def get(self, key: str, type_: type[T]) -> Versioned[T] | None:
        # What kind of object: the index (and which), or a user; never which one.
        kind = key.rsplit("/", 1)[0] if key.startswith("index/") else key.split("/")[0] + "/"
        self.log.append(f"get {kind}")
        return await super().get(key, type_)


async def with_accounts(store: SlowStore) -> S3AuthService:
    service = make_service(store=store, argon2_memory_kib=1024, argon2_time_cost=1)
    await service.create_user("known", "known@example.com", PASSWORD)
    disabled = await service.create_user("off", "off@example.com", PASSWORD)
    await service.update_user(disabled.id, is_active=False)
    return service


ATTEMPTS = {
    "unknown name": ("nobody", PASSWORD),
    "unknown email": ("nobody@example.com", PASSWORD),
    "wrong password": ("known", "Wrong-horse-9"),
    "wrong password, by email": ("known@example.com", "Wrong-horse-9"),
    "disabled account": ("off", PASSWORD),
}


async def test_every_failed_login_makes_the_same_requests() -> None:
    store = SlowStore(make_service().store)
    service = await with_accounts(store)
    seen = {}
    for label, (name, password) in ATTEMPTS.items():
        store.reset_counts()
        store.log.clear()
        assert await service.authenticate_user(name, password) is None
        seen[label] = (dict(store.requests), list(store.log))
    by_name = {
        label: seen[label] for label in ("unknown name", "wrong password", "disabled account")
    }
    assert set(map(repr, by_name.values())) == {
        repr(({"get": 2}, ["get index/username", "get users/"]))
    }
    by_email = [seen["unknown email"], seen["wrong password, by email"]]
    assert by_email[0] == by_email[1] == ({"get": 2}, ["get index/email", "get users/"])


async def test_an_unknown_name_takes_as_long_as_a_wrong_password() -> None:
    store = SlowStore(make_service().store)
    service = await with_accounts(store)
    store.delay = REQUEST_SECONDS
    times: dict[str, list[float]] = {label: [] for label in ATTEMPTS}
    for _ in range(5):  # interleaved, so that the machine's moods hit every case alike
        for label, (name, password) in ATTEMPTS.items():
            started = time.perf_counter()
            assert await service.authenticate_user(name, password) is None
            times[label].append(time.perf_counter() - started)
    # The least of each: a loaded machine only ever adds time (the hash's, mostly), and
    # adds it to one attempt or another, where a median of five can still hold some.
    least = {label: min(values) for label, values in times.items()}
    reference = least["wrong password"]
    # Every case makes two requests: one fewer would show as REQUEST_SECONDS less.
    assert reference >= 2 * REQUEST_SECONDS
    for label, fastest in least.items():
        assert abs(fastest - reference) < REQUEST_SECONDS / 2, (label, least)
