"""The auth sub-app, endpoint by endpoint, success and failure, through httpx against the
app mounted at /auth in a Starlette host (other hosts: test_app_frameworks.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import msgspec
import pytest
from conftest import make_service
from declared_answers import DeclaredAnswers
from starlette.applications import Starlette
from starlette.routing import Mount
from support import RacedUserWrite, late_session

from s3auth_asgi import S3AuthService, S3AuthSettings, StoreUnavailableError, User
from s3auth_asgi.app import AuthApp, create_auth_app
from s3auth_asgi.app.operations import Operation
from s3auth_asgi.storage import ObjectStore, keys

pytestmark = pytest.mark.anyio

PASSWORD = "Secret123!"
PROBLEM = "application/problem+json"


# Helpers shared with the other test_app* modules ------------------------------------------


def auth_app(service: S3AuthService, **options: Any) -> AuthApp:
    options.setdefault("rate_limit", False)
    return create_auth_app(service, **options)


def mounted(service: S3AuthService, **options: Any) -> Starlette:
    return Starlette(routes=[Mount("/auth", app=auth_app(service, **options))])


def declared_for(settings: S3AuthSettings, **options: Any) -> DeclaredAnswers:
    """What the app `mounted` builds for a service with `settings` and `options` declares,
    from an app of its own: one document for the many apps of a sweep."""
    service = S3AuthService(settings, store=ObjectStore.from_url("memory://"))
    return DeclaredAnswers.of(auth_app(service, **options))


def client_for(
    app: Any,
    *,
    base_url: str = "http://testserver",
    peer: tuple[str, int] = ("127.0.0.1", 50000),
    root_path: str = "",
    declared: DeclaredAnswers | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.AsyncClient:
    """A client of `app`, sending `headers` with every request; with `declared`, every
    answer is checked against it."""
    transport = httpx.ASGITransport(app=app, client=peer, root_path=root_path)
    hooks = {"response": [declared]} if declared is not None else {}
    return httpx.AsyncClient(
        transport=transport, base_url=base_url, event_hooks=hooks, headers=headers
    )


def checked_client(service: S3AuthService, **options: Any) -> httpx.AsyncClient:
    """A client of the app `mounted` builds, every answer checked against its document."""
    app = auth_app(service, **options)
    host = Starlette(routes=[Mount("/auth", app=app)])
    return client_for(host, declared=DeclaredAnswers.of(app))


async def register(
    client: httpx.AsyncClient, name: str, prefix: str = "/auth", **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        f"{prefix}/register",
        json={"username": name, "email": f"{name}@example.com", "password": PASSWORD, **extra},
    )
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


async def login(
    client: httpx.AsyncClient,
    name: str,
    password: str = PASSWORD,
    *,
    prefix: str = "/auth",
    user_agent: str = "pytest",
) -> dict[str, Any]:
    response = await client.post(
        f"{prefix}/login",
        data={"grant_type": "password", "username": name, "password": password},
        headers={"User-Agent": user_agent},
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code, body
    return body


# Fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def auth_service() -> S3AuthService:
    # No grace window: the second use of a refresh token is a reuse, at once.
    return make_service(refresh_grace_seconds=0)


@pytest.fixture
async def client(auth_service: S3AuthService) -> AsyncIterator[httpx.AsyncClient]:
    async with checked_client(auth_service) as client:
        yield client


@pytest.fixture
async def admin(auth_service: S3AuthService, client: httpx.AsyncClient) -> dict[str, Any]:
    await auth_service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    return await login(client, "root")


# Register ---------------------------------------------------------------------------------


async def test_register_returns_the_user_without_secrets(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/register",
        json={
            "username": "alice",
            "email": "alice@example.com",
            "password": PASSWORD,
            "full_name": "Alice A.",
        },
    )
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    user = response.json()
    assert user["username"] == "alice"
    assert user["full_name"] == "Alice A."
    assert user["is_active"] is True and user["is_admin"] is False
    assert not {"password", "hashed_password"} & set(user)
    assert PASSWORD not in response.text


async def test_duplicate_name_or_email_gets_one_generic_conflict(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "alice")
    same_name = await client.post(
        "/auth/register",
        json={"username": "ALICE", "email": "other@example.com", "password": PASSWORD},
    )
    same_email = await client.post(
        "/auth/register",
        json={"username": "other", "email": "alice@example.com", "password": PASSWORD},
    )
    assert_problem(same_name, 409, "account_exists")
    assert same_name.json() == same_email.json()
    assert "username" not in same_name.text.lower().replace("username or email", "")


async def test_without_enumeration_protection_the_conflict_says_which() -> None:
    service = make_service(enumeration_protection=False)
    async with checked_client(service) as client:
        await register(client, "alice")
        name = await client.post(
            "/auth/register",
            json={"username": "alice", "email": "x@example.com", "password": PASSWORD},
        )
        email = await client.post(
            "/auth/register",
            json={"username": "xavier", "email": "alice@example.com", "password": PASSWORD},
        )
    assert_problem(name, 409, "username_taken")
    assert_problem(email, 409, "email_taken")


def _registration(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"username": "bob", "email": "bob@example.com", "password": PASSWORD}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.parametrize(
    ("body", "code", "mentions"),
    [
        (_registration(password="short"), "weak_password", ""),
        (_registration(email="not-an-email"), "invalid_email", ""),
        (_registration(username="b\u200bob"), "invalid_username", ""),
        (_registration(password=None), "validation_error", "password"),
        (_registration(username=42), "validation_error", "username"),
        (_registration(admin=True), "validation_error", "admin"),
        (_registration(full_name=7), "validation_error", "full_name"),
    ],
)
async def test_register_refuses_invalid_input_with_422(
    client: httpx.AsyncClient, body: dict[str, Any], code: str, mentions: str
) -> None:
    problem = assert_problem(await client.post("/auth/register", json=body), 422, code)
    assert mentions in problem.get("detail", "")


async def test_a_list_is_not_an_object(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/register", json=["alice"])
    assert "object" in assert_problem(response, 422, "validation_error")["detail"]


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (b'{"username": "bob",', "application/json", 400, "malformed_body"),
        (b"\xff\xfe{}", "application/json", 400, "malformed_body"),
        (b"", "application/json", 400, "malformed_body"),
        (b"username=bob", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (b'{"username": "bob"}', "text/plain", 415, "unsupported_media_type"),
        (b'{"username": "bob"}', None, 415, "unsupported_media_type"),
    ],
)
async def test_unreadable_bodies_get_a_clear_4xx(
    client: httpx.AsyncClient, content: bytes, content_type: str | None, status: int, code: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post("/auth/register", content=content, headers=headers)
    assert_problem(response, status, code)


async def test_json_with_a_suffix_media_type_is_json(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/register",
        content=b'{"username": "bob", "email": "bob@example.com", "password": "Secret123!"}',
        headers={"Content-Type": "application/vnd.api+json; charset=utf-8"},
    )
    assert response.status_code == 201


async def test_a_body_over_the_limit_gets_413_declared_or_streamed() -> None:
    service = make_service(max_body_bytes=8264)  # the least the default passwords allow
    big = b'{"username": "' + b"x" * 9000 + b'"}'

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(big), 256):
            yield big[start : start + 256]

    async with checked_client(service) as client:
        declared = await client.post(
            "/auth/login", content=big, headers={"Content-Type": "application/json"}
        )
        streamed = await client.post(
            "/auth/login", content=chunks(), headers={"Content-Type": "application/json"}
        )
        just_under = await client.post(
            "/auth/login",
            json={"username": "x" * 8200, "password": "p"},
        )
    assert "8264 bytes" in assert_problem(declared, 413, "body_too_large")["detail"]
    assert_problem(streamed, 413, "body_too_large")
    assert_problem(just_under, 401, "invalid_credentials")


async def test_the_default_body_limit_is_64_kib(client: httpx.AsyncClient) -> None:
    body = b'{"username": "' + b"x" * 65536 + b'", "password": "p"}'
    response = await client.post(
        "/auth/login", content=body, headers={"Content-Type": "application/json"}
    )
    assert "65536" in assert_problem(response, 413, "body_too_large")["detail"]


# Login ------------------------------------------------------------------------------------


async def test_login_with_the_oauth2_password_form(
    client: httpx.AsyncClient, auth_service: S3AuthService
) -> None:
    user = await register(client, "alice")
    response = await client.post(
        "/auth/login",
        data={
            "grant_type": "password",
            "username": "alice",
            "password": PASSWORD,
            "scope": "",
            "client_id": "swagger",
        },
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    tokens = response.json()
    assert set(tokens) == {
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "refresh_expires_in",
    }
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == auth_service.settings.access_token_seconds
    claims = auth_service.decode_token(tokens["access_token"])
    assert claims["sub"] == user["id"]


async def test_login_with_json_and_by_email(client: httpx.AsyncClient) -> None:
    await register(client, "alice")
    response = await client.post(
        "/auth/login", json={"username": "Alice@Example.com", "password": PASSWORD}
    )
    assert response.status_code == 200
    assert response.json()["refresh_token"].startswith("rt1.")


async def test_unknown_user_and_wrong_password_get_the_same_401(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "alice")
    wrong = await client.post("/auth/login", data={"username": "alice", "password": "Wrong123!"})
    unknown = await client.post("/auth/login", data={"username": "nobody", "password": PASSWORD})
    assert_problem(wrong, 401, "invalid_credentials")
    assert wrong.json() == unknown.json()
    assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"]
    assert wrong.headers["www-authenticate"].startswith("Bearer")


async def test_a_disabled_account_cannot_log_in(
    client: httpx.AsyncClient, auth_service: S3AuthService
) -> None:
    user = await register(client, "alice")
    await auth_service.update_user(user["id"], is_active=False)
    response = await client.post("/auth/login", data={"username": "alice", "password": PASSWORD})
    assert_problem(response, 401, "invalid_credentials")


async def test_login_refuses_other_grant_types_and_missing_fields(
    client: httpx.AsyncClient,
) -> None:
    grant = await client.post(
        "/auth/login",
        data={"grant_type": "client_credentials", "username": "a", "password": "b"},
    )
    missing = await client.post("/auth/login", data={"username": "alice"})
    twice = await client.post(
        "/auth/login",
        content=b"username=a&username=b&password=c",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    unknown = await client.post("/auth/login", data={"username": "a", "password": "b", "x": "1"})
    assert_problem(grant, 400, "unsupported_grant_type")
    # Another grant's body, without this one's fields, is told of its grant type first.
    for body in ({"grant_type": "client_credentials"}, {"grant_type": "x", "scope": 1}):
        for sent in ({"data": body}, {"json": body}):
            other = await client.post("/auth/login", **sent)  # type: ignore[arg-type]
            assert_problem(other, 400, "unsupported_grant_type")
    assert "password" in assert_problem(missing, 422, "validation_error")["detail"]
    assert_problem(twice, 400, "malformed_body")
    # The field is not quoted (it may be a password's tail); the ones the form takes are.
    said = assert_problem(unknown, 422, "validation_error")["detail"]
    assert said.startswith("Invalid form: it has a field it does not take; it takes username")


async def test_login_records_device_and_address(
    client: httpx.AsyncClient, auth_service: S3AuthService
) -> None:
    user = await register(client, "alice")
    await login(client, "alice", user_agent="Firefox on the moon")
    (session,) = await auth_service.get_user_active_sessions(user["id"])
    assert session.device_info == "Firefox on the moon"
    assert session.ip_address == "127.0.0.1"


# Refresh ----------------------------------------------------------------------------------


async def test_refresh_rotates_and_detects_reuse(client: httpx.AsyncClient) -> None:
    await register(client, "alice")
    first = await login(client, "alice")
    second = await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    assert second.headers["cache-control"] == "no-store"
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    third = await client.post(
        "/auth/refresh",
        data={"grant_type": "refresh_token", "refresh_token": rotated["refresh_token"]},
    )
    assert third.status_code == 200
    replayed = await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert_problem(replayed, 401, "refresh_token_reused")
    assert 'error="invalid_token"' in replayed.headers["www-authenticate"]
    after = await client.post(
        "/auth/refresh", json={"refresh_token": third.json()["refresh_token"]}
    )
    assert after.status_code == 401  # the whole session ended


async def test_refresh_failures(client: httpx.AsyncClient) -> None:
    garbage = await client.post("/auth/refresh", json={"refresh_token": "rt1.nope"})
    missing = await client.post("/auth/refresh")
    grant = await client.post(
        "/auth/refresh", data={"grant_type": "password", "refresh_token": "x"}
    )
    assert_problem(garbage, 401, "invalid_token")
    assert_problem(missing, 401, "authentication_required")
    assert_problem(grant, 400, "unsupported_grant_type")
    password_grant = {"grant_type": "password", "username": "alice", "password": PASSWORD}
    for sent in ({"data": password_grant}, {"json": password_grant}):
        other = await client.post("/auth/refresh", **sent)  # type: ignore[arg-type]
        assert_problem(other, 400, "unsupported_grant_type")
    # Not a grant type at all: invalid input, as every other field of the wrong type.
    mistyped = await client.post("/auth/refresh", json={"grant_type": 5})
    assert_problem(mistyped, 422, "validation_error")


# Logout -----------------------------------------------------------------------------------


async def test_logout_with_the_bearer_token_ends_that_session_only(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "alice")
    here = await login(client, "alice")
    there = await login(client, "alice")
    response = await client.post("/auth/logout", headers=bearer(here))
    assert response.status_code == 204
    assert_problem(await client.get("/auth/me", headers=bearer(here)), 401, "token_revoked")
    refused = await client.post("/auth/refresh", json={"refresh_token": here["refresh_token"]})
    assert refused.status_code == 401
    assert (await client.get("/auth/me", headers=bearer(there))).status_code == 200


async def test_logout_with_a_refresh_token(client: httpx.AsyncClient) -> None:
    await register(client, "alice")
    tokens = await login(client, "alice")
    response = await client.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 204
    assert (await client.get("/auth/me", headers=bearer(tokens))).status_code == 401


async def test_logout_needs_some_credential(client: httpx.AsyncClient) -> None:
    assert_problem(await client.post("/auth/logout"), 401, "authentication_required")
    bad = await client.post("/auth/logout", headers={"Authorization": "Bearer not.a.jwt"})
    assert_problem(bad, 401, "invalid_token")
    basic = await client.post("/auth/logout", headers={"Authorization": "Basic YTpi"})
    assert_problem(basic, 401, "authentication_required")


async def test_logout_all_ends_every_session(client: httpx.AsyncClient) -> None:
    await register(client, "alice")
    sessions = [await login(client, "alice") for _ in range(3)]
    response = await client.post("/auth/logout-all", headers=bearer(sessions[0]))
    assert response.status_code == 200
    assert response.json() == {"sessions_ended": 3}
    for tokens in sessions:
        assert (await client.get("/auth/me", headers=bearer(tokens))).status_code == 401
        refresh = await client.post(
            "/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refresh.status_code == 401
    assert_problem(await client.post("/auth/logout-all"), 401, "authentication_required")


# Sessions ---------------------------------------------------------------------------------


async def test_sessions_lists_own_sessions_marks_the_current_and_shows_no_secrets(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "alice")
    await register(client, "bob")
    await login(client, "bob")
    phone = await login(client, "alice", user_agent="phone")
    laptop = await login(client, "alice", user_agent="laptop")
    response = await client.get("/auth/sessions", headers=bearer(laptop))
    assert response.status_code == 200
    sessions = response.json()["sessions"]
    current = {s["device_info"]: s["current"] for s in sessions}
    assert current == {"laptop": True, "phone": False}
    assert set(sessions[0]) == {
        "id",
        "device_info",
        "ip_address",
        "created_at",
        "last_used_at",
        "expires_at",
        "absolute_expires_at",
        "current",
    }
    for secret in (phone["refresh_token"], laptop["refresh_token"]):
        assert secret.split(".")[-1] not in response.text
    assert_problem(await client.get("/auth/sessions"), 401, "authentication_required")


async def test_delete_a_session(client: httpx.AsyncClient) -> None:
    await register(client, "alice")
    await register(client, "bob")
    phone = await login(client, "alice", user_agent="phone")
    laptop = await login(client, "alice", user_agent="laptop")
    bobs = await login(client, "bob")
    listed = (await client.get("/auth/sessions", headers=bearer(laptop))).json()["sessions"]
    phone_id = next(s["id"] for s in listed if s["device_info"] == "phone")
    bobs_id = (await client.get("/auth/sessions", headers=bearer(bobs))).json()["sessions"][0]
    # Someone else's session looks like no session at all.
    other = await client.delete(f"/auth/sessions/{bobs_id['id']}", headers=bearer(laptop))
    assert_problem(other, 404, "session_not_found")
    response = await client.delete(f"/auth/sessions/{phone_id}", headers=bearer(laptop))
    assert response.status_code == 204
    assert (await client.get("/auth/me", headers=bearer(phone))).status_code == 401
    remaining = (await client.get("/auth/sessions", headers=bearer(laptop))).json()["sessions"]
    assert [s["device_info"] for s in remaining] == ["laptop"]
    again = await client.delete(f"/auth/sessions/{phone_id}", headers=bearer(laptop))
    assert_problem(again, 404, "session_not_found")
    malformed = await client.delete("/auth/sessions/not-a-session", headers=bearer(laptop))
    assert_problem(malformed, 404, "session_not_found")
    escaping = await client.delete("/auth/sessions/..%2F..%2Fusers", headers=bearer(laptop))
    assert escaping.status_code == 404
    assert (await client.get("/auth/me", headers=bearer(bobs))).status_code == 200


# Me ---------------------------------------------------------------------------------------


async def test_me(client: httpx.AsyncClient) -> None:
    user = await register(client, "alice", full_name="Alice")
    tokens = await login(client, "alice")
    response = await client.get("/auth/me", headers=bearer(tokens))
    assert response.status_code == 200
    assert response.json() == user
    assert_problem(await client.get("/auth/me"), 401, "authentication_required")
    expired = await client.get("/auth/me", headers={"Authorization": "Bearer a.b.c"})
    assert_problem(expired, 401, "invalid_token")
    assert expired.headers["www-authenticate"].startswith(
        'Bearer realm="api", error="invalid_token"'
    )


async def test_me_of_a_deleted_account(
    client: httpx.AsyncClient, auth_service: S3AuthService
) -> None:
    user = await register(client, "alice")
    tokens = await login(client, "alice")
    # Delete the record only, as a crash half-way through a deletion would leave it.
    await auth_service.store.delete(f"users/{user['id']}.json")
    gone = await client.get("/auth/me", headers=bearer(tokens))
    assert "no longer exists" in assert_problem(gone, 401, "invalid_token")["detail"]
    patch = await client.patch("/auth/me", json={"full_name": "A"}, headers=bearer(tokens))
    assert_problem(patch, 401, "invalid_token")


async def test_patch_me(client: httpx.AsyncClient) -> None:
    await register(client, "alice", full_name="Alice")
    await register(client, "bob")
    tokens = await login(client, "alice")
    renamed = await client.patch(
        "/auth/me",
        json={"full_name": "Alice B.", "email": "ab@example.com", "current_password": PASSWORD},
        headers=bearer(tokens),
    )
    assert renamed.status_code == 200
    assert renamed.json()["full_name"] == "Alice B."
    assert renamed.json()["email"] == "ab@example.com"
    cleared = await client.patch("/auth/me", json={"full_name": None}, headers=bearer(tokens))
    assert cleared.json()["full_name"] is None
    assert cleared.json()["email"] == "ab@example.com"  # untouched
    taken = await client.patch(
        "/auth/me",
        json={"email": "bob@example.com", "current_password": PASSWORD},
        headers=bearer(tokens),
    )
    assert_problem(taken, 409, "account_exists")
    sneaky = await client.patch("/auth/me", json={"is_admin": True}, headers=bearer(tokens))
    assert "is_admin" in assert_problem(sneaky, 422, "validation_error")["detail"]
    bad = await client.patch(
        "/auth/me", json={"email": "nope", "current_password": PASSWORD}, headers=bearer(tokens)
    )
    assert_problem(bad, 422, "invalid_email")
    assert (await client.patch("/auth/me", json={})).status_code == 401


# Password ---------------------------------------------------------------------------------


async def test_password_change_revokes_other_sessions_and_returns_new_tokens(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "alice")
    here = await login(client, "alice")
    there = await login(client, "alice")
    wrong = await client.post(
        "/auth/password",
        json={"current_password": "Nope1234!", "new_password": "Newer123!"},
        headers=bearer(here),
    )
    assert_problem(wrong, 403, "wrong_password")
    weak = await client.post(
        "/auth/password",
        json={"current_password": PASSWORD, "new_password": "weak"},
        headers=bearer(here),
    )
    assert_problem(weak, 422, "weak_password")
    changed = await client.post(
        "/auth/password",
        json={"current_password": PASSWORD, "new_password": "Newer123!"},
        headers=bearer(here),
    )
    assert changed.status_code == 200
    assert changed.headers["cache-control"] == "no-store"
    fresh = changed.json()
    assert (await client.get("/auth/me", headers=bearer(fresh))).status_code == 200
    for old in (here, there):
        assert (await client.get("/auth/me", headers=bearer(old))).status_code == 401
    old_password = await client.post(
        "/auth/login", data={"username": "alice", "password": PASSWORD}
    )
    assert old_password.status_code == 401
    await login(client, "alice", "Newer123!")
    missing = await client.post(
        "/auth/password", json={"new_password": "Newest123!"}, headers=bearer(fresh)
    )
    assert "current_password" in assert_problem(missing, 422, "validation_error")["detail"]


# Admin ------------------------------------------------------------------------------------


def _operations(access: tuple[str, ...]) -> list[Operation]:
    """The table's operations with one of these accesses (from the app itself)."""
    app = create_auth_app(make_service(), rate_limit=False)
    return [op for op in app.operations if op.access in access]


