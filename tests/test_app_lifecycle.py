"""The account lifecycle through the auth app: password reset and email verification
(no enumeration at the HTTP level, a login that needs a verified address; their limits are
`test_recovery_limits`'), the audit trail, hooks, and the administrators' account tools."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import make_settings
from test_app import PASSWORD, assert_problem, bearer, client_for, login, mounted, register

from s3auth_asgi import S3AuthService, S3ValidationError
from s3auth_asgi.events import AuthEvent
from s3auth_asgi.hooks import Hooks, Registration
from s3auth_asgi.mail import FileMailer
from s3auth_asgi.storage import keys

pytestmark = pytest.mark.anyio

NEW_PASSWORD = "Brand-new-pass-7"


def service_with(tmp_path: Path, **options: Any) -> S3AuthService:
    settings = make_settings(**options.pop("settings", {}))
    return S3AuthService(settings, mailer=FileMailer(tmp_path / "outbox"), **options)


async def mailed_token(service: S3AuthService, kind: str, to: str) -> str:
    await service.mail.drain()
    assert isinstance(service.mail.mailer, FileMailer)
    for message in service.mail.mailer.messages():
        if message.kind == kind and message.to == to:
            found = re.search(r"#token=(\S+)", message.text)
            assert found is not None
            return found[1]
    raise AssertionError(f"no {kind} message to {to}")


async def admin_tokens(service: S3AuthService, client: httpx.AsyncClient) -> dict[str, Any]:
    await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    return await login(client, "root")


async def test_forgot_answers_alike_for_anyone(tmp_path: Path) -> None:
    service = service_with(tmp_path)
    async with client_for(mounted(service)) as client:
        await register(client, "alice")
        off = await register(client, "off")
        await service.update_user(off["id"], is_active=False)
        answers = set()
        for name in ("alice", "alice@example.com", "nobody", "nobody@example.com", "off"):
            service.store.reset_counts()
            response = await client.post("/auth/password/forgot", json={"username": name})
            answers.add((response.status_code, response.text, repr(dict(service.store.requests))))
        assert answers == {
            (
                202,
                '{"detail":"If the name is an account\'s, a message with a reset link is on '
                'its way."}',
                repr({"get": 2, "put": 1}),
            )
        }
        bad = await client.post("/auth/password/forgot", json={"username": 7})
        assert_problem(bad, 422, "validation_error")


async def test_a_verified_address_can_be_required(tmp_path: Path) -> None:
    service = service_with(tmp_path, settings={"require_verified_email": True})
    async with client_for(mounted(service)) as client:
        await register(client, "alice")
        refused = await client.post("/auth/login", data={"username": "alice", "password": PASSWORD})
        assert_problem(refused, 403, "email_not_verified")
        wrong = await client.post("/auth/login", data={"username": "alice", "password": "x"})
        assert_problem(wrong, 401, "invalid_credentials")  # only the password's holder hears
        resent = await client.post("/auth/email/verify/resend", json={"username": "alice"})
        assert resent.status_code == 202
        token = await mailed_token(service, "email_verification", "alice@example.com")
        reset = await client.post(
            "/auth/password/reset", json={"token": token, "new_password": NEW_PASSWORD}
        )
        assert_problem(reset, 400, "invalid_account_token")  # purpose-bound
        verified = await client.post("/auth/email/verify", json={"token": token})
        assert verified.status_code == 204
        tokens = await login(client, "alice")
        me = (await client.get("/auth/me", headers=bearer(tokens))).json()
        assert me["email_verified"] is True
        # A new address waits for the link mailed to it; the verified one stays.
        changed = await client.patch(
            "/auth/me",
            json={"email": "alice@new.example", "current_password": PASSWORD},
            headers=bearer(tokens),
        )
        assert changed.json()["email_verified"] is True
        assert changed.json()["pending_email"] == "alice@new.example"
        assert await mailed_token(service, "email_change", "alice@new.example")
        assert (await login(client, "alice"))["access_token"]


async def test_the_audit_trail_newest_first_for_the_user_and_admins(tmp_path: Path) -> None:
    service = service_with(tmp_path)
    async with client_for(mounted(service)) as client:
        root = await admin_tokens(service, client)
        alice = await register(client, "alice")
        wrong = await client.post("/auth/login", data={"username": "alice", "password": "no"})
        assert wrong.status_code == 401
        tokens = await login(client, "alice")
        service.store.reset_counts()
        await service.audit.page(alice["id"], limit=2)
        assert dict(service.store.requests) == {"list": 1, "get": 2}
        page = await client.get("/auth/me/events?limit=2", headers=bearer(tokens))
        body = page.json()
        assert [e["event"]["name"] for e in body["events"]] == ["login", "login"]
        assert [e["event"]["outcome"] for e in body["events"]] == ["success", "failure"]
        rest = await client.get(
            f"/auth/me/events?after={body['next_cursor']}", headers=bearer(tokens)
        )
        assert [e["event"]["name"] for e in rest.json()["events"]] == ["register"]
        assert rest.json()["next_cursor"] is None
        # An administrator sees it all, its own actions on the account too.
        await client.patch(
            f"/auth/admin/users/{alice['id']}", json={"scopes": ["read"]}, headers=bearer(root)
        )
        admin_view = await client.get(
            f"/auth/admin/users/{alice['id']}/events", headers=bearer(root)
        )
        events = [e["event"] for e in admin_view.json()["events"]]
        assert events[0]["name"] == "admin_user_update"
        assert events[0]["actor_id"] != alice["id"] and events[0]["user_id"] == alice["id"]
        assert len(events) == 4
        for cursor in ("../../x", "²³.ab", "١٢.ab"):  # only digits a key of ours can hold
            bad = await client.get(
                "/auth/me/events", params={"after": cursor}, headers=bearer(root)
            )
            assert_problem(bad, 422, "validation_error")
    # The sweep removes events past the retention, from their keys alone.
    later = S3AuthService(make_settings(), store=service.store, clock=lambda: 10**10)
    assert await later.cleanup_expired_tokens() >= 5
    assert [i async for i in service.store.list(keys.AUDIT)] == []


async def test_an_id_that_is_nobodys_gets_404_and_starts_no_trail(tmp_path: Path) -> None:
    service = service_with(tmp_path)
    async with client_for(mounted(service)) as client:
        root = bearer(await admin_tokens(service, client))
        nobody = "0" * 32
        before = [info.key async for info in service.store.list(keys.AUDIT)]
        for method, path, body in [
            ("PATCH", "", {"full_name": "X"}),
            ("DELETE", "", None),
            ("POST", "/password", {"new_password": NEW_PASSWORD}),
            ("POST", "/revoke", None),
            ("DELETE", f"/sessions/{'1' * 32}", None),
            ("GET", "/events", None),
        ]:
            response = await client.request(
                method, f"/auth/admin/users/{nobody}{path}", json=body, headers=root
            )
            assert response.status_code == 404, (method, path, response.text)
        assert [info.key async for info in service.store.list(keys.AUDIT)] == before
        # A deleted user's trail is still there to read, its deletion included.
        alice = await register(client, "alice")
        deleted = await client.delete(f"/auth/admin/users/{alice['id']}", headers=root)
        assert deleted.status_code == 204
        trail = await client.get(f"/auth/admin/users/{alice['id']}/events", headers=root)
        assert trail.status_code == 200
        names = [e["event"]["name"] for e in trail.json()["events"]]
        assert names == ["admin_user_delete", "register"]


async def test_a_deleted_users_trail_swept_between_pages_ends_with_an_empty_page(
    tmp_path: Path,
) -> None:
    """The page after a cursor follows a trail that was there: the retention sweep may
    remove its last events (and with them the trail of a deleted account) before it is
    read, which makes it an empty last page, not a 404 for an id that was never anyone's."""
    service = service_with(tmp_path)
    async with client_for(mounted(service)) as client:
        root = bearer(await admin_tokens(service, client))
        alice = await register(client, "alice")
        assert (await client.delete(f"/auth/admin/users/{alice['id']}", headers=root)).is_success
        path = f"/auth/admin/users/{alice['id']}/events"
        first = await client.get(f"{path}?limit=1", headers=root)
        assert first.status_code == 200
        cursor = first.json()["next_cursor"]
        assert cursor is not None
        # The sweep runs between the pages, and every event left is past the retention.
        swept = [info.key async for info in service.store.list(keys.user_audit(alice["id"]))]
        for key in swept:
            await service.store.delete(key)
        service.store.reset_counts()
        last = await client.get(path, params={"after": cursor}, headers=root)
        assert last.status_code == 200, last.text
        assert last.json() == {"events": [], "next_cursor": None}
        # The listing, and the caller's own account: nothing is asked of the deleted one.
        assert dict(service.store.requests) == {"list": 1, "get": 1}
        # Without a cursor nothing says the trail was there: an id with none is a 404.
        assert_problem(await client.get(path, headers=root), 404, "user_not_found")


