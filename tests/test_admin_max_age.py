"""S3AUTH_ADMIN_MAX_AGE_SECONDS: every administrator operation of the auth app asks for an
authentication at most that many seconds old, as a host's route with `max_age` does
(`step_up`): 401 `reauthentication_required` with RFC 9470's challenge, until the
administrator authenticates again at `POST /reauthenticate`. Off (0) by default, when no
operation asks for it and the document declares it nowhere."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import SECRET
from support import Clock, make_clocked_service
from test_app import (
    PASSWORD,
    _concrete,
    _operations,
    assert_problem,
    bearer,
    checked_client,
    login,
    register,
)

from s3auth_asgi import ConfigurationError, S3AuthSettings
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.app.operations import Operation

pytestmark = pytest.mark.anyio

CHALLENGE = (
    'Bearer realm="api", error="insufficient_user_authentication", '
    'error_description="This needs an authentication within the last 300 seconds; '
    'authenticate again", max_age="300"'
)


def declared_401(service: Any, access: str) -> dict[str, list[str]]:
    """The 401 codes the document lists for each operation with `access`."""
    app = create_auth_app(service, rate_limit=False)
    document = app.openapi.for_mount("")
    return {
        op.operation_id: document["paths"][op.path][op.method.lower()]["responses"]["401"][
            "content"
        ]["application/problem+json"]["schema"]["allOf"][1]["properties"]["code"]["enum"]
        for op in app.operations
        if op.access == access
    }


async def test_an_administrators_old_authentication_is_refused_until_renewed() -> None:
    clock = Clock()
    service = make_clocked_service(clock=clock, admin_max_age_seconds=300)
    async with checked_client(service) as client:
        alice = await register(client, "alice")
        await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
        tokens = await login(client, "root")
        path = f"/auth/admin/users/{alice['id']}"
        # Taken until the leeway past max_age, the allowance of every time the token holds.
        clock.advance(300 + service.leeway_seconds)
        assert (await client.get("/auth/admin/users", headers=bearer(tokens))).status_code == 200
        clock.advance(1)
        await service.ensure_fresh()  # the revocations read again, as they are due
        service.store.reset_counts()
        refused = await client.patch(path, json={"is_active": False}, headers=bearer(tokens))
        assert_problem(refused, 401, "reauthentication_required")
        assert refused.headers["www-authenticate"] == CHALLENGE
        # Refused from the token alone: no record is read, nothing is changed; the one
        # request is the refusal's event, in the trail of the administrator who tried.
        assert service.store.requests == {"put": 1}
        trail = await client.get("/auth/me/events?limit=1", headers=bearer(tokens))
        (event,) = [e["event"] for e in trail.json()["events"]]
        assert (event["name"], event["outcome"]) == ("admin_user_update", "failure"), event
        assert event["reason"] == "reauthentication_required", event
        assert (await service.get_user_by_id(alice["id"])).is_active  # type: ignore[union-attr]
        # The administrator's own operations, which ask for no recent login, still work.
        assert (await client.get("/auth/me", headers=bearer(tokens))).status_code == 200
        again = await client.post(
            "/auth/reauthenticate", json={"current_password": PASSWORD}, headers=bearer(tokens)
        )
        assert again.status_code == 200, again.text
        renewed = {"access_token": again.json()["access_token"]}
        done = await client.patch(path, json={"is_active": False}, headers=bearer(renewed))
        assert done.status_code == 200, done.text
        assert done.json()["is_active"] is False


@pytest.mark.parametrize("op", _operations(("admin",)), ids=lambda op: op.operation_id)
async def test_every_admin_operation_asks_for_it(op: Operation) -> None:
    clock = Clock()
    service = make_clocked_service(clock=clock, admin_max_age_seconds=60)
    async with checked_client(service) as client:
        alice = await register(client, "alice")
        await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
        tokens = await login(client, "root")
        clock.advance(61 + service.leeway_seconds)
        body = {"is_admin": True} if op.request else None
        path = _concrete(op.path, alice["id"])
        refused = await client.request(op.method, path, json=body, headers=bearer(tokens))
        assert_problem(refused, 401, "reauthentication_required")
        assert refused.headers["www-authenticate"].endswith('max_age="60"')
        assert (await service.get_user_by_id(alice["id"])).is_admin is False  # type: ignore[union-attr]


async def test_a_non_administrator_is_told_it_is_no_administrator_first() -> None:
    clock = Clock()
    service = make_clocked_service(clock=clock, admin_max_age_seconds=60)
    async with checked_client(service) as client:
        await register(client, "alice")
        tokens = await login(client, "alice")
        clock.advance(61 + service.leeway_seconds)
        # Authenticating again would not let this caller in: it is not asked to.
        refused = await client.get("/auth/admin/users", headers=bearer(tokens))
        assert_problem(refused, 403, "insufficient_scope")


def test_the_document_declares_it_for_the_admin_operations_only_when_it_is_on() -> None:
    on = make_clocked_service(admin_max_age_seconds=300)
    assert all("reauthentication_required" in codes for codes in declared_401(on, "admin").values())
    assert not any("reauthentication_required" in c for c in declared_401(on, "bearer").values())
    described = create_auth_app(on, rate_limit=False).openapi.for_mount("")
    answer = described["paths"]["/admin/users"]["get"]["responses"]["401"]
    assert "more than 300 seconds old" in answer["description"]
    assert "POST /reauthenticate" in answer["description"]
    off = make_clocked_service()
    assert off.settings.admin_max_age_seconds == 0
    assert not any("reauthentication_required" in c for c in declared_401(off, "admin").values())


def test_the_setting_is_read_and_bounded() -> None:
    environ = {"S3AUTH_SECRET_KEY": SECRET, "S3AUTH_ADMIN_MAX_AGE_SECONDS": "900"}
    assert S3AuthSettings.from_env(environ).admin_max_age_seconds == 900
    with pytest.raises(ConfigurationError, match="S3AUTH_ADMIN_MAX_AGE_SECONDS"):
        S3AuthSettings.from_env({**environ, "S3AUTH_ADMIN_MAX_AGE_SECONDS": "-1"})