def _concrete(path: str, user_id: str) -> str:
    # A real id where there is one, so a refusal cannot come from a 404.
    return "/auth" + path.replace("{user_id}", user_id).replace("{session_id}", "0" * 32)


@pytest.mark.parametrize(
    "op",
    _operations(("bearer", "admin", "bearer_or_refresh_token")),
    ids=lambda op: op.operation_id,
)
async def test_every_operation_needing_a_token_refuses_an_anonymous_caller(
    client: httpx.AsyncClient, op: Operation
) -> None:
    user = await register(client, "alice")
    path = _concrete(op.path, user["id"])
    anonymous = await client.request(op.method, path, json={} if op.request else None)
    assert_problem(anonymous, 401, "authentication_required")
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="api"'
    forged = await client.request(op.method, path, headers={"Authorization": "Bearer not.a.token"})
    assert_problem(forged, 401, "invalid_token")
    # RFC 6750 §3.1: a repeated Authorization header is a malformed request, whatever the
    # tokens: 400 `invalid_request`, declared by the operation.
    tokens = await login(client, "alice")
    twice = [("Authorization", f"Bearer {tokens['access_token']}")] * 2
    repeated = await client.request(op.method, path, headers=twice, json={} if op.request else None)
    assert_problem(repeated, 400, "invalid_request")
    assert repeated.headers["www-authenticate"] == (
        'Bearer realm="api", error="invalid_request", '
        'error_description="More than one Authorization header"'
    )
    declared = create_auth_app(make_service()).openapi.for_mount("")
    answer = declared["paths"][op.path][op.method.lower()]["responses"]["400"]
    assert "WWW-Authenticate" in answer["headers"]
    assert "Authorization header is sent more than once" in answer["description"]


