"""Whom the auth events of the admin operations name: the administrator acting and the
account acted on; a caller refused as no administrator, as that caller."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from conftest import make_service
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

from s3auth_asgi import S3AuthService
from s3auth_asgi.events import AuthEvent

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
        attempt = own.json()["events"][0]["event"]
        assert (attempt["name"], attempt["reason"]) == ("admin_user_update", "insufficient_scope")
        assert attempt["by_administrator"] is False
        assert attempt["session_id"] == mallory["sid"]
