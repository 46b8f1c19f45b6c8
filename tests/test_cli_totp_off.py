"""`s3auth user totp-off`: an administrator turns a user's second factor off (a lost
device); the account's address is told, and the account's trail keeps it."""

from __future__ import annotations

import anyio
import pytest
from conftest import SECRET, make_service
from mail_support import smtp_server
from test_cli import Run

from s3auth_asgi.storage import ObjectStore
from s3auth_asgi.totp import decode_secret, totp

PASSWORD = "Secret123!"
ALICE = "alice@example.com"


def store_with_alice(factor: bool) -> tuple[ObjectStore, str]:
    store = ObjectStore.from_url("memory://")
    service = make_service(store=store)

    async def create() -> str:
        user = await service.create_user("alice", ALICE, PASSWORD)
        if factor:
            enrolment = await service.start_totp(user.id, issuer="cli")
            code = totp(decode_secret(enrolment.secret), service.clock())
            await service.confirm_totp(user.id, code)
        return user.id

    return store, anyio.run(create)


def test_the_factor_is_turned_off_the_owner_told_and_the_trail_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, user_id = store_with_alice(factor=True)
    with smtp_server() as server:
        for name, value in (
            ("SECRET_KEY", SECRET), ("SMTP_HOST", server.host), ("SMTP_PORT", str(server.port)),
            ("SMTP_SECURITY", "none"), ("MAIL_FROM", "auth@example.com"),
            ("PUBLIC_URL", "https://app.example.com"),
        ):  # fmt: skip
            monkeypatch.setenv(f"S3AUTH_{name}", value)
        done = Run("user", "totp-off", "alice", open_store=lambda url: store)
    assert (done.code, done.out, done.err) == (0, "second factor of alice turned off\n", ""), done
    assert server.inbox.recipients == [[ALICE]]
    service = make_service(store=store)

    async def after() -> tuple[bool, list[str]]:
        user = await service.get_user_by_id(user_id)
        assert user is not None
        entries, _ = await service.audit.page(user_id)
        return bool(user.totp_secret), [entry.event.name for entry in entries]

    assert anyio.run(after) == (False, ["admin_totp_disable"])


def test_a_user_without_the_factor_is_refused_and_nothing_mailed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, _ = store_with_alice(factor=False)
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    done = Run("user", "totp-off", "alice", open_store=lambda url: store)
    assert (done.code, done.out) == (1, ""), done
    assert "alice has no second factor on" in done.err