@pytest.mark.parametrize("op", _operations(("admin",)), ids=lambda op: op.operation_id)
async def test_every_admin_operation_refuses_a_caller_who_is_not_an_admin(
    client: httpx.AsyncClient, op: Operation
) -> None:
    user = await register(client, "alice")
    tokens = await login(client, "alice")
    path = _concrete(op.path, user["id"])
    body = {"is_admin": True} if op.request else None
    forbidden = await client.request(op.method, path, json=body, headers=bearer(tokens))
    assert_problem(forbidden, 403, "insufficient_scope")
    assert 'error="insufficient_scope"' in forbidden.headers["www-authenticate"]
    me = await client.get("/auth/me", headers=bearer(tokens))
    assert me.json()["is_admin"] is False  # nothing was changed either


def test_the_table_declares_admin_access_for_every_admin_path() -> None:
    declared = {op.path for op in _operations(("admin",))}
    assert declared and all(path.startswith("/admin/") for path in declared)
    assert not [op for op in _operations(("public", "bearer")) if op.path.startswith("/admin")]


@pytest.mark.parametrize(
    "op",
    [op for op in _operations(("public", "bearer")) if op.token_response],
    ids=lambda op: op.operation_id,
)
async def test_every_token_operation_answers_no_store_even_when_refused(
    client: httpx.AsyncClient, op: Operation
) -> None:
    refused = await client.request(op.method, "/auth" + op.path, json={"x": 1})
    assert refused.status_code >= 400
    assert refused.headers["cache-control"] == "no-store"
    assert refused.headers["pragma"] == "no-cache"


