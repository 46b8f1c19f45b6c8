"""`s3auth user set-password` and the notice it mails the account's address: a notice that
could not be sent is said on stderr (the mail log is not shown without --debug), and the
command still succeeds, the password being set."""

from __future__ import annotations

import anyio
import pytest
from conftest import SECRET, make_service
from mail_support import smtp_server
from test_cli import Run
from test_cli_failures import free_port

from s3auth_asgi.storage import ObjectStore

PASSWORD = "Secret123!"
NEW_PASSWORD = "Brand-new-pass-7"
ALICE = "alice@example.com"


def mail_settings(monkeypatch: pytest.MonkeyPatch, host: str, port: int) -> None:
    for name, value in (
        ("SECRET_KEY", SECRET), ("SMTP_HOST", host), ("SMTP_PORT", str(port)),
        ("SMTP_SECURITY", "none"), ("MAIL_FROM", "auth@example.com"),
        ("PUBLIC_URL", "https://app.example.com"), ("ARGON2_MEMORY_KIB", "1024"),
        ("ARGON2_TIME_COST", "1"),
    ):  # fmt: skip
        monkeypatch.setenv(f"S3AUTH_{name}", value)


def store_with_alice() -> ObjectStore:
    store = ObjectStore.from_url("memory://")
    anyio.run(make_service(store=store).create_user, "alice", ALICE, PASSWORD)
    return store


def authenticates(store: ObjectStore, password: str) -> bool:
    async def check() -> bool:
        return await make_service(store=store).authenticate_user("alice", password) is not None

    return anyio.run(check)


def test_a_notice_not_sent_is_a_warning_and_the_password_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = store_with_alice()
    mail_settings(monkeypatch, "127.0.0.1", free_port())  # nothing listens there
    done = Run("user", "set-password", "alice", "--password-stdin",
               stdin=f"{NEW_PASSWORD}\n", open_store=lambda url: store)  # fmt: skip
    assert done.code == 0, done
    assert done.out == "password of alice set (its sessions have ended)\n"
    assert done.err == (
        f"s3auth: warning: the notice of the new password was not sent to {ALICE} "
        "(ConnectionRefusedError): tell the account's owner yourself\n"
    )
    assert NEW_PASSWORD not in done.err
    assert authenticates(store, NEW_PASSWORD)


def test_a_notice_sent_says_nothing_more(monkeypatch: pytest.MonkeyPatch) -> None:
    store = store_with_alice()
    with smtp_server() as server:
        mail_settings(monkeypatch, server.host, server.port)
        done = Run("user", "set-password", "alice", "--password-stdin",
                   stdin=f"{NEW_PASSWORD}\n", open_store=lambda url: store)  # fmt: skip
    assert (done.code, done.err) == (0, ""), done
    assert server.inbox.recipients == [[ALICE]]