async def test_hooks_run_fail_alone_and_can_refuse_a_registration(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hooks = Hooks()
    seen: list[tuple[str, str | None]] = []

    @hooks.on("after_register")
    async def broken(event: AuthEvent) -> None:
        raise RuntimeError("the welcome mail failed")

    @hooks.on("after_register")
    @hooks.on("after_login")
    @hooks.on("login_failed")
    @hooks.on("after_password_reset")
    async def record(event: AuthEvent) -> None:
        seen.append((event.name, event.user_id))

    @hooks.before_register
    async def invited_only(registration: Registration) -> None:
        if registration.email.endswith("@uninvited.example"):
            raise S3ValidationError("Registration is by invitation")
        if registration.username == "crash":
            raise RuntimeError("the invitation store is down")

    service = service_with(tmp_path, hooks=hooks)
    async with client_for(mounted(service)) as client:
        with caplog.at_level(logging.ERROR, logger="s3auth_asgi.hooks"):
            alice = await register(client, "alice")
        assert "after_register hook" in caplog.text and "welcome mail failed" in caplog.text
        await login(client, "alice")
        await client.post("/auth/login", data={"username": "alice", "password": "wrong"})
        await client.post("/auth/login", data={"username": "nobody", "password": "wrong"})
        await client.post("/auth/password/forgot", json={"username": "alice"})
        token = await mailed_token(service, "password_reset", "alice@example.com")
        await client.post(
            "/auth/password/reset", json={"token": token, "new_password": NEW_PASSWORD}
        )
        assert seen == [
            ("register", alice["id"]),
            ("login", alice["id"]),
            ("login", alice["id"]),  # the account of the failed login
            ("login", None),
            ("password_reset", alice["id"]),
        ]
        vetoed = await client.post(
            "/auth/register",
            json={"username": "eve", "email": "eve@uninvited.example", "password": PASSWORD},
        )
        assert_problem(vetoed, 422, "validation_error")
        crashed = await client.post(
            "/auth/register",
            json={"username": "crash", "email": "crash@example.com", "password": PASSWORD},
        )
        assert_problem(crashed, 503, "hook_failed")
        assert await service.get_user_by_username("eve") is None
        assert await service.get_user_by_username("crash") is None


async def test_a_username_shaped_like_an_id_is_refused_everywhere_names_are_made(
    tmp_path: Path,
) -> None:
    # An id-shaped name would let an account stand for another's id wherever a tool takes
    # either (`s3auth user delete ID`); in any case or width it folds to one.
    service = service_with(tmp_path)
    async with client_for(mounted(service)) as client:
        root = await admin_tokens(service, client)
        root_user = await service.get_user_by_username("root")
        assert root_user is not None
        for name in (root_user.id, "0123456789ABCDEF0123456789abcdef", "０" * 32):
            body = {"username": name, "email": "x@example.com", "password": PASSWORD}
            registered = await client.post("/auth/register", json=body)
            assert "id" in assert_problem(registered, 422, "invalid_username")["detail"]
            created = await client.post("/auth/admin/users", json=body, headers=bearer(root))
            assert_problem(created, 422, "invalid_username")
        # One hex digit more or less is a name like any other.
        assert (await register(client, "0123456789abcdef0123456789abcde"))["username"]


async def test_admin_tools(tmp_path: Path) -> None:
    service = service_with(tmp_path)
    async with client_for(mounted(service)) as client:
        root = await admin_tokens(service, client)
        created = await client.post(
            "/auth/admin/users",
            json={"username": "ops", "email": "ops@example.com", "password": PASSWORD,
                  "scopes": ["admin", "read"], "email_verified": True},
            headers=bearer(root),
        )  # fmt: skip
        assert created.status_code == 201, created.text
        ops = created.json()
        assert ops["is_admin"] is True and ops["scopes"] == ["read"] and ops["email_verified"]
        fetched = await client.get(f"/auth/admin/users/{ops['id']}", headers=bearer(root))
        assert fetched.json() == ops
        ops_tokens = await login(client, "ops")
        sessions = await client.get(f"/auth/admin/users/{ops['id']}/sessions", headers=bearer(root))
        (session,) = sessions.json()["sessions"]
        ended = await client.delete(
            f"/auth/admin/users/{ops['id']}/sessions/{session['id']}", headers=bearer(root)
        )
        assert ended.status_code == 204
        assert (await client.get("/auth/me", headers=bearer(ops_tokens))).status_code == 401
        again = await client.delete(
            f"/auth/admin/users/{ops['id']}/sessions/{session['id']}", headers=bearer(root)
        )
        assert_problem(again, 404, "session_not_found")
        set_password = await client.post(
            f"/auth/admin/users/{ops['id']}/password",
            json={"new_password": NEW_PASSWORD},
            headers=bearer(root),
        )
        assert set_password.status_code == 204
        await login(client, "ops", NEW_PASSWORD)
        weak = await client.post(
            f"/auth/admin/users/{ops['id']}/password",
            json={"new_password": "weak"},
            headers=bearer(root),
        )
        assert_problem(weak, 422, "weak_password")
        found = await client.get("/auth/admin/users?search=OPS@", headers=bearer(root))
        assert [u["username"] for u in found.json()["users"]] == ["ops"]
        denied = await client.get(
            "/auth/admin/users", headers=bearer(await login(client, "ops", NEW_PASSWORD))
        )
        assert denied.status_code == 200  # ops is an administrator: the admin scope grants it
        await register(client, "plain")
        plain = await login(client, "plain")
        refused = await client.post("/auth/admin/users", json={}, headers=bearer(plain))
        assert_problem(refused, 403, "insufficient_scope")