async def test_admin_lists_users_a_page_at_a_time(
    client: httpx.AsyncClient, admin: dict[str, Any]
) -> None:
    for name in ("alice", "bob", "carol", "dave"):
        await register(client, name)
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        params = {"limit": "2", **({"after": after} if after else {})}
        response = await client.get("/auth/admin/users", params=params, headers=bearer(admin))
        assert response.status_code == 200
        page = response.json()
        assert len(page["users"]) <= 2
        assert all("hashed_password" not in u for u in page["users"])
        seen += [u["username"] for u in page["users"]]
        pages += 1
        after = page["next_cursor"]
        if after is None:
            break
    assert sorted(seen) == ["alice", "bob", "carol", "dave", "root"]
    assert pages == 3
    for params in ({"limit": "0"}, {"limit": "abc"}, {"limit": "1001"}, {"after": "../x"}):
        bad = await client.get("/auth/admin/users", params=params, headers=bearer(admin))
        assert_problem(bad, 422, "validation_error")


async def test_admin_disables_enables_and_promotes(
    client: httpx.AsyncClient, admin: dict[str, Any]
) -> None:
    user = await register(client, "alice")
    tokens = await login(client, "alice")
    path = f"/auth/admin/users/{user['id']}"
    disabled = await client.patch(path, json={"is_active": False}, headers=bearer(admin))
    assert disabled.status_code == 200
    assert disabled.json()["is_active"] is False
    assert (await client.get("/auth/me", headers=bearer(tokens))).status_code == 401
    refused = await client.post("/auth/login", data={"username": "alice", "password": PASSWORD})
    assert refused.status_code == 401
    enabled = await client.patch(path, json={"is_active": True}, headers=bearer(admin))
    assert enabled.json()["is_active"] is True
    promoted = await client.patch(path, json={"is_admin": True}, headers=bearer(admin))
    assert promoted.json()["is_admin"] is True
    new_admin = await login(client, "alice")
    listing = await client.get("/auth/admin/users", headers=bearer(new_admin))
    assert listing.status_code == 200
    bad = await client.patch(path, json={"is_active": "yes"}, headers=bearer(admin))
    assert_problem(bad, 422, "validation_error")
    missing = await client.patch(
        "/auth/admin/users/" + "0" * 32, json={"is_active": False}, headers=bearer(admin)
    )
    assert_problem(missing, 404, "user_not_found")
    odd = await client.patch(
        "/auth/admin/users/not-an-id", json={"is_active": False}, headers=bearer(admin)
    )
    assert_problem(odd, 404, "user_not_found")


