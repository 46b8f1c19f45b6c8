"""The demo: its state directory, its settings, and the app behind `s3auth demo` — the page,
the three middlewares around the auth sub-app, restarts that keep users."""

from __future__ import annotations

import base64
import hashlib
import re
import stat
from pathlib import Path

import pytest
from conftest import FAST_HASHING, SECRET
from test_app import PASSWORD, assert_problem, bearer, client_for, register

from s3auth_asgi import S3AuthService
from s3auth_asgi.app import DEFAULT_AUTH_LIMITS
from s3auth_asgi.demo.app import API_LIMIT, create_demo_app
from s3auth_asgi.demo.config import demo_settings, read_or_create_secret

pytestmark = pytest.mark.anyio

CLEAN_ENV: dict[str, str] = {}


def demo_service(directory: Path, **env: str) -> S3AuthService:
    environ = {f"S3AUTH_{k.upper()}": str(v) for k, v in FAST_HASHING.items()} | env
    return S3AuthService(demo_settings(directory, environ))


def test_the_secret_is_created_once_private_and_kept(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    first = read_or_create_secret(directory)
    assert len(first) >= 32
    secret_file = directory / "secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert read_or_create_secret(directory) == first
    assert read_or_create_secret(tmp_path / "other") != first


def test_demo_settings_use_the_directory_unless_configured(tmp_path: Path) -> None:
    settings = demo_settings(tmp_path, CLEAN_ENV)
    assert settings.store_url == f"file://{tmp_path.resolve() / 'store'}"
    assert settings.secret_key == (tmp_path / "secret").read_text().strip()
    assert settings.refresh_cookie is True
    configured = demo_settings(
        tmp_path / "unused",
        {
            "S3AUTH_STORE_URL": "s3://bucket/demo",
            "S3AUTH_SECRET_KEY": SECRET,
            "S3AUTH_REFRESH_COOKIE": "false",
        },
    )
    assert configured.store_url == "s3://bucket/demo"
    assert configured.secret_key == SECRET
    assert configured.refresh_cookie is False
    assert not (tmp_path / "unused" / "secret").exists()


async def test_the_page_is_served_with_a_policy_that_admits_only_its_own_script(
    tmp_path: Path,
) -> None:
    async with client_for(create_demo_app(demo_service(tmp_path))) as client:
        response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    for needed in ("register-form", "login-form", "sessions", "logout-all", "hammer", "fetch("):
        assert needed in html
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=[\"']?https?:", html)  # no CDN
    policy = response.headers["content-security-policy"]
    (script,) = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in policy
    assert "connect-src 'self'" in policy and "default-src 'none'" in policy


async def test_the_demo_app_wraps_the_auth_app_in_the_three_middlewares(tmp_path: Path) -> None:
    service = demo_service(tmp_path)
    app = create_demo_app(service)
    async with client_for(app, base_url="https://testserver") as client:
        # BearerTokenMiddleware protects /api/*.
        assert_problem(await client.get("/api/hello"), 401, "authentication_required")
        await register(client, "alice")
        login = await client.post("/auth/login", data={"username": "alice", "password": PASSWORD})
        assert login.status_code == 200
        assert "refresh_token" not in login.json()  # browser mode: the cookie has it
        tokens = login.json()
        hello = await client.get("/api/hello", headers=bearer(tokens))
        assert hello.json()["message"] == "Hello, alice!"
        assert hello.headers["ratelimit"].startswith('"api"')  # RateLimitMiddleware
        sessions = await client.get("/auth/sessions", headers=bearer(tokens))
        assert len(sessions.json()["sessions"]) == 1
        assert (await client.post("/auth/refresh")).status_code == 200
        assert (await client.post("/auth/logout-all", headers=bearer(tokens))).status_code == 200
        # BlacklistMiddleware: the revoked token no longer reaches /api.
        assert_problem(await client.get("/api/hello", headers=bearer(tokens)), 401, "token_revoked")
        # A stale token must not keep anyone from logging in again.
        again = await client.post(
            "/auth/login",
            data={"username": "alice", "password": PASSWORD},
            headers=bearer(tokens),
        )
        assert again.status_code == 200


async def test_hammering_login_gets_429(tmp_path: Path) -> None:
    per_account = DEFAULT_AUTH_LIMITS["login_account"].max_requests
    async with client_for(create_demo_app(demo_service(tmp_path))) as client:
        statuses = [
            (
                await client.post("/auth/login", data={"username": "x", "password": "Wrong123!"})
            ).status_code
            for _ in range(per_account + 2)
        ]
    assert statuses == [401] * per_account + [429] * 2


async def test_the_demo_counts_logins_in_its_store(tmp_path: Path) -> None:
    """The demo runs on file://, so its login limits are shared (S3AUTH_RATE_LIMIT_STORE
    defaults to store there): a second process on the same directory sees the count."""
    per_account = DEFAULT_AUTH_LIMITS["login_account"].max_requests
    wrong = {"username": "alice", "password": "Wrong123!"}
    first, second = demo_service(tmp_path), demo_service(tmp_path)
    assert first.settings.rate_limit_backend == "store"
    async with client_for(create_demo_app(first)) as client:
        for _ in range(per_account):
            assert (await client.post("/auth/login", data=wrong)).status_code == 401
    async with client_for(create_demo_app(second), peer=("192.0.2.9", 1)) as client:
        assert_problem(await client.post("/auth/login", data=wrong), 429, "rate_limited")
    assert [i.key async for i in first.store.list("ratelimit/")]


async def test_the_api_limit_applies_to_api_paths(tmp_path: Path) -> None:
    service = demo_service(tmp_path)
    async with client_for(create_demo_app(service)) as client:
        statuses = {
            (await client.get("/api/hello")).status_code for _ in range(API_LIMIT.max_requests)
        }
        assert statuses == {401}
        assert_problem(await client.get("/api/hello"), 429, "rate_limited")
        assert (await client.get("/")).status_code == 200


async def test_a_restart_keeps_users_and_sessions(tmp_path: Path) -> None:
    async with client_for(create_demo_app(demo_service(tmp_path)), base_url="https://t") as client:
        await register(client, "alice")
        login = await client.post("/auth/login", data={"username": "alice", "password": PASSWORD})
        tokens = login.json()
    # A new process: new service, same directory, same secret.
    async with client_for(create_demo_app(demo_service(tmp_path)), base_url="https://t") as client:
        me = await client.get("/auth/me", headers=bearer(tokens))
        assert me.json()["username"] == "alice"
        relogin = await client.post("/auth/login", data={"username": "alice", "password": PASSWORD})
        assert relogin.status_code == 200
