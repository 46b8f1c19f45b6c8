"""The scopes an account may hold are bounded (`token_budget`), so that every token fits in
what a verifier reads: beyond the bound the admin API, the service and the command refuse
them; a record written with more before the bound opens no session whose token would not
fit, and says why."""

from __future__ import annotations

import anyio
import pytest
from support import make_clocked_service
from test_admin_rule import _cli_store
from test_app import PASSWORD, assert_problem, bearer, checked_client, login
from test_app_lifecycle import admin_tokens
from test_cli import Run

from s3auth_asgi import S3AuthService, S3ValidationError
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.models import Session, User
from s3auth_asgi.storage import keys
from s3auth_asgi.token_budget import MAX_SCOPES, SCOPES_MAX_BYTES

LONG = [f"{i:03d}".ljust(64, "s") for i in range(120)]
"""120 scopes of the longest allowed: their tokens were beyond what any verifier reads."""
TOO_MANY = [f"s{i}" for i in range(MAX_SCOPES + 1)]
AT_THE_BOUND = [
    f"{i:03d}".ljust(SCOPES_MAX_BYTES // MAX_SCOPES - 1, "s") for i in range(MAX_SCOPES)
]


def test_the_bound_is_met_exactly_by_the_list_at_it() -> None:
    assert len(" ".join(AT_THE_BOUND).encode()) <= SCOPES_MAX_BYTES
    assert len(" ".join(LONG).encode()) > SCOPES_MAX_BYTES


@pytest.mark.anyio
async def test_the_admin_api_refuses_scopes_beyond_the_bound() -> None:
    service = make_clocked_service()
    async with checked_client(service) as client:
        root = bearer(await admin_tokens(service, client))
        alice = await service.create_user("alice", "alice@example.com", PASSWORD)
        for scopes in (LONG, TOO_MANY):
            answer = await client.patch(
                f"/auth/admin/users/{alice.id}", json={"scopes": scopes}, headers=root
            )
            assert "scopes" in assert_problem(answer, 422, "validation_error")["detail"]
            body = {"username": "bob", "email": "bob@example.com", "password": PASSWORD}
            created = await client.post(
                "/auth/admin/users", json={**body, "scopes": scopes}, headers=root
            )
            assert "scopes" in assert_problem(created, 422, "validation_error")["detail"]
        assert await service.get_user_by_username("bob") is None
        kept = await service.get_user_by_id(alice.id)
        assert kept is not None and kept.scopes == []
        # At the bound, an administrator's too: the token carries them and is read.
        answer = await client.patch(
            f"/auth/admin/users/{alice.id}",
            json={"scopes": AT_THE_BOUND, "is_admin": True},
            headers=root,
        )
        assert answer.status_code == 200, answer.text
        tokens = await login(client, "alice")
        me = await client.get("/auth/me", headers=bearer(tokens))
        assert me.status_code == 200, me.text
        assert service.decode_token(tokens["access_token"])["scope"].split() == sorted(
            [*AT_THE_BOUND, "admin"]
        )


@pytest.mark.anyio
async def test_the_service_refuses_scopes_beyond_the_bound() -> None:
    service = make_clocked_service()
    alice = await service.create_user("alice", "alice@example.com", PASSWORD, scopes=["read"])
    for scopes in (LONG, TOO_MANY):
        with pytest.raises(S3ValidationError, match="scopes"):
            await service.create_user("bob", "bob@example.com", PASSWORD, scopes=scopes)
        with pytest.raises(S3ValidationError, match="scopes"):
            await service.update_user(alice.id, scopes=scopes)
    assert await service.get_user_by_username("bob") is None
    kept = await service.get_user_by_id(alice.id)
    assert kept is not None and kept.scopes == ["read"]


def test_the_command_refuses_scopes_beyond_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    store = _cli_store(monkeypatch)
    service = make_clocked_service(store=store)
    anyio.run(lambda: service.create_user("alice", "alice@example.com", PASSWORD))
    refused = Run("user", "scopes", "alice", "--add", *LONG, open_store=lambda url: store)
    assert refused.code == 2, refused
    assert "scopes" in refused.err and f"at most {SCOPES_MAX_BYTES} bytes" in refused.err, refused
    assert Run("user", "scopes", "alice", open_store=lambda url: store).out == "(none)\n"


def test_the_document_declares_the_bound() -> None:
    document = create_auth_app(make_clocked_service()).openapi.for_mount("/auth")
    schemas = document["components"]["schemas"]
    for name in ("AdminUserUpdate", "AdminUserCreate"):
        scopes = schemas[name]["properties"]["scopes"]
        declared = next(s for s in scopes.get("anyOf", [scopes]) if s.get("type") == "array")
        assert declared["maxItems"] == MAX_SCOPES, declared
        assert f"{SCOPES_MAX_BYTES} bytes" in declared["description"]


async def _over_the_bound(service: S3AuthService, name: str) -> User:
    """A record given more scopes than a token carries, as one could be before the bound."""
    user = await service.create_user(name, f"{name}@example.com", PASSWORD)
    found = await service.store.get(keys.user(user.id), User)
    assert found is not None
    found.value.scopes = LONG
    await service.store.replace(keys.user(user.id), found.value, found.etag)
    return found.value


@pytest.mark.anyio
async def test_a_stored_account_beyond_the_bound_gets_no_token_it_cannot_use() -> None:
    """Before, its login answered 200 with a token every request then refused as too large;
    now the login says why, and opens no session."""
    service = make_clocked_service()
    async with checked_client(service) as client:
        user = await _over_the_bound(service, "alice")
        answer = await client.post("/auth/login", data={"username": "alice", "password": PASSWORD})
        body = assert_problem(answer, 403, "token_too_large")
        assert body["error"] == "invalid_grant"
        assert "scopes" in body["title"]
        assert await service.get_user_active_sessions(user.id) == []
        assert [i async for i in service.store.list(keys.user_sessions(user.id))] == []


@pytest.mark.anyio
async def test_a_session_whose_account_went_beyond_the_bound_is_not_refreshed() -> None:
    """A session opened with the scopes it carries, beyond the bound: its refresh is
    refused as the login would be, and the session is not rotated."""
    service = make_clocked_service()
    async with checked_client(service) as client:
        user = await service.create_user("alice", "alice@example.com", PASSWORD)
        tokens = await login(client, "alice")
        (session,) = await service.get_user_active_sessions(user.id)
        key = keys.session(user.id, session.id)
        found = await service.store.get(key, Session)
        assert found is not None
        found.value.scopes = LONG
        await service.store.replace(key, found.value, found.etag)
        answer = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert "scopes" in assert_problem(answer, 403, "token_too_large")["title"]
        after = await service.store.get(key, Session)
        assert after is not None and after.value.generation == found.value.generation
