"""Auth events: one record of the `s3auth_asgi.events` logger per request to an operation
that declares an event, with stable fields, and never a password, a token or a hash."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, get_args

import pytest
from conftest import make_service, make_settings
from support import Clock
from test_app import PASSWORD, bearer, client_for, login, mounted, register
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from s3auth_asgi import S3AuthService
from s3auth_asgi.app.table import operations_of
from s3auth_asgi.events import AuthEvent, EventName
from s3auth_asgi.hooks import Hooks

pytestmark = pytest.mark.anyio

FIELDS = ("event", "outcome", "reason", "user_id", "actor_id", "session_id", "client", "user_agent")


def events(caplog: pytest.LogCaptureFixture) -> list[AuthEvent]:
    found = [r for r in caplog.records if r.name == "s3auth_asgi.events"]
    for record in found:  # the flat fields agree with the Struct
        event: AuthEvent = record.auth_event  # type: ignore[attr-defined]
        assert record.event == event.name  # type: ignore[attr-defined]
        for field in FIELDS[1:]:
            assert getattr(record, field) == getattr(event, field)
    return [record.auth_event for record in found]  # type: ignore[attr-defined]


def summary(event: AuthEvent) -> tuple[str, str, str | None]:
    return (event.name, event.outcome, event.reason)


async def test_a_session_from_registration_to_logout_is_recorded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="s3auth_asgi.events")
    service = make_service()
    app = mounted(service, rate_limit=True)
    async with client_for(app, peer=("192.0.2.7", 1)) as client:
        user = await register(client, "alice")
        wrong = await client.post("/auth/login", data={"username": "alice", "password": "Nope1!"})
        assert wrong.status_code == 401
        tokens = await login(client, "alice")
        fresh = (
            await client.post("/auth/refresh", data={"refresh_token": tokens["refresh_token"]})
        ).json()
        assert (await client.post("/auth/logout", headers=bearer(fresh))).status_code == 204
    recorded = events(caplog)
    assert [summary(e) for e in recorded] == [
        ("register", "success", None),
        ("login", "failure", "invalid_credentials"),
        ("login", "success", None),
        ("refresh", "success", None),
        ("logout", "success", None),
    ]
    assert all(e.client == "192.0.2.7" for e in recorded)
    register_event, failed, logged_in, refreshed, logged_out = recorded
    assert register_event.user_id == user["id"]
    # A failed login names no account: the name typed may be a mistyped password.
    assert failed.user_id is None and failed.session_id is None
    assert logged_in.user_id == user["id"] and logged_in.session_id
    assert refreshed.session_id == logged_in.session_id == logged_out.session_id
    assert logged_out.user_id == user["id"]


async def test_events_are_stamped_by_the_service_clock(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An app's events take their time from the clock the service was given, as the CLI's
    and the sweep's do: the log, the audit trail and its keys, and the retention agree."""
    caplog.set_level(logging.INFO, logger="s3auth_asgi.events")
    clock = Clock()
    clock.advance(-400 * 86400)  # a host whose clock is far from the machine's
    service = S3AuthService(make_settings(), clock=clock)
    async with client_for(mounted(service)) as client:
        user = await register(client, "alice")
        clock.advance(60)
        await login(client, "alice")
    assert [e.at for e in events(caplog)] == [clock() - 60, clock()]
    trail, _ = await service.audit.page(user["id"])
    assert [e.event.at for e in trail] == [clock(), clock() - 60]
    # The retention is judged on the same clock: a year on it, both are past it.
    clock.advance(service.settings.audit_retention_days * 86400 + 1)
    assert await service.audit.cleanup() == 2


