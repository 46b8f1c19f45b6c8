"""`s3auth user reset-password`: the owner is mailed the link `/password/forgot` mails, as
`POST /admin/users/{id}/password-reset` does, and chooses the password; and `user
set-password`, which the operator holding the store keeps whatever
S3AUTH_ADMIN_SETS_PASSWORDS says."""

from __future__ import annotations

import json
import re
from pathlib import Path

import anyio
import pytest
from conftest import SECRET, make_service
from test_cli import Run

from s3auth_asgi.mail import FileMailer
from s3auth_asgi.storage import ObjectStore

PASSWORD = "Secret123!"
NEW_PASSWORD = "Brand-new-pass-7"
ALICE = "alice@example.com"


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> ObjectStore:
    """A store holding alice, who has a session; the settings of a fast hash."""
    for name, value in (
        ("SECRET_KEY", SECRET), ("ARGON2_MEMORY_KIB", "1024"), ("ARGON2_TIME_COST", "1"),
    ):  # fmt: skip
        monkeypatch.setenv(f"S3AUTH_{name}", value)
    shared = ObjectStore.from_url("memory://")

    async def alice() -> None:
        service = make_service(store=shared)
        user = await service.create_user("alice", ALICE, PASSWORD)
        await service.create_token_pair(user)

    anyio.run(alice)
    return shared


def with_outbox(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FileMailer:
    monkeypatch.setenv("S3AUTH_MAIL_OUTBOX", str(tmp_path / "outbox"))
    monkeypatch.setenv("S3AUTH_MAIL_FROM", "auth@example.com")
    return FileMailer(tmp_path / "outbox")


def reset(store: ObjectStore, token: str, password: str) -> None:
    anyio.run(make_service(store=store).reset_password, token, password)


def sessions_of_alice(store: ObjectStore) -> int:
    async def count() -> int:
        service = make_service(store=store)
        user = await service.get_user_by_username("alice")
        assert user is not None
        return len(await service.get_user_active_sessions(user.id))

    return anyio.run(count)


def test_the_owner_is_mailed_a_link_and_chooses_the_password(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    outbox = with_outbox(monkeypatch, tmp_path)
    done = Run("user", "reset-password", "alice", open_store=lambda url: store)
    assert (done.code, done.err) == (0, ""), done
    assert done.out == f"reset link mailed to alice <{ALICE}>\n"
    (message,) = outbox.messages()
    assert (message.kind, message.to) == ("password_reset", ALICE)
    token = re.findall(r"#token=(\S+)", message.text)[0]
    assert token not in done.out
    assert sessions_of_alice(store) == 1  # not asked to end them
    reset(store, token, NEW_PASSWORD)

    async def trail() -> list[tuple[str, str | None]]:
        service = make_service(store=store)
        user = await service.get_user_by_username("alice")
        assert user is not None
        events, _ = await service.audit.page(user.id)
        return [(entry.event.name, entry.event.client) for entry in events]

    assert ("admin_password_reset", "cli") in anyio.run(trail)


def test_end_sessions_and_json(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    outbox = with_outbox(monkeypatch, tmp_path)
    done = Run(
        "user", "reset-password", ALICE, "--end-sessions", "--json", open_store=lambda url: store
    )
    assert (done.code, done.err) == (0, ""), done
    shown = json.loads(done.out)
    assert shown == {
        "id": shown["id"], "username": "alice", "email": ALICE, "sessions_ended": 1,
    }  # fmt: skip
    assert sessions_of_alice(store) == 0
    (message,) = outbox.messages()
    # Issued after the sessions ended: bound to the generation that ending wrote.
    reset(store, re.findall(r"#token=(\S+)", message.text)[0], NEW_PASSWORD)


def test_the_failures_exit_with_their_class(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def opened(url: str) -> ObjectStore:
        store.reset_counts()
        return store

    no_mailer = Run("user", "reset-password", "alice", open_store=opened)
    assert no_mailer.code == 3, no_mailer
    assert no_mailer.err == (
        "s3auth: no mailer is configured (S3AUTH_SMTP_HOST or S3AUTH_MAIL_OUTBOX): no reset "
        "link can be sent\n"
    )
    assert dict(store.requests) == {}  # refused before the store is asked
    outbox = with_outbox(monkeypatch, tmp_path)
    nobody = Run("user", "reset-password", "nobody", open_store=lambda url: store)
    assert nobody.code == 5, nobody
    assert Run("user", "disable", "alice", open_store=lambda url: store).code == 0
    disabled = Run("user", "reset-password", "alice", open_store=lambda url: store)
    assert disabled.code == 1, disabled
    assert "account_disabled" not in disabled.err and "disabled" in disabled.err
    assert outbox.messages() == []


def test_set_password_is_the_operators_whatever_the_api_allows(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3AUTH_ADMIN_SETS_PASSWORDS", "false")
    done = Run("user", "set-password", "alice", "--password-stdin",
               stdin=f"{NEW_PASSWORD}\n", open_store=lambda url: store)  # fmt: skip
    assert done.code == 0, done

    async def authenticates() -> bool:
        return await make_service(store=store).authenticate_user("alice", NEW_PASSWORD) is not None

    assert anyio.run(authenticates)


def test_user_create_takes_the_operators_password_whatever_the_api_allows(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API refuses a new account's chosen password under the setting; the command, run
    by whoever holds the store, does not: that is how the first administrator is made."""
    monkeypatch.setenv("S3AUTH_ADMIN_SETS_PASSWORDS", "false")
    made = Run("user", "create", "bob", "--email", "bob@example.com", "--password-stdin",
               stdin=f"{NEW_PASSWORD}\n", open_store=lambda url: store)  # fmt: skip
    assert made.code == 0, made

    async def authenticates() -> bool:
        return await make_service(store=store).authenticate_user("bob", NEW_PASSWORD) is not None

    assert anyio.run(authenticates)
