"""A new address waits only while the link mailed to it can confirm it: once the link has
expired, by the same reckoning as its own check, nothing is shown as waiting, to the
owner, to an administrator or anywhere else, at no store request more."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_settings
from support import Clock
from test_app import PASSWORD, assert_problem, bearer, client_for, login, mounted
from test_app_lifecycle import mailed_token
from test_email_change import NEW, OLD, mail_to

from s3auth_asgi import S3AuthService
from s3auth_asgi.mail import FileMailer
from s3auth_asgi.storage import ObjectStore, Store

pytestmark = pytest.mark.anyio
HOURS = 24


def on(store: Store, tmp_path: Path, clock: Clock, hours: int = HOURS) -> S3AuthService:
    settings = make_settings(email_verification_hours=hours)
    return S3AuthService(settings, store=store, clock=clock, mailer=FileMailer(tmp_path / "out"))


async def test_an_address_whose_link_has_expired_is_not_shown_waiting(tmp_path: Path) -> None:
    clock = Clock()
    service = on(ObjectStore.from_url("memory://"), tmp_path, clock)
    await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    alice = await service.create_user("alice", OLD, PASSWORD, email_verified=True)
    await service.request_email_change(alice.id, NEW)
    link = await mailed_token(service, "email_change", NEW)
    assert await mail_to(service, NEW)
    async with client_for(mounted(service)) as client:

        async def shown() -> object:
            # Logged in again each time: the clock runs past any access token's lifetime.
            me = await login(client, "alice")
            other = await login(client, "root")
            await service.ensure_fresh()
            service.store.reset_counts()
            mine = (await client.get("/auth/me", headers=bearer(me))).json()
            # No request more than a GET /me makes: the caller's record.
            assert dict(service.store.requests) == {"get": 1}
            path = f"/auth/admin/users/{alice.id}"
            theirs = (await client.get(path, headers=bearer(other))).json()
            listed = (await client.get("/auth/admin/users", headers=bearer(other))).json()
            (row,) = [u for u in listed["users"] if u["id"] == alice.id]
            assert mine["pending_email"] == theirs["pending_email"] == row["pending_email"]
            assert mine["email"] == OLD
            return mine["pending_email"]

        assert await shown() == NEW
        clock.advance(HOURS * 3600 - 1)  # the link's last second
        assert await shown() == NEW
        clock.advance(1)
        assert await shown() is None
        # As the link's own check has it: expired.
        answer = await client.post("/auth/email/verify", json={"token": link})
        assert_problem(answer, 400, "invalid_account_token")


async def test_a_shortened_lifetime_ends_the_waiting_as_it_ends_the_link(tmp_path: Path) -> None:
    clock = Clock()
    store = ObjectStore.from_url("memory://")
    service = on(store, tmp_path, clock)
    alice = await service.create_user("alice", OLD, PASSWORD, email_verified=True)
    await service.request_email_change(alice.id, NEW)
    link = await mailed_token(service, "email_change", NEW)
    clock.advance(3600)
    shorter = on(store, tmp_path / "shorter", clock, hours=1)
    user = await shorter.get_user_by_id(alice.id)
    assert user is not None
    assert shorter.public_user(user).pending_email is None
    assert service.public_user(user).pending_email == NEW
    async with client_for(mounted(shorter)) as client:
        me = (await client.get("/auth/me", headers=bearer(await login(client, "alice")))).json()
        assert me["pending_email"] is None
        answer = await client.post("/auth/email/verify", json={"token": link})
        assert_problem(answer, 400, "invalid_account_token")
    # A new request waits again, with a link of its own.
    asked = await shorter.request_email_change(alice.id, NEW)
    assert shorter.public_user(asked.user).pending_email == NEW