async def test_admin_deletes_a_user(client: httpx.AsyncClient, admin: dict[str, Any]) -> None:
    user = await register(client, "alice")
    tokens = await login(client, "alice")
    path = f"/auth/admin/users/{user['id']}"
    assert (await client.delete(path, headers=bearer(admin))).status_code == 204
    assert (await client.get("/auth/me", headers=bearer(tokens))).status_code == 401
    gone = await client.post("/auth/login", data={"username": "alice", "password": PASSWORD})
    assert gone.status_code == 401
    assert_problem(await client.delete(path, headers=bearer(admin)), 404, "user_not_found")
    await register(client, "alice")  # the name is free again


async def test_admin_revokes_every_session_of_a_user(
    client: httpx.AsyncClient, admin: dict[str, Any]
) -> None:
    user = await register(client, "alice")
    sessions = [await login(client, "alice") for _ in range(2)]
    path = f"/auth/admin/users/{user['id']}/revoke"
    response = await client.post(path, headers=bearer(admin))
    assert response.status_code == 200
    assert response.json() == {"sessions_ended": 2}
    for tokens in sessions:
        assert (await client.get("/auth/me", headers=bearer(tokens))).status_code == 401
    assert (await client.get("/auth/me", headers=bearer(admin))).status_code == 200
    missing = await client.post("/auth/admin/users/" + "f" * 32 + "/revoke", headers=bearer(admin))
    assert_problem(missing, 404, "user_not_found")


