"""An administrator by the `admin` scope of a record written before `is_admin` and the scope
became one rule (`privileges`) is demoted as any other: `is_admin: false` takes the scope
too, and ends the account's sessions, through the API, the service and the CLI, which
show such an account as the administrator it is until then."""

from __future__ import annotations

import anyio
import pytest
from support import make_clocked_service
from test_admin_rule import _cli_store, host
from test_app import PASSWORD, assert_problem, bearer, client_for, login
from test_cli import Run

from s3auth_asgi import BlacklistMiddleware, S3AuthService
from s3auth_asgi.models import User
from s3auth_asgi.storage import keys


async def admin_by_scope(service: S3AuthService, name: str) -> User:
    """A user whose record makes an administrator by its scopes alone, as before the rule."""
    user = await service.create_user(name, f"{name}@example.com", PASSWORD)
    found = await service.store.get(keys.user(user.id), User)
    assert found is not None
    found.value.is_admin, found.value.scopes = False, ["admin", "read"]
    await service.store.replace(keys.user(user.id), found.value, found.etag)
    return found.value


async def record(service: S3AuthService, user_id: str) -> User:
    found = await service.store.get(keys.user(user_id), User)
    assert found is not None
    return found.value


@pytest.mark.anyio
async def test_an_administrator_demotes_one_by_scope_and_its_tokens_end() -> None:
    service = make_clocked_service()  # a still clock: the revocations are read once
    checked = host(service)  # `requires("admin")` at /console, the revocations checked too
    checked.app = BlacklistMiddleware(checked.app, service)
    async with client_for(checked) as client:
        await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
        old = await admin_by_scope(service, "old")
        root = bearer(await login(client, "root"))
        tokens = await login(client, "old")
        assert (await client.get("/console", headers=bearer(tokens))).status_code == 200
        assert (await client.get("/auth/admin/users", headers=bearer(tokens))).status_code == 200

        demoted = await client.patch(
            f"/auth/admin/users/{old.id}", json={"is_admin": False}, headers=root
        )
        assert demoted.status_code == 200, demoted.text
        assert (demoted.json()["is_admin"], demoted.json()["scopes"]) == (False, ["read"])
        kept = await record(service, old.id)
        assert (kept.is_admin, kept.scopes) == (False, ["read"])
        # A change of privileges: the sessions end, their tokens with them.
        assert await service.get_user_active_sessions(old.id) == []
        refused = await client.get("/console", headers=bearer(tokens))
        assert_problem(refused, 401, "token_revoked")
        again = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert again.status_code == 401
        fresh = bearer(await login(client, "old"))
        assert_problem(await client.get("/console", headers=fresh), 403, "insufficient_scope")
        listing = await client.get("/auth/admin/users", headers=fresh)
        assert_problem(listing, 403, "insufficient_scope")


@pytest.mark.anyio
async def test_the_service_demotes_one_by_scope_and_promotes_without_a_change() -> None:
    service = make_clocked_service()
    old = await admin_by_scope(service, "old")
    await service.create_token_pair(old)
    # Made an administrator by the flag: the same privileges, the scope no longer needed.
    promoted = await service.update_user(old.id, is_admin=True)
    assert (promoted.is_admin, promoted.scopes) == (True, ["read"])
    assert len(await service.get_user_active_sessions(old.id)) == 1
    demoted = await service.update_user(old.id, is_admin=False)
    assert (demoted.public().is_admin, demoted.scopes) == (False, ["read"])
    assert await service.get_user_active_sessions(old.id) == []


def test_the_cli_shows_and_demotes_one_by_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    store = _cli_store(monkeypatch)
    service = make_clocked_service(store=store)

    def run(*argv: str) -> Run:
        result = Run(*argv, open_store=lambda url: store)
        assert result.code == 0, result
        return result

    old = anyio.run(admin_by_scope, service, "old")
    assert "active, admin" in run("user", "list").out
    assert run("user", "demote", "old").out.startswith("old is not an administrator")
    kept = anyio.run(record, service, old.id)
    assert (kept.is_admin, kept.scopes) == (False, ["read"])
    assert run("user", "scopes", "old").out == "read\n"
    assert "admin" not in run("user", "list").out.splitlines()[1]

    async def trail() -> list[str]:
        events, _ = await service.audit.page(old.id)
        return [entry.event.name for entry in events]

    assert anyio.run(trail) == ["admin_user_update"]
