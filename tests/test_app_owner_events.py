"""The audit trail as its owner reads it (`GET /me/events`): an administrator's action on
the account is shown as one, without the administrator's id, session or address, which
the administrators' view (`GET /admin/users/{id}/events`) and the event log keep; the
owner's own events keep the owner's session and address. Reading it is limited per
account."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from conftest import make_service
from test_app import bearer, client_for, login, mounted, register

from s3auth_asgi import S3AuthService
from s3auth_asgi.app import DEFAULT_AUTH_LIMITS, create_auth_app
from s3auth_asgi.audit import BY_ADMINISTRATORS

pytestmark = pytest.mark.anyio

ADMIN_PEER = ("198.51.100.7", 40001)
OWNER_PEER = ("203.0.113.9", 40002)


async def trail(client: httpx.AsyncClient, path: str, tokens: dict[str, Any]) -> list[Any]:
    response = await client.get(f"/auth{path}", headers=bearer(tokens))
    assert response.status_code == 200, response.text
    return [entry["event"] for entry in response.json()["events"]]


def sid(service: S3AuthService, tokens: dict[str, Any]) -> str:
    session: str = service.decode_token(tokens["access_token"])["sid"]
    return session


async def test_the_owner_is_told_an_administrator_acted_but_not_who_or_from_where() -> None:
    service = make_service()
    app = mounted(service)
    root = await service.create_user("root", "root@example.com", "Secret123!", is_admin=True)
    async with client_for(app, peer=ADMIN_PEER) as admin, client_for(app, peer=OWNER_PEER) as own:
        root_tokens = await login(admin, "root")
        alice = await register(own, "alice")
        alice_tokens = await login(own, "alice")
        changed = await admin.patch(
            f"/auth/admin/users/{alice['id']}",
            json={"full_name": "Alice A."},
            headers=bearer(root_tokens),
        )
        assert changed.status_code == 200
        update, logged_in, registered = await trail(own, "/me/events", alice_tokens)
        assert update == {
            "name": "admin_user_update",
            "outcome": "success",
            "at": update["at"],
            "reason": None,
            "user_id": alice["id"],
            "actor_id": None,
            "session_id": None,
            "client": None,
            "user_agent": None,
            "previous_email": None,
            "second_factor": None,
            "recovery_codes_left": None,
            "by_administrator": True,
        }
        # What the owner did keeps the owner's session, address and User-Agent: "was this
        # login me?"
        assert logged_in["name"] == "login" and logged_in["by_administrator"] is False
        assert logged_in["session_id"] == sid(service, alice_tokens)
        assert logged_in["client"] == OWNER_PEER[0] and logged_in["actor_id"] is None
        assert logged_in["user_agent"] == "pytest"
        assert registered["name"] == "register" and registered["client"] == OWNER_PEER[0]
        # The administrators' view of the same trail names the administrator in full.
        admin_update = (await trail(admin, f"/admin/users/{alice['id']}/events", root_tokens))[0]
        assert "by_administrator" not in admin_update
        assert admin_update["actor_id"] == root.id
        assert admin_update["session_id"] == sid(service, root_tokens)
        assert admin_update["client"] == ADMIN_PEER[0]
        assert admin_update["user_agent"] == f"python-httpx/{httpx.__version__}"


async def test_an_account_an_administrator_made_names_the_administrator_to_admins_only() -> None:
    service = make_service()
    app = mounted(service)
    root = await service.create_user("root", "root@example.com", "Secret123!", is_admin=True)
    async with client_for(app, peer=ADMIN_PEER) as admin, client_for(app, peer=OWNER_PEER) as own:
        root_tokens = await login(admin, "root")
        made = await admin.post(
            "/auth/admin/users",
            json={"username": "bob", "email": "bob@example.com", "password": "Secret123!"},
            headers=bearer(root_tokens),
        )
        assert made.status_code == 201
        bob_id = made.json()["id"]
        bob_tokens = await login(own, "bob")
        logged_in, created = await trail(own, "/me/events", bob_tokens)
        assert logged_in["client"] == OWNER_PEER[0] and logged_in["by_administrator"] is False
        assert created["name"] == "admin_user_create" and created["by_administrator"] is True
        assert (created["actor_id"], created["session_id"], created["client"]) == (None,) * 3
        admin_created = (await trail(admin, f"/admin/users/{bob_id}/events", root_tokens))[1]
        assert admin_created["name"] == "admin_user_create"
        assert admin_created["user_id"] == bob_id and admin_created["actor_id"] == root.id
        assert admin_created["session_id"] == sid(service, root_tokens)
        assert admin_created["client"] == ADMIN_PEER[0]


def test_the_events_shown_as_an_administrators_are_those_of_the_admin_operations() -> None:
    for op in create_auth_app(make_service()).operations:
        if op.event is not None:
            assert (op.event in BY_ADMINISTRATORS) == (op.access == "admin"), op.operation_id


async def test_reading_ones_trail_is_limited_per_account_from_any_address() -> None:
    # A page of 200 events costs a LIST and 200 GETs: a token holder may not ask for one
    # page after another without end, however many addresses they ask from.
    service = make_service()
    app = mounted(service, rate_limit=True)
    per_account = DEFAULT_AUTH_LIMITS["events_account"].max_requests
    async with client_for(app, peer=OWNER_PEER) as client:
        await register(client, "alice")
        tokens = await login(client, "alice")
    statuses = []
    for i in range(per_account + 1):
        async with client_for(app, peer=(f"192.0.2.{i + 1}", 1)) as client:
            service.store.reset_counts()
            page = await client.get("/auth/me/events?limit=200", headers=bearer(tokens))
            statuses.append(page.status_code)
    assert statuses == [200] * per_account + [429]
    assert page.headers["ratelimit-policy"] == '"events_account";q=20;w=600'
    assert int(page.headers["retry-after"]) >= 1
    assert "list" not in service.store.requests  # refused before the trail is read


async def test_an_administrators_reading_of_a_trail_is_limited_per_administrator() -> None:
    # The administrators' view costs the same LIST and up to 200 GETs a page: it is counted
    # against the calling administrator, whichever account's trail is read and from where.
    service = make_service()
    app = mounted(service, rate_limit=True)
    await service.create_user("root", "root@example.com", "Secret123!", is_admin=True)
    users = [
        await service.create_user(f"user{i}", f"u{i}@example.com", "Secret123!") for i in (1, 2)
    ]
    async with client_for(app, peer=ADMIN_PEER) as client:
        root = await login(client, "root")
    per_caller = DEFAULT_AUTH_LIMITS["events_account"].max_requests
    statuses = []
    for i in range(per_caller + 1):
        async with client_for(app, peer=(f"192.0.2.{i + 1}", 1)) as client:
            service.store.reset_counts()
            target = users[i % 2].id
            page = await client.get(
                f"/auth/admin/users/{target}/events?limit=200", headers=bearer(root)
            )
            statuses.append(page.status_code)
    assert statuses == [200] * per_caller + [429]
    assert page.headers["ratelimit-policy"] == '"events_account";q=20;w=600'
    assert "list" not in service.store.requests  # refused before the trail is read
    async with client_for(app, peer=OWNER_PEER) as client:  # the owners are not counted
        own = await client.get("/auth/me/events", headers=bearer(await login(client, "user1")))
    assert own.status_code == 200