# The account of a token, deleted ------------------------------------------------------------

ACCOUNT_ROUTES = [
    ("GET", "/auth/me", None),
    ("GET", "/auth/sessions", None),
    ("GET", "/auth/me/events", None),
    ("POST", "/auth/logout-all", None),
    ("DELETE", "/auth/sessions/" + "0" * 32, None),
    PROFILE_CHANGE := ("PATCH", "/auth/me", {"full_name": "Alice"}),
    PASSWORD_CHANGE := (
        "POST",
        "/auth/password",
        {"current_password": PASSWORD, "new_password": "Newer123!x"},
    ),
]
EMAIL_CHANGE = ("PATCH", "/auth/me", {"email": "new@example.com", "current_password": PASSWORD})
"""`PATCH /me` to a new address, which reads the record to check the password first."""
REFUSING_ROUTES = [*ACCOUNT_ROUTES, EMAIL_CHANGE]


def audited(method: str, path: str) -> bool:
    """Whether the route has an auth event: its PUT follows a refusal too."""
    return path in ("/auth/logout-all", "/auth/password") or method in ("PATCH", "DELETE")


def test_the_routes_that_read_the_record_themselves_are_these() -> None:
    """The dispatcher reads the caller's record for every operation but these, which must
    refuse the account's standing themselves (tested below); `logout` needs no account."""
    skipping = {
        op.operation_id
        for op in _operations(("bearer", "bearer_or_refresh_token", "admin"))
        if not op.reads_account
    }
    assert skipping == {
        "logout",
        "update_me",
        "change_password",
        "start_totp",
        "confirm_totp",
        "disable_totp",
        "new_totp_recovery_codes",
        "reauthenticate",
    }


async def late_login(
    service: S3AuthService,
    name: str,
    change: Callable[[S3AuthService, str], Awaitable[object]] | None = None,
) -> dict[str, Any]:
    """The tokens of a login that passed its password check, then lost the race with a
    change of its account (by default, its deletion), on a host that does not read the
    record back (an earlier version: `session_opening`): its session is written after the
    change listed the account's sessions, so no revocation names its access token
    (`session_generation`)."""
    found = await service.authenticate_user(name, PASSWORD)
    assert found is not None
    if change is None:
        assert await service.delete_user(found.id)
    else:
        await change(service, found.id)
    pair = await late_session(service, found)
    await service.ensure_fresh()  # the revocations of the deletion, synced
    return {"access_token": pair.access_token}


