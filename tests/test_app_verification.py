"""The verification link the auth app mails after a change of address (a registration, a
new email by an administrator, an account an administrator creates): the change is
committed first, so a store that fails the link's token write afterwards costs the link,
not the answer. The request answers as the change did, its hooks run and its event is a
success; the user asks for a new link with `/email/verify/resend`. (A user's own new
address waits for its link, which is made first: `test_email_change`.)"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from support import StoreWrapper
from test_app import PASSWORD, bearer, client_for, login, mounted, register
from test_app_lifecycle import mailed_token, service_with

from s3auth_asgi import S3AuthService, StoreUnavailableError
from s3auth_asgi.events import AuthEvent
from s3auth_asgi.hooks import Hooks
from s3auth_asgi.mail import FileMailer
from s3auth_asgi.storage import ObjectStore, Store, keys

pytestmark = pytest.mark.anyio


class TokenWritesFail(StoreWrapper):
    """A real store, but for the writes of mailed tokens, which fail while `failing`, as
    they would with the store unreachable just after the change's own write."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.failing = True

    async def create(self, key: str, value: Any) -> str:
        if self.failing and key.startswith(keys.ACCOUNT_TOKENS):
            raise StoreUnavailableError("injected: the token's PUT failed")
        return await super().create(key, value)


async def trail(service: S3AuthService, user_id: str) -> list[tuple[str, str]]:
    page, _ = await service.audit.page(user_id)
    return [(entry.event.name, entry.event.outcome) for entry in page]


async def resend_and_verify(service: S3AuthService, client: Any, name: str, to: str) -> None:
    resent = await client.post("/auth/email/verify/resend", json={"username": name})
    assert resent.status_code == 202
    token = await mailed_token(service, "email_verification", to)
    verified = await client.post("/auth/email/verify", json={"token": token})
    assert verified.status_code == 204


async def test_a_link_the_store_fails_to_keep_fails_no_change(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = TokenWritesFail(ObjectStore.from_url("memory://"))
    hooks = Hooks()
    seen: list[tuple[str, str | None, str]] = []

    @hooks.on("after_register")
    @hooks.on("user_updated")
    async def record(event: AuthEvent) -> None:
        seen.append((event.name, event.user_id, event.outcome))

    service = service_with(tmp_path, store=store, hooks=hooks)
    await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    async with client_for(mounted(service)) as client:
        admin = bearer(await login(client, "root"))
        caplog.clear()  # what the requests log, not the app's warning of the test's cheap hashing
        with caplog.at_level(logging.WARNING, logger="s3auth_asgi.app"):
            alice = await register(client, "alice")  # 201, or it fails here
            created = await client.post(
                "/auth/admin/users",
                json={"username": "bob", "email": "bob@example.com", "password": PASSWORD},
                headers=admin,
            )
            assert created.status_code == 201, created.text
            bob = created.json()
            await login(client, "alice")
            changed = await client.patch(
                f"/auth/admin/users/{bob['id']}", json={"email": "bob@new.example"}, headers=admin
            )
            assert changed.status_code == 200, changed.text
        assert alice["email"] == "alice@example.com" and not alice["email_verified"]
        assert bob["username"] == "bob" and not bob["email_verified"]
        assert changed.json()["email"] == "bob@new.example"
        assert seen == [
            ("register", alice["id"], "success"),
            ("admin_user_create", bob["id"], "success"),
            ("admin_user_update", bob["id"], "success"),
        ]
        assert await trail(service, alice["id"]) == [
            ("login", "success"),
            ("register", "success"),
        ]
        assert await trail(service, bob["id"]) == [
            ("admin_user_update", "success"),
            ("admin_user_create", "success"),
        ]
        warnings = [r.getMessage() for r in caplog.records if r.name == "s3auth_asgi.app"]
        assert warnings == [
            f"no verification link for user {user_id}: store_unavailable"
            for user_id in (alice["id"], bob["id"], bob["id"])
        ]
        assert [info.key async for info in store.list(keys.ACCOUNT_TOKENS)] == []
        # The store is back: a link asked for again arrives and verifies the address.
        store.failing = False
        await resend_and_verify(service, client, "alice", "alice@example.com")
        await resend_and_verify(service, client, "bob", "bob@new.example")
    for name in ("alice", "bob"):
        user = await service.get_user_by_username(name)
        assert user is not None and user.email_verified


async def test_a_profile_change_without_a_new_address_mails_no_link(tmp_path: Path) -> None:
    """Only a new address is mailed a link: an unverified account that edits its name gets
    no mail and costs no token write, however often it does."""
    service = service_with(tmp_path)
    async with client_for(mounted(service)) as client:
        await register(client, "alice")
        tokens = await login(client, "alice")
        await service.mail.drain()
        assert isinstance(service.mail.mailer, FileMailer)
        before = len(service.mail.mailer.messages())
        for name in ("Alice", "Alice A."):
            edited = await client.patch(
                "/auth/me", json={"full_name": name}, headers=bearer(tokens)
            )
            assert edited.status_code == 200, edited.text
        await service.mail.drain()
        assert len(service.mail.mailer.messages()) == before
        assert len([i async for i in service.store.list(keys.ACCOUNT_TOKENS)]) == 1