async def test_reuse_is_an_error(caplog: pytest.LogCaptureFixture) -> None:
    service = make_service(refresh_grace_seconds=0)
    async with client_for(mounted(service)) as client:
        await register(client, "alice")
        tokens = await login(client, "alice")
        spent = tokens["refresh_token"]
        assert (await client.post("/auth/refresh", data={"refresh_token": spent})).is_success
        caplog.set_level(logging.INFO, logger="s3auth_asgi.events")
        caplog.clear()
        reused = await client.post("/auth/refresh", data={"refresh_token": spent})
        assert reused.status_code == 401
    (record,) = [r for r in caplog.records if r.name == "s3auth_asgi.events"]
    assert record.levelname == "ERROR"
    event: AuthEvent = record.auth_event  # type: ignore[attr-defined]
    assert summary(event) == ("refresh", "failure", "refresh_token_reused")
    # The token's MAC matched its session before it was found spent: whose session the
    # stolen token ended is known, and is what the alarm is for.
    names = service.tokens.parse_refresh_token(spent)
    assert (event.user_id, event.session_id) == (names.user_id, names.session_id)
    # Its owner reads why the session ended.
    trail, _ = await service.audit.page(names.user_id, limit=1)
    assert summary(trail[0].event) == ("refresh", "failure", "refresh_token_reused")
    assert trail[0].event.session_id == names.session_id


async def test_rate_limit_refusals_are_recorded_as_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="s3auth_asgi.events")
    service = make_service()
    async with client_for(mounted(service, rate_limit=True)) as client:
        for _ in range(6):
            await client.post("/auth/login", data={"username": "bob", "password": "Nope1!"})
    outcomes = [summary(e) for e in events(caplog)]
    assert {r.levelname for r in caplog.records if r.name == "s3auth_asgi.events"} == {"WARNING"}
    assert outcomes[-1] == ("login", "refused", "rate_limited")
    assert outcomes.count(("login", "failure", "invalid_credentials")) == 5


