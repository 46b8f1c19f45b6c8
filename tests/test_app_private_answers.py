"""Answers that show an account (its id, names, address, sessions, events) are kept by no
cache: `Cache-Control: no-store`, on every operation that shows one, whoever asks."""

from __future__ import annotations

import httpx
import pytest
from conftest import make_service
from test_app import PASSWORD, bearer, client_for, login, mounted

pytestmark = pytest.mark.anyio


async def test_every_answer_that_shows_an_account_is_no_store() -> None:
    service = make_service()
    await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    async with client_for(mounted(service)) as client:
        admin = bearer(await login(client, "root"))
        alice = {"username": "alice", "email": "alice@example.com", "password": PASSWORD}
        answers: dict[str, httpx.Response] = {}
        answers["register"] = await client.post("/auth/register", json=alice)
        user_id = answers["register"].json()["id"]
        tokens = await login(client, "alice")
        own = bearer(tokens)
        form = {"username": "alice", "password": PASSWORD}
        answers["login"] = await client.post("/auth/login", data=form)
        answers["me"] = await client.get("/auth/me", headers=own)
        answers["update_me"] = await client.patch(
            "/auth/me", json={"full_name": "Alice"}, headers=own
        )
        answers["sessions"] = await client.get("/auth/sessions", headers=own)
        answers["my_events"] = await client.get("/auth/me/events", headers=own)
        answers["refresh"] = await client.post(
            "/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        user = f"/auth/admin/users/{user_id}"
        answers["list_users"] = await client.get("/auth/admin/users", headers=admin)
        answers["get_user"] = await client.get(user, headers=admin)
        answers["update_user"] = await client.patch(user, json={"scopes": []}, headers=admin)
        answers["user_sessions"] = await client.get(f"{user}/sessions", headers=admin)
        answers["user_events"] = await client.get(f"{user}/events", headers=admin)
        answers["create_user"] = await client.post(
            "/auth/admin/users",
            json={"username": "bob", "email": "bob@example.com", "password": PASSWORD},
            headers=admin,
        )
        answers["totp_begin"] = await client.post(
            "/auth/me/totp", json={"current_password": PASSWORD}, headers=own
        )
        answers["revoke_user"] = await client.post(f"{user}/revoke", headers=admin)
        root = bearer(await login(client, "root"))
        answers["logout_all"] = await client.post("/auth/logout-all", headers=root)
    for name, answer in answers.items():
        assert answer.status_code in (200, 201), (name, answer.text)
        assert answer.headers.get("cache-control") == "no-store", name
