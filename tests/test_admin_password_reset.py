"""An administrator starts a user's password reset (`POST /admin/users/{id}/password-reset`):
the owner is mailed the link `/password/forgot` mails, and chooses the password; the
administrator never learns one. Bounded by the owner's inbox budgets, which the public
flow spends too. And S3AUTH_ADMIN_SETS_PASSWORDS=false, which refuses an administrator's
chosen password at the API."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import make_settings
from declared_answers import DeclaredAnswers
from support import Clock, clock_fixture  # noqa: F401 (a fixture)
from test_app import PASSWORD, assert_problem, auth_app, bearer, client_for, login, register

from s3auth_asgi import S3AuthService
from s3auth_asgi.app import DEFAULT_AUTH_LIMITS
from s3auth_asgi.mail import FileMailer
from s3auth_asgi.storage import ObjectStore

pytestmark = pytest.mark.anyio

NEW_PASSWORD = "Brand-new-pass-7"
PER_ACCOUNT_AND_ADDRESS = DEFAULT_AUTH_LIMITS["recovery_account"].max_requests


def service_for(
    tmp_path: Path, clock: Clock, *, mail: bool = True, **settings: Any
) -> S3AuthService:
    """Limits in the store, as on a fleet; an outbox for a mailer, or none."""
    return S3AuthService(
        make_settings(rate_limit_store="store", **settings),
        store=ObjectStore.from_url("memory://"),
        clock=clock,
        mailer=FileMailer(tmp_path / "outbox") if mail else None,
    )


def checked(service: S3AuthService, **options: Any) -> httpx.AsyncClient:
    """A client of the auth app at /auth, each answer checked against its document."""
    from starlette.applications import Starlette
    from starlette.routing import Mount

    app = auth_app(service, **options)
    host = Starlette(routes=[Mount("/auth", app=app)])
    return client_for(host, declared=DeclaredAnswers.of(app))


async def reset_links(service: S3AuthService, to: str = "alice@example.com") -> list[str]:
    """The reset tokens mailed to `to`, newest first."""
    await service.mail.drain()
    assert isinstance(service.mail.mailer, FileMailer)
    return [
        re.findall(r"#token=(\S+)", message.text)[0]
        for message in service.mail.mailer.messages(1000)
        if message.kind == "password_reset" and message.to == to
    ]


async def root_and_alice(
    service: S3AuthService, client: httpx.AsyncClient
) -> tuple[dict[str, str], str]:
    """An administrator's bearer header, and alice's id."""
    await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    alice = await register(client, "alice")
    return bearer(await login(client, "root")), alice["id"]


async def test_the_owner_is_mailed_the_link_and_chooses_the_password(
    tmp_path: Path, clock: Clock
) -> None:
    service = service_for(tmp_path, clock)
    async with checked(service) as client:
        root, alice = await root_and_alice(service, client)
        service.store.reset_counts()
        started = await client.post(f"/auth/admin/users/{alice}/password-reset", headers=root)
        assert started.status_code == 202, started.text
        assert started.json() == {
            "detail": "A message with a reset link is on its way to the account's address.",
            "sessions_ended": 0,
        }
        assert started.headers["cache-control"] == "no-store"
        # The revocations' sync (a LIST, the cut-off's GET) and the caller's record, as at
        # every admin operation;
        # alice's record, the link's token, the event: no write of alice's record.
        assert dict(service.store.requests) == {"list": 1, "get": 3, "put": 2}
        (link,) = await reset_links(service)
        assert link not in started.text
        # The owner sets the password; the administrator's old knowledge is none.
        reset = await client.post(
            "/auth/password/reset", json={"token": link, "new_password": NEW_PASSWORD}
        )
        assert reset.status_code == 204
        await login(client, "alice", NEW_PASSWORD)
        trail = await client.get(f"/auth/admin/users/{alice}/events", headers=root)
        kept = [e["event"] for e in trail.json()["events"]]
        root_id = (await client.get("/auth/me", headers=root)).json()["id"]
        # One clock throughout: the events are told apart by name, not by their order.
        assert {(e["name"], e["outcome"], e["actor_id"]) for e in kept} == {
            ("register", "success", None),
            ("login", "success", None),
            ("admin_password_reset", "success", root_id),
            ("password_reset", "success", None),
        }
        own = await client.get(
            "/auth/me/events", headers=bearer(await login(client, "alice", NEW_PASSWORD))
        )
        shown = [e["event"] for e in own.json()["events"]]
        (by_admin,) = [e for e in shown if e["name"] == "admin_password_reset"]
        assert by_admin["by_administrator"] is True and by_admin["actor_id"] is None


async def test_every_session_may_end_with_it_and_the_link_still_works(
    tmp_path: Path, clock: Clock
) -> None:
    service = service_for(tmp_path, clock)
    async with checked(service) as client:
        root, alice = await root_and_alice(service, client)
        tokens = await login(client, "alice")
        earlier = await client.post("/auth/password/forgot", json={"username": "alice"})
        assert earlier.status_code == 202
        (old_link,) = await reset_links(service)
        started = await client.post(
            f"/auth/admin/users/{alice}/password-reset", json={"end_sessions": True}, headers=root
        )
        assert started.status_code == 202, started.text
        assert started.json()["sessions_ended"] == 1
        refused = await client.post(
            "/auth/refresh", data={"refresh_token": tokens["refresh_token"]}
        )
        assert refused.status_code == 401
        assert (await client.get("/auth/me", headers=bearer(tokens))).status_code == 401
        # The link mailed before died with the sessions' generation; the new one works.
        new_link, _ = await reset_links(service)
        dead = await client.post(
            "/auth/password/reset", json={"token": old_link, "new_password": NEW_PASSWORD}
        )
        assert_problem(dead, 400, "invalid_account_token")
        reset = await client.post(
            "/auth/password/reset", json={"token": new_link, "new_password": NEW_PASSWORD}
        )
        assert reset.status_code == 204


async def test_without_a_mailer_the_administrator_is_told_and_nothing_is_written(
    tmp_path: Path, clock: Clock
) -> None:
    service = service_for(tmp_path, clock, mail=False)
    async with checked(service) as client:
        root, alice = await root_and_alice(service, client)
        service.store.reset_counts()
        refused = await client.post(
            f"/auth/admin/users/{alice}/password-reset", json={"end_sessions": True}, headers=root
        )
        assert_problem(refused, 403, "no_mailer")
        # The revocations' sync, the caller's record, the failure's event: nothing of alice's.
        assert dict(service.store.requests) == {"list": 1, "get": 2, "put": 1}
        trail = await client.get(f"/auth/admin/users/{alice}/events", headers=root)
        (event,) = [e["event"] for e in trail.json()["events"] if e["event"]["name"] != "register"]
        assert (event["name"], event["outcome"], event["reason"]) == (
            "admin_password_reset", "failure", "no_mailer",
        )  # fmt: skip


async def test_a_disabled_account_gets_no_link(tmp_path: Path, clock: Clock) -> None:
    service = service_for(tmp_path, clock)
    async with checked(service) as client:
        root, alice = await root_and_alice(service, client)
        await service.update_user(alice, is_active=False)
        service.store.reset_counts()
        refused = await client.post(f"/auth/admin/users/{alice}/password-reset", headers=root)
        assert_problem(refused, 409, "account_disabled")
        # The sync, the caller's record and alice's, the failure's event: no token written.
        assert dict(service.store.requests) == {"list": 1, "get": 3, "put": 1}
        assert await reset_links(service) == []
        nobody = await client.post(f"/auth/admin/users/{'0' * 32}/password-reset", headers=root)
        assert_problem(nobody, 404, "user_not_found")
        assert await reset_links(service) == []


async def test_the_owners_inbox_budget_bounds_the_administrator(
    tmp_path: Path, clock: Clock
) -> None:
    service = service_for(tmp_path, clock)
    async with checked(service, rate_limit=True) as client:
        root, alice = await root_and_alice(service, client)
        path = f"/auth/admin/users/{alice}/password-reset"
        answers = [
            await client.post(path, headers=root) for _ in range(PER_ACCOUNT_AND_ADDRESS + 2)
        ]
        assert [a.status_code for a in answers] == [202] * PER_ACCOUNT_AND_ADDRESS + [429] * 2
        assert int(answers[-1].headers["retry-after"]) > 0
        assert "ratelimit" not in answers[-1].headers  # the budget's count is nobody's to see
        assert len(await reset_links(service)) == PER_ACCOUNT_AND_ADDRESS
        # It is the owner's inbox budget: the public flow from there mails no more either.
        asked = await client.post("/auth/password/forgot", json={"username": "alice"})
        assert asked.status_code == 202
        assert len(await reset_links(service)) == PER_ACCOUNT_AND_ADDRESS
        # The budget admits one more once its interval has passed.
        clock.advance(DEFAULT_AUTH_LIMITS["recovery_account"].emission_interval)
        assert (await client.post(path, headers=root)).status_code == 202
        assert len(await reset_links(service)) == PER_ACCOUNT_AND_ADDRESS + 1


async def test_with_admin_sets_passwords_off_the_api_chooses_no_password(
    tmp_path: Path, clock: Clock
) -> None:
    service = service_for(tmp_path, clock, admin_sets_passwords=False)
    async with checked(service) as client:
        root, alice = await root_and_alice(service, client)
        service.store.reset_counts()
        refused = await client.post(
            f"/auth/admin/users/{alice}/password",
            json={"new_password": NEW_PASSWORD},
            headers=root,
        )
        assert_problem(refused, 403, "admin_password_set_disabled")
        # The sync, the caller's record, the failure's event: nothing of alice's.
        assert dict(service.store.requests) == {"list": 1, "get": 2, "put": 1}
        await login(client, "alice")  # the password is the owner's still
        started = await client.post(f"/auth/admin/users/{alice}/password-reset", headers=root)
        assert started.status_code == 202
        document = (await client.get("/auth/openapi.json")).json()
        answer = document["paths"]["/admin/users/{user_id}/password"]["post"]["responses"]["403"]
        assert "admin_password_set_disabled" in str(answer)


async def test_by_default_the_api_still_sets_a_chosen_password(
    tmp_path: Path, clock: Clock
) -> None:
    service = service_for(tmp_path, clock)
    assert service.settings.admin_sets_passwords is True
    async with checked(service) as client:
        root, alice = await root_and_alice(service, client)
        done = await client.post(
            f"/auth/admin/users/{alice}/password",
            json={"new_password": NEW_PASSWORD},
            headers=root,
        )
        assert done.status_code == 204
        document = (await client.get("/auth/openapi.json")).json()
        answer = document["paths"]["/admin/users/{user_id}/password"]["post"]["responses"]["403"]
        assert "admin_password_set_disabled" not in str(answer)
