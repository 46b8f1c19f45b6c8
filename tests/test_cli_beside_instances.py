"""The CLI's account tools run beside instances that serve the same store: what the
command says, exits with and keeps in the account's trail when another process changes or
deletes the account between the command's read and its write."""

from __future__ import annotations

import anyio
import pytest
from conftest import make_service
from support import RacedUserWrite
from test_admin_rule import _cli_store
from test_cli import Run

from s3auth_asgi.cli import failures
from s3auth_asgi.service import S3AuthService

PASSWORD = "Secret123!"


def _trail(service: S3AuthService, user_id: str) -> list[tuple[str, str | None]]:
    async def read() -> list[tuple[str, str | None]]:
        events, _ = await service.audit.page(user_id)
        return [(e.event.name, e.event.client) for e in reversed(events)]

    return anyio.run(read)


def test_a_deletion_another_process_made_first_is_not_the_commands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The account is found, then deleted by an instance (an administrator at the API)
    # before the command's own deletion reaches the store: the command deleted nothing,
    # and says so as it would have, had it looked a moment later.
    store = _cli_store(monkeypatch)
    other = make_service(store=store)
    alice = anyio.run(lambda: other.create_user("alice", "alice@example.com", PASSWORD))
    raced = RacedUserWrite(store, lambda: other.delete_user(alice.id))
    run = Run("user", "delete", "alice", "--yes", open_store=lambda url: raced)
    assert raced.meanwhile is None  # the race happened
    assert (run.code, run.out) == (failures.NOT_FOUND, ""), run
    assert run.err == "s3auth: no user 'alice': another process deleted it first\n", run
    assert anyio.run(other.get_user_by_id, alice.id) is None
    # The trail names no deletion by the command, which made none.
    assert _trail(other, alice.id) == []