@pytest.mark.parametrize(("method", "path", "body"), REFUSING_ROUTES)
async def test_every_account_route_refuses_a_token_whose_account_was_deleted(
    auth_service: S3AuthService, client: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    await register(client, "alice")
    tokens = await late_login(auth_service, "alice")
    auth_service.store.reset_counts()
    response = await client.request(method, path, json=body, headers=bearer(tokens))
    assert_problem(response, 401, "invalid_token")
    assert response.json()["detail"] == "The account of this token no longer exists"
    # The user record, and nothing else; the refusal's auth event, where the route has one.
    assert response.headers["www-authenticate"].startswith("Bearer")
    event = {"put": 1} if audited(method, path) else {}
    assert dict(auth_service.store.requests) == {"get": 1, **event}


async def test_an_administrator_deleted_meanwhile_is_refused(
    auth_service: S3AuthService, client: httpx.AsyncClient
) -> None:
    await auth_service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    tokens = await late_login(auth_service, "root")
    auth_service.store.reset_counts()
    response = await client.get("/auth/admin/users", headers=bearer(tokens))
    assert_problem(response, 401, "invalid_token")
    assert dict(auth_service.store.requests) == {"get": 1}


async def _disable(service: S3AuthService, user_id: str) -> object:
    return await service.update_user(user_id, is_active=False)


async def _demote(service: S3AuthService, user_id: str) -> object:
    return await service.update_user(user_id, is_admin=False, scopes=[])


@pytest.mark.parametrize(("method", "path", "body"), REFUSING_ROUTES)
async def test_a_token_whose_account_was_disabled_as_its_login_ran_is_refused(
    auth_service: S3AuthService, client: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    user = await register(client, "alice")
    tokens = await late_login(auth_service, "alice", _disable)
    before = await auth_service.get_user_by_id(user["id"])
    auth_service.store.reset_counts()
    response = await client.request(method, path, json=body, headers=bearer(tokens))
    assert_problem(response, 401, "invalid_token")
    assert response.json()["detail"] == "The account of this token is disabled"
    # The record the route reads anyway, or the dispatcher's read of it: the profile
    # update refuses on its read for a change before it writes the generation's marker
    # (`user_records`). Nothing is written but the refusal's event.
    puts = audited(method, path)
    assert dict(auth_service.store.requests) == {"get": 1, **({"put": puts} if puts else {})}
    assert await auth_service.get_user_by_id(user["id"]) == before
    assert await auth_service.get_user_active_sessions(user["id"]) == []


async def _close(service: S3AuthService, user_id: str) -> None:
    """Close the record as a deletion's first write does, and leave it: a deletion cut
    short there, before it ended the account's sessions."""
    found = await service.store.get(keys.user(user_id), User)
    assert found is not None
    closed = msgspec.structs.replace(found.value, deleting=True)
    await service.store.replace(keys.user(user_id), closed, found.etag)


@pytest.mark.parametrize(
    ("method", "path", "body"), [*REFUSING_ROUTES, ("GET", "/auth/admin/users", None)]
)
async def test_every_account_route_refuses_a_token_whose_account_a_deletion_closed(
    auth_service: S3AuthService, client: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    root = await auth_service.create_user("alice", "alice@example.com", PASSWORD, is_admin=True)
    tokens = await login(client, "alice")
    await _close(auth_service, root.id)
    await auth_service.ensure_fresh()  # the revocation list synced: its LIST is no refusal's
    auth_service.store.reset_counts()
    response = await client.request(method, path, json=body, headers=bearer(tokens))
    assert_problem(response, 401, "invalid_token")
    assert response.json()["detail"] == "The account of this token no longer exists"
    event = {"put": 1} if audited(method, path) else {}
    assert dict(auth_service.store.requests) == {"get": 1, **event}


@pytest.mark.parametrize(
    "route",
    [PROFILE_CHANGE, EMAIL_CHANGE, PASSWORD_CHANGE],
    ids=["profile", "email", "password"],
)
async def test_a_change_of_ones_own_account_loses_to_its_disabling_meanwhile(
    route: tuple[str, str, dict[str, Any]],
) -> None:
    """Disabled between the change's read of the record and its write: the retry reads
    the record again, and refuses as the first read would have. A password change that
    went ahead would open a session of the generation that outlives the disabling."""
    shared = ObjectStore.from_url("memory://")
    other = make_service(store=shared)
    user = await other.create_user("alice", "alice@example.com", PASSWORD)
    raced = RacedUserWrite(shared, lambda: other.update_user(user.id, is_active=False))
    method, path, body = route
    async with checked_client(make_service(store=raced)) as client:
        tokens = await login(client, "alice")
        response = await client.request(method, path, json=body, headers=bearer(tokens))
    assert raced.meanwhile is None  # the race happened
    assert_problem(response, 401, "invalid_token")
    assert response.json()["detail"] == "The account of this token is disabled"
    now = await other.get_user_by_id(user.id)
    assert now is not None and not now.is_active
    assert (now.full_name, now.email) == (user.full_name, user.email)
    assert now.hashed_password == user.hashed_password
    assert await other.get_user_active_sessions(user.id) == []
    assert await other.get_user_by_email("new@example.com") is None
    await other.create_user("bob", "new@example.com", PASSWORD)  # the address is free


async def test_an_administrator_demoted_as_the_login_ran_is_refused_admin_endpoints(
    auth_service: S3AuthService, client: httpx.AsyncClient
) -> None:
    """The token still says administrator; the record, read anyway, says otherwise."""
    await auth_service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    tokens = await late_login(auth_service, "root", _demote)
    auth_service.store.reset_counts()
    response = await client.get("/auth/admin/users", headers=bearer(tokens))
    assert_problem(response, 403, "insufficient_scope")
    assert dict(auth_service.store.requests) == {"get": 1}
    # What an ordinary account may do, it still may.
    assert (await client.get("/auth/me", headers=bearer(tokens))).status_code == 200


async def test_reading_the_callers_account_costs_one_get_where_nothing_read_it(
    auth_service: S3AuthService, client: httpx.AsyncClient
) -> None:
    """The account routes that did not read the caller's user record read it once; those
    that did (`/me`, `PATCH /me`, `/password`) cost what they did."""
    await register(client, "alice")
    costs = {}
    for method, path, body in ACCOUNT_ROUTES:
        tokens = await login(client, "alice")  # a session of its own for each
        await auth_service.ensure_fresh()  # the revocations, synced
        auth_service.store.reset_counts()
        response = await client.request(method, path, json=body, headers=bearer(tokens))
        assert response.status_code in (200, 404), response.text  # 404: no such session
        costs[f"{method} {path}"] = dict(auth_service.store.requests)
    user = {"get": 1}  # the caller's record, read by the dispatcher
    assert costs == {
        "GET /auth/me": user,  # as before: it was the handler's read
        "GET /auth/sessions": {"list": 1, "get": 1 + 2},  # the two sessions so far
        "GET /auth/me/events": {"list": 1, "get": 1 + 4},  # register and three logins
        # The record read again for its change (a new generation: `logout_everywhere`),
        # its PUT, the marker, the revocation and the audit event.
        "POST /auth/logout-all": {"get": 1 + 1, "list": 1, "put": 4, "delete": 1},
        f"DELETE /auth/sessions/{'0' * 32}": {"get": 1 + 1, "put": 1},  # the session; audit
        # As before: the update's read; audit. Since the logout everywhere, the account has
        # a generation, whose marker every read for a change writes if missing (1 PUT).
        "PATCH /auth/me": {"get": 1, "put": 1 + 2},
        # As the change costs: a logout everywhere first (the record, a marker, the
        # revocation; the sessions and the logout everywhere's marker in its DELETE), then
        # the password (the record, a marker; a LIST, and a DELETE of the first marker),
        # the new session and the record read back; audit.
        "POST /auth/password": {"get": 3, "put": 1 + 7, "list": 2, "delete": 2},
    }


# Keys, routing ----------------------------------------------------------------------------


async def test_jwks_is_empty_for_hs256(client: httpx.AsyncClient) -> None:
    response = await client.get("/auth/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.json() == {"keys": []}
    assert "max-age" in response.headers["cache-control"]


async def test_unknown_paths_and_methods_are_problems(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/auth/nothing-here"), 404, "not_found")
    wrong = await client.put("/auth/login")
    assert_problem(wrong, 405, "method_not_allowed")
    assert wrong.headers["allow"] == "POST"
    assert (await client.head("/auth/.well-known/jwks.json")).status_code == 200


async def test_a_trailing_slash_is_tolerated(client: httpx.AsyncClient) -> None:
    await register(client, "alice")
    tokens = await login(client, "alice")
    assert (await client.get("/auth/me/", headers=bearer(tokens))).status_code == 200


# The store down ---------------------------------------------------------------------------


class BrokenStore(ObjectStore):
    """A real memory store that can be switched off: every request then fails as an
    unreachable endpoint does."""

    broken = False

    async def get(self, key: str, type_: Any) -> Any:
        self._fail()
        return await super().get(key, type_)

    async def create(self, key: str, value: Any) -> str:
        self._fail()
        return await super().create(key, value)

    async def replace(self, key: str, value: Any, etag: str) -> str:
        self._fail()
        return await super().replace(key, value, etag)

    async def delete_many(self, keys: Any) -> int:
        self._fail()
        return await super().delete_many(keys)

    async def list(self, prefix: str, offset: str | None = None) -> Any:
        self._fail()
        async for info in super().list(prefix, offset):
            yield info

    def _fail(self) -> None:
        if self.broken:
            raise StoreUnavailableError("GET failed: connection refused")


async def test_a_store_outage_is_503_with_retry_after() -> None:
    store = BrokenStore.from_url("memory://")
    service = make_service(store=store)
    async with checked_client(service) as client:
        await register(client, "alice")
        tokens = await login(client, "alice")
        store.broken = True
        outages = [
            await client.post("/auth/login", data={"username": "alice", "password": PASSWORD}),
            await client.post(
                "/auth/register",
                json={"username": "bob", "email": "bob@example.com", "password": PASSWORD},
            ),
            await client.get("/auth/me", headers=bearer(tokens)),
            await client.get("/auth/sessions", headers=bearer(tokens)),
            await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]}),
        ]
        for response in outages:
            assert_problem(response, 503, "store_unavailable")
            assert int(response.headers["retry-after"]) > 0
        jwks = await client.get("/auth/.well-known/jwks.json")
        assert jwks.status_code == 200  # needs no store
        store.broken = False
        assert (await client.get("/auth/me", headers=bearer(tokens))).status_code == 200


async def test_every_backend_serves_a_whole_session(store_url: str) -> None:
    service = make_service(store_url)
    async with checked_client(service) as client:
        await register(client, "alice")
        tokens = await login(client, "alice")
        assert (await client.get("/auth/me", headers=bearer(tokens))).status_code == 200
        refreshed = await client.post(
            "/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refreshed.status_code == 200
        fresh = refreshed.json()
        sessions = await client.get("/auth/sessions", headers=bearer(fresh))
        assert len(sessions.json()["sessions"]) == 1
        assert (await client.post("/auth/logout", headers=bearer(fresh))).status_code == 204
        assert (await client.get("/auth/me", headers=bearer(fresh))).status_code == 401
