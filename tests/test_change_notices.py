"""The account's address is told when its authentication details change: a new password
(the user's own, by a reset link, or an administrator's) and a change of the address that
applies at once (an administrator's, or a host's through `update_user`) or that a user's
own link confirms, told to the address the account had. A notice holds no link and no
token, is sent in the background once the change has landed, and costs the store
nothing."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import SECRET, make_service
from mail_support import smtp_server
from support import StoreWrapper
from test_app import PASSWORD, assert_problem, bearer, client_for, login, mounted, register
from test_app_lifecycle import NEW_PASSWORD, admin_tokens, mailed_token, service_with
from test_cli import Run

from s3auth_asgi import S3AuthService
from s3auth_asgi.errors import StoreUnavailableError
from s3auth_asgi.mail import FileMailer
from s3auth_asgi.storage import ObjectStore, Store, keys

pytestmark = pytest.mark.anyio

ALICE = "alice@example.com"
MOVED = "moved@new.example"
LOGIN_NOTICES = ("new_device_notice", "failed_logins_notice")
"""Of logins, not of changes: `tests/test_login_notices.py`."""


async def notices(service: S3AuthService, to: str) -> list[tuple[str, str]]:
    """The notices mailed to `to`, oldest first: (kind, text)."""
    await service.mail.drain()
    assert isinstance(service.mail.mailer, FileMailer)
    found = [
        (m.kind, m.text)
        for m in reversed(service.mail.mailer.messages(100))
        if m.to == to and m.kind.endswith("_notice") and m.kind not in LOGIN_NOTICES
    ]
    for _, text in found:  # nothing in it opens anything
        assert "#token=" not in text and "://" not in text and "alice" not in text
    return found


async def test_a_users_own_new_password_is_told_to_the_accounts_address(
    tmp_path: Path,
) -> None:
    service = service_with(tmp_path)
    async with client_for(mounted(service)) as client:
        await register(client, "alice")
        tokens = await login(client, "alice")
        wrong = await client.post(
            "/auth/password",
            json={"current_password": "Wrong-pass-99", "new_password": NEW_PASSWORD},
            headers=bearer(tokens),
        )
        assert_problem(wrong, 403, "wrong_password")
        assert await notices(service, ALICE) == []  # nothing changed, nothing told
        await service.ensure_fresh()
        service.store.reset_counts()
        changed = await client.post(
            "/auth/password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            headers=bearer(tokens),
        )
        assert changed.status_code == 200, changed.text
        # The change's (`tests/test_service.py`), the caller's record, the new pair's read of
        # it (`session_opening`) and the audit event.
        assert dict(service.store.requests) == {"get": 3, "put": 7, "list": 2, "delete": 2}
        assert [kind for kind, _ in await notices(service, ALICE)] == ["password_changed_notice"]


async def test_a_reset_is_told_once_the_new_password_is_written(tmp_path: Path) -> None:
    service = service_with(tmp_path)
    async with client_for(mounted(service)) as client:
        await register(client, "alice")
        await client.post("/auth/password/forgot", json={"username": "alice"})
        token = await mailed_token(service, "password_reset", ALICE)
        refused = await client.post(
            "/auth/password/reset", json={"token": token, "new_password": "weak"}
        )
        assert_problem(refused, 422, "weak_password")
        assert await notices(service, ALICE) == []
        await service.ensure_fresh()
        service.store.reset_counts()
        done = await client.post(
            "/auth/password/reset", json={"token": token, "new_password": NEW_PASSWORD}
        )
        assert done.status_code == 204, done.text
        assert dict(service.store.requests) == {"get": 2, "put": 3, "list": 2, "delete": 1}
        assert [kind for kind, _ in await notices(service, ALICE)] == ["password_changed_notice"]


async def test_an_administrators_new_password_and_address_are_told(tmp_path: Path) -> None:
    service = service_with(tmp_path)
    async with client_for(mounted(service)) as client:
        root = bearer(await admin_tokens(service, client))
        alice = await register(client, "alice")
        path = f"/auth/admin/users/{alice['id']}"
        weak = await client.post(f"{path}/password", json={"new_password": "weak"}, headers=root)
        assert_problem(weak, 422, "weak_password")
        await service.ensure_fresh()
        service.store.reset_counts()
        done = await client.post(
            f"{path}/password", json={"new_password": NEW_PASSWORD}, headers=root
        )
        assert done.status_code == 204, done.text
        assert dict(service.store.requests) == {"get": 2, "put": 3, "list": 2}
        assert [kind for kind, _ in await notices(service, ALICE)] == ["password_changed_notice"]
        # Neither a change of case nor of another field moves the mail anywhere.
        for change in ({"email": "Alice@example.com"}, {"full_name": "Alice"}):
            assert (await client.patch(path, json=change, headers=root)).status_code == 200
        assert await notices(service, "Alice@example.com") == []
        service.store.reset_counts()
        moved = await client.patch(path, json={"email": MOVED}, headers=root)
        assert moved.status_code == 200, moved.text
        # The old address let go: retired (a PUT), then deleted.
        assert dict(service.store.requests) == {"get": 3, "put": 6, "delete": 1}
        told = await notices(service, "Alice@example.com")
        assert [kind for kind, _ in told] == ["email_changed_notice"]
        assert MOVED in told[0][1]  # the owner learns where the mail goes now
        assert await notices(service, MOVED) == []  # its link goes there instead
        await mailed_token(service, "email_verification", MOVED)


async def test_every_path_that_moves_the_account_tells_the_old_address_what_is_true(
    tmp_path: Path,
) -> None:
    service = service_with(tmp_path)
    by_host, by_user = "host@new.example", "own@new.example"
    async with client_for(mounted(service)) as client:
        root = bearer(await admin_tokens(service, client))
        alice = await register(client, "alice")
        # An administrator's change, at the admin endpoint.
        path = f"/auth/admin/users/{alice['id']}"
        assert (await client.patch(path, json={"email": MOVED}, headers=root)).status_code == 200
        # A host's, through the service, which may well act on the user's own behalf.
        await service.update_user(alice["id"], email=by_host)
        # The user's own: told when asked for, and the link mailed to it moves the account.
        tokens = await login(client, "alice")
        asked = {"email": by_user, "current_password": PASSWORD}
        own = await client.patch("/auth/me", json=asked, headers=bearer(tokens))
        assert own.status_code == 200, own.text
        link = await mailed_token(service, "email_change", by_user)
        assert (await client.post("/auth/email/verify", json={"token": link})).status_code == 204
    told = {to: await notices(service, to) for to in (ALICE, MOVED, by_host)}
    assert {to: [kind for kind, _ in found] for to, found in told.items()} == {
        ALICE: ["email_changed_notice"],
        MOVED: ["email_changed_notice"],
        # When asked, and again once its link moved the account: the first notice's
        # advice (a reset from this address) works no more.
        by_host: ["email_change_notice", "email_change_confirmed_notice"],
    }
    for to, new in ((ALICE, MOVED), (MOVED, by_host)):
        text = " ".join(told[to][0][1].split())
        # Nothing says who made it: the service cannot tell an administrator's change
        # from a host's made for the user.
        assert f"the email address of your account was changed to {new}." in text
        assert "administrator changed" not in text
    assert "asked to change its email address" in " ".join(told[by_host][0][1].split())
    landed = " ".join(told[by_host][1][1].split())
    assert f"the email address of your account is now {by_user}" in landed
    assert "administrators of the site" in landed and "reset it from" not in landed


async def test_a_users_own_new_address_is_told_to_the_old_one_once_its_link_moved_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service = service_with(tmp_path)
    async with client_for(mounted(service)) as client:
        await register(client, "alice")
        tokens = await login(client, "alice")
        asked = {"email": MOVED, "current_password": PASSWORD}
        own = await client.patch("/auth/me", json=asked, headers=bearer(tokens))
        assert own.status_code == 200, own.text
        link = await mailed_token(service, "email_change", MOVED)
        assert [kind for kind, _ in await notices(service, ALICE)] == ["email_change_notice"]
        await service.ensure_fresh()
        service.store.reset_counts()
        # Only the link's use: a framework run before may have left the root logger at
        # INFO, which would have let the events before it in.
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="s3auth_asgi.events"):
            done = await client.post("/auth/email/verify", json={"token": link})
        assert done.status_code == 204, done.text
        # As without the notice (`tests/test_email_change.py`): it costs the store nothing.
        assert dict(service.store.requests) == {"get": 3, "put": 4, "delete": 2}
        told = await notices(service, ALICE)
        assert [kind for kind, _ in told] == [
            "email_change_notice",
            "email_change_confirmed_notice",
        ]
        events = [r.auth_event for r in caplog.records if hasattr(r, "auth_event")]
        # A spent link moves nothing and tells nothing.
        again = await client.post("/auth/email/verify", json={"token": link})
        assert_problem(again, 400, "invalid_account_token")
    assert len(await notices(service, ALICE)) == 2
    assert await notices(service, MOVED) == []  # its owner opened the link there
    text = " ".join(told[1][1].split())
    assert f"is now {MOVED}" in text and "this address no longer signs in" in text
    assert [(e.name, e.outcome, e.previous_email) for e in events] == [
        ("email_change", "success", ALICE)
    ]


class UserWritesFail(StoreWrapper):
    """A real store, but for the writes of user records, which fail."""

    async def replace(self, key: str, value: Any, etag: str) -> str:
        if key.startswith(keys.USERS):
            raise StoreUnavailableError("injected: the record's PUT failed")
        return await super().replace(key, value, etag)


async def test_a_change_that_did_not_land_is_not_told(tmp_path: Path) -> None:
    inner: Store = ObjectStore.from_url("memory://")
    setup = S3AuthService(make_service().settings, store=inner)
    alice = await setup.create_user("alice", ALICE, PASSWORD)
    failing = S3AuthService(
        setup.settings, store=UserWritesFail(inner), mailer=FileMailer(tmp_path / "outbox")
    )
    with pytest.raises(StoreUnavailableError):
        await failing.set_password(alice.id, NEW_PASSWORD)
    with pytest.raises(StoreUnavailableError):
        await failing.update_user(alice.id, email=MOVED)
    assert await notices(failing, ALICE) == []


async def test_without_a_mailer_nothing_is_sent_or_warned_of(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = make_service()
    alice = await service.create_user("alice", ALICE, PASSWORD)
    with caplog.at_level(logging.WARNING, logger="s3auth_asgi.mail"):
        await service.set_password(alice.id, NEW_PASSWORD)
        await service.update_user(alice.id, email=MOVED)
    assert caplog.records == []


def test_the_cli_sends_its_notice_before_it_exits(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The command's event loop ends with the command: a notice still being sent then would
    # be cancelled, and the owner never told.
    store = ObjectStore.from_url("memory://")
    anyio.run(make_service(store=store).create_user, "alice", ALICE, PASSWORD)
    with smtp_server(delay=0.3) as server:
        for name, value in (
            ("SECRET_KEY", SECRET), ("SMTP_HOST", server.host), ("SMTP_PORT", str(server.port)),
            ("SMTP_SECURITY", "none"), ("MAIL_FROM", "auth@example.com"),
            ("PUBLIC_URL", "https://app.example.com"),
        ):  # fmt: skip
            monkeypatch.setenv(f"S3AUTH_{name}", value)
        done = Run(
            "user", "set-password", "alice", "--password-stdin",
            stdin=f"{NEW_PASSWORD}\n", open_store=lambda url: store,
        )  # fmt: skip
        assert done.code == 0, done
        assert [m["Subject"] for m in server.inbox.messages] == ["Your password was changed"]
    assert server.inbox.recipients == [[ALICE]]
    assert "not sent" not in caplog.text
