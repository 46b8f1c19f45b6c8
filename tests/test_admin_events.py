"""Whom the auth events of the admin operations name: the administrator acting and the
account acted on; a caller refused as no administrator, as that caller; and an action
whose audit record the store failed to keep is still told, in full."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from conftest import make_service
from support import StoreWrapper
from test_app import (
    PASSWORD,
    assert_problem,
    bearer,
    client_for,
    late_login,
    login,
    mounted,
    register,
)

from s3auth_asgi import S3AuthService, StoreUnavailableError
from s3auth_asgi.events import AuthEvent
from s3auth_asgi.storage import ObjectStore, keys

pytestmark = pytest.mark.anyio

Login = Callable[[S3AuthService, httpx.AsyncClient], Awaitable[dict[str, Any]]]


def logged(caplog: pytest.LogCaptureFixture) -> list[AuthEvent]:
    return [r.auth_event for r in caplog.records if r.name == "s3auth_asgi.events"]  # type: ignore[attr-defined]


async def an_ordinary_account(service: S3AuthService, client: httpx.AsyncClient) -> dict[str, Any]:
    await register(client, "mallory")
    return await login(client, "mallory")


async def demote(service: S3AuthService, user_id: str) -> object:
    return await service.update_user(user_id, is_admin=False)


async def a_demoted_administrator(
    service: S3AuthService, client: httpx.AsyncClient
) -> dict[str, Any]:
    """A token that still says administrator, of an account that no longer is one."""
    await service.create_user("mallory", "mallory@example.com", PASSWORD, is_admin=True)
    return await late_login(service, "mallory", demote)


@pytest.mark.parametrize("caller", [an_ordinary_account, a_demoted_administrator])
async def test_a_caller_refused_as_no_administrator_is_named_as_the_caller(
    caplog: pytest.LogCaptureFixture, caller: Login
) -> None:
    service = make_service()
    async with client_for(mounted(service)) as client:
        alice = await register(client, "alice")
        tokens = await caller(service, client)
        mallory = service.decode_token(tokens["access_token"])
        caplog.set_level(logging.INFO, logger="s3auth_asgi.events")
        caplog.clear()
        await service.ensure_fresh()  # the revocations, synced: their LIST is no refusal's
        service.store.reset_counts()
        refused = await client.patch(
            f"/auth/admin/users/{alice['id']}", json={"is_admin": True}, headers=bearer(tokens)
        )
        assert_problem(refused, 403, "insufficient_scope")
        # The caller's record where the token said administrator, and the event's PUT in
        # the caller's trail; nothing of alice's is read or written.
        read = {"get": 1} if caller is a_demoted_administrator else {}
        assert dict(service.store.requests) == {**read, "put": 1}
        (event,) = logged(caplog)
        # The one who tried, by account and session, as every refused call of a token.
        assert (event.name, event.outcome, event.reason) == (
            "admin_user_update",
            "failure",
            "insufficient_scope",
        )
        assert (event.user_id, event.session_id, event.actor_id) == (
            mallory["sub"],
            mallory["sid"],
            None,
        )
        # Kept in the trail of the one who tried, not in that of the account named in the
        # path, whose owner would read it as an administrator's action on their account.
        trail, _ = await service.audit.page(alice["id"])
        assert [entry.event.name for entry in trail] == ["register"]
        own = await client.get("/auth/me/events", headers=bearer(tokens))
        # The login's entry can share the attempt's millisecond, and entries of one
        # millisecond list in no set order: the attempt is found by its name.
        (attempt,) = [
            entry["event"]
            for entry in own.json()["events"]
            if entry["event"]["name"] == "admin_user_update"
        ]
        assert (attempt["name"], attempt["reason"]) == ("admin_user_update", "insufficient_scope")
        assert attempt["by_administrator"] is False
        assert attempt["session_id"] == mallory["sid"]


class AuditFails(StoreWrapper):
    """Every write of an audit event fails, as a store that is down would."""

    async def create(self, key: str, value: Any) -> str:
        if key.startswith(keys.AUDIT):
            raise StoreUnavailableError("the store is down")
        return await super().create(key, value)


async def test_an_action_whose_audit_record_was_lost_is_told_at_warning_in_full(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = make_service(store=AuditFails(ObjectStore.from_url("memory://")))
    root = await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    alice = await service.create_user("alice", "alice@example.com", PASSWORD)
    async with client_for(mounted(service)) as client:
        tokens = await login(client, "root")
        # A host that takes warnings only: the success itself is logged at INFO.
        caplog.set_level(logging.WARNING)
        caplog.clear()
        response = await client.patch(
            f"/auth/admin/users/{alice.id}", json={"is_active": False}, headers=bearer(tokens)
        )
    assert response.status_code == 200  # the action is done, and answered so
    changed = await service.get_user_by_id(alice.id)
    assert changed is not None and not changed.is_active
    assert await service.audit.page(alice.id) == ([], None)
    (record,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    lost: AuthEvent = record.auth_event  # type: ignore[attr-defined]
    assert (lost.name, lost.outcome) == ("admin_user_update", "success")
    assert (lost.user_id, lost.actor_id) == (alice.id, root.id)
    assert (record.user_id, record.actor_id) == (alice.id, root.id)  # type: ignore[attr-defined]
    assert alice.id in record.getMessage() and root.id in record.getMessage()