async def test_an_administrator_acting_is_named_as_the_actor(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = make_service()
    root = await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    async with client_for(mounted(service)) as client:
        alice = await register(client, "alice")
        tokens = await login(client, "root")
        caplog.set_level(logging.INFO, logger="s3auth_asgi.events")
        caplog.clear()
        response = await client.patch(
            f"/auth/admin/users/{alice['id']}", json={"is_active": False}, headers=bearer(tokens)
        )
        assert response.status_code == 200
    (event,) = events(caplog)
    assert summary(event) == ("admin_user_update", "success", None)
    assert event.user_id == alice["id"] and event.actor_id == root.id


async def test_no_secret_reaches_the_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    service = make_service()
    async with client_for(mounted(service, rate_limit=True)) as client:
        await register(client, "alice")
        await client.post("/auth/login", data={"username": PASSWORD, "password": "alice"})
        tokens = await login(client, "alice")
        await client.post("/auth/refresh", data={"refresh_token": tokens["refresh_token"]})
        await client.post(
            "/auth/password",
            json={"current_password": PASSWORD, "new_password": "Another-horse-42"},
            headers=bearer(tokens),
        )
    user = await service.get_user_by_username("alice")
    assert user is not None
    secrets = [
        PASSWORD,
        "Another-horse-42",
        tokens["access_token"],
        tokens["refresh_token"],
        user.hashed_password,
        service.settings.secret_key,
    ]
    logged: list[Any] = []
    for record in caplog.records:
        logged.append(record.getMessage())
        logged.extend(str(value) for value in vars(record).values())
    for secret in secrets:
        assert not any(secret in text for text in logged)


def test_every_state_changing_operation_declares_an_event() -> None:
    service = make_service()
    app = mounted(service)
    auth_app: Any = app.routes[0].app  # type: ignore[attr-defined]
    ops = operations_of(auth_app.routes)
    declared: dict[str, EventName | None] = {op.operation_id: op.event for op in ops}
    for op in ops:
        if op.method != "GET":
            assert op.event is not None, op.operation_id
    assert declared["login"] == "login"


def documented_events() -> dict[str, str]:
    """Each event name of the security page's table, with the text of its row."""
    page = (Path(__file__).parent.parent / "docs" / "security.md").read_text()
    table = page.split("| `event` | operation |", 1)[1].split("\n\n", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    return {name: row for row in rows for name in re.findall(r"`([a-z_]+)`", row.split(" | ")[0])}


def test_the_security_page_lists_every_event_with_its_operations() -> None:
    documented = documented_events()
    assert sorted(documented) == sorted(get_args(EventName))
    auth_app: Any = mounted(make_service()).routes[0].app  # type: ignore[attr-defined]
    for op in operations_of(auth_app.routes):
        if op.event is not None:
            row = documented[op.event]
            assert op.method in row and f"{op.path}`" in row, (op.event, op.method, op.path)


def telling_revocations() -> tuple[S3AuthService, list[AuthEvent]]:
    """A service, and the events its `session_revoked` hooks are handed, as they come."""
    hooks = Hooks()
    revoked: list[AuthEvent] = []

    @hooks.on("session_revoked")
    async def seen(event: AuthEvent) -> None:
        revoked.append(event)

    return S3AuthService(make_settings(), hooks=hooks), revoked


async def test_a_logout_by_refresh_token_names_its_account_and_session(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The OAuth2 way to log out, the refresh token in the body, names the session as the
    # bearer token does: in the log, in the account's trail and to the hooks.
    service, revoked = telling_revocations()
    async with client_for(mounted(service)) as client:
        alice = await register(client, "alice")
        tokens = await login(client, "alice")
        session_id = service.tokens.parse_refresh_token(tokens["refresh_token"]).session_id
        # A token of alice's id whose session is nobody's names nobody: it proves nothing.
        forged = f"rt1.{alice['id']}.{'0' * 32}.0.{'A' * 43}"
        caplog.set_level(logging.INFO, logger="s3auth_asgi.events")
        caplog.clear()  # what earlier requests logged, at a level another test left
        for refresh_token in (forged, tokens["refresh_token"]):
            body = {"refresh_token": refresh_token}
            assert (await client.post("/auth/logout", json=body)).status_code == 204
    assert [(e.user_id, e.session_id) for e in events(caplog)] == [
        (None, None),
        (alice["id"], session_id),
    ]
    assert [(e.name, e.user_id, e.session_id) for e in revoked] == [
        ("logout", None, None),
        ("logout", alice["id"], session_id),
    ]
    trail, _ = await service.audit.page(alice["id"])
    assert [entry.event.name for entry in trail] == ["logout", "login", "register"]
    assert trail[0].event.session_id == session_id


async def test_the_client_of_an_event_is_clean_bounded_text_as_sessions_record_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """uvicorn's proxy headers (its default, here trusting every peer as
    `--forwarded-allow-ips='*'` does) make the client whatever X-Forwarded-For says, as
    the server hands it on: no address, 0x80-0x9F (C1 controls read as Latin-1, NEL a line
    break to many log readers) and as long as the parser takes. The event, its log record
    and the account's trail name it as the session does: clean and cut to its length."""
    caplog.set_level(logging.INFO, logger="s3auth_asgi.events")
    service = make_service()
    app = ProxyHeadersMiddleware(mounted(service), trusted_hosts="*")  # type: ignore[arg-type]
    forged = b"203.0.113.9\x85auth event login success\x9b31m" + b"x" * 20_000
    async with client_for(app, headers={"X-Forwarded-For": forged}) as client:  # type: ignore[dict-item]
        alice = await register(client, "alice")
        wrong = await client.post("/auth/login", data={"username": "alice", "password": "Nope1!"})
        assert wrong.status_code == 401
        await login(client, "alice")
    (session,) = await service.get_user_active_sessions(alice["id"])
    assert session.ip_address == ("203.0.113.9auth event login success31m" + "x" * 64)[:64]
    recorded = events(caplog)
    assert [e.name for e in recorded] == ["register", "login", "login"]
    assert {e.client for e in recorded} == {session.ip_address}
    trail, _ = await service.audit.page(alice["id"])
    assert {entry.event.client for entry in trail} == {session.ip_address}


async def test_ending_one_of_ones_sessions_names_the_session_ended(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`session_end` is about the session it ended, as `admin_session_end` is: the log, the
    trail and the `session_revoked` hooks name that one, not the caller's, which goes on."""
    service, revoked = telling_revocations()
    async with client_for(mounted(service)) as client:
        alice = await register(client, "alice")
        laptop, phone = await login(client, "alice"), await login(client, "alice")
        ended = service.tokens.parse_refresh_token(phone["refresh_token"]).session_id
        caplog.set_level(logging.INFO, logger="s3auth_asgi.events")
        caplog.clear()
        answer = await client.delete(f"/auth/sessions/{ended}", headers=bearer(laptop))
        assert answer.status_code == 204
    (event,) = events(caplog)
    assert (event.name, event.user_id, event.session_id) == ("session_end", alice["id"], ended)
    assert revoked == [event]
    trail, _ = await service.audit.page(alice["id"], limit=1)
    assert trail[0].event == event
