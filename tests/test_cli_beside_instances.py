"""The CLI's account tools run beside instances that serve the same store: what the
command says, exits with and keeps in the account's trail when another process changes or
deletes the account between the command's read and its write."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from conftest import make_service
from support import RacedUserWrite, StoreWrapper
from test_admin_rule import _cli_store
from test_app import assert_problem, bearer, client_for, mounted
from test_cli import Run

from s3auth_asgi.cli import failures
from s3auth_asgi.models import User
from s3auth_asgi.service import S3AuthService
from s3auth_asgi.storage import ObjectStore, Store, keys

PASSWORD = "Secret123!"


def _trail(service: S3AuthService, user_id: str) -> list[tuple[str, str | None]]:
    async def read() -> list[tuple[str, str | None]]:
        events, _ = await service.audit.page(user_id)
        return [(e.event.name, e.event.client) for e in reversed(events)]

    return anyio.run(read)


def _alice_beside_an_instance(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[ObjectStore, S3AuthService, User]:
    """The store the CLI opens, an instance serving it, and alice's account made there."""
    store = _cli_store(monkeypatch)
    other = make_service(store=store)
    alice = anyio.run(lambda: other.create_user("alice", "alice@example.com", PASSWORD))
    return store, other, alice


def test_a_deletion_another_process_made_first_is_not_the_commands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The account is found, then deleted by an instance (an administrator at the API)
    # before the command's own deletion reaches the store: the command deleted nothing,
    # and says so as it would have, had it looked a moment later.
    store, other, alice = _alice_beside_an_instance(monkeypatch)
    raced = RacedUserWrite(store, lambda: other.delete_user(alice.id))
    run = Run("user", "delete", "alice", "--yes", open_store=lambda url: raced)
    assert raced.meanwhile is None  # the race happened
    assert (run.code, run.out) == (failures.NOT_FOUND, ""), run
    assert run.err == "s3auth: no user 'alice': another process deleted it first\n", run
    assert anyio.run(other.get_user_by_id, alice.id) is None
    # The trail names no deletion by the command, which made none.
    assert _trail(other, alice.id) == []


class ChangedBeforeEachWrite(StoreWrapper):
    """Runs `meanwhile` before every replace of a user record: another process's change
    that lands between each of this one's reads and its write."""

    def __init__(self, inner: Store, meanwhile: Callable[[], Awaitable[object]]) -> None:
        super().__init__(inner)
        self.meanwhile = meanwhile
        self.raced = 0

    async def replace(self, key: str, value: Any, etag: str) -> str:
        if key.startswith(keys.USERS):
            self.raced += 1
            await self.meanwhile()
        return await super().replace(key, value, etag)


def test_a_change_that_loses_every_time_says_it_was_changed_concurrently(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each try of the command's write loses to another instance's change of the account:
    # refused, with nothing changed, in words that say what happened (not that something
    # "already exists") and that it can be tried again; the API answers with the same title.
    store, other, alice = _alice_beside_an_instance(monkeypatch)
    names = iter(range(100))

    async def rename() -> None:
        await other.update_user(alice.id, full_name=f"Alice {next(names)}")

    raced = ChangedBeforeEachWrite(store, rename)
    run = Run("user", "disable", "alice", open_store=lambda url: raced)
    assert raced.raced == 5  # every try lost
    assert (run.code, run.out) == (failures.REFUSED, ""), run
    assert run.err == (
        "s3auth: The change conflicts with a concurrent one: The user was changed "
        "concurrently; try again\n"
    ), run
    found = anyio.run(other.get_user_by_id, alice.id)
    assert found is not None and found.is_active


@pytest.mark.anyio
async def test_the_api_names_a_lost_concurrent_change_alike() -> None:
    inner = ObjectStore.from_url("memory://")
    other = make_service(store=inner)
    root = await other.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    alice = await other.create_user("alice", "alice@example.com", PASSWORD)
    names = iter(range(100))

    async def rename() -> None:
        await other.update_user(alice.id, full_name=f"Alice {next(names)}")

    service = make_service(store=ChangedBeforeEachWrite(inner, rename))
    admin = bearer({"access_token": (await other.create_token_pair(root)).access_token})
    async with client_for(mounted(service)) as client:
        answer = await client.patch(
            f"/auth/admin/users/{alice.id}", json={"is_active": False}, headers=admin
        )
    body = assert_problem(answer, 409, "conflict")
    assert body["title"] == "The change conflicts with a concurrent one", body
    found = await other.get_user_by_id(alice.id)
    assert found is not None and found.is_active
