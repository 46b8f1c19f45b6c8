"""Every credential or token endpoint is limited: refresh and logout per client address, in
each process's memory (so a refresh makes no more store requests for it); a profile change per
address and per account; and a new email address needs the current password, checked as a
password attempt before the address is tried."""

from __future__ import annotations

import pytest
from conftest import make_service
from test_app import PASSWORD, assert_problem, bearer, client_for, login, mounted, register

from s3auth_asgi.app import DEFAULT_AUTH_LIMITS
from s3auth_asgi.ratelimit import RateLimit, RateLimiter

pytestmark = pytest.mark.anyio

FORGED = "rt1.00000000000000000000000000000000.00000000000000000000000000000000.forged"


async def test_forged_refresh_tokens_are_refused_at_the_limit_without_store_requests() -> None:
    service = make_service(rate_limit_store="store")
    limiter = RateLimiter({"token": RateLimit(3, 60)})
    async with client_for(mounted(service, rate_limit=True, limiter=limiter)) as client:
        statuses = []
        for _ in range(3):
            response = await client.post("/auth/refresh", data={"refresh_token": FORGED})
            statuses.append(response.status_code)
        assert statuses == [401] * 3
        service.store.reset_counts()
        refused = await client.post("/auth/refresh", data={"refresh_token": FORGED})
        assert_problem(refused, 429, "rate_limited")
        assert '"token";q=3;w=60' in refused.headers["ratelimit-policy"]
        assert dict(service.store.requests) == {}
        # The limit is per address: another client is not refused.
    async with client_for(
        mounted(service, rate_limit=True, limiter=limiter), peer=("192.0.2.9", 1)
    ) as other:
        response = await other.post("/auth/refresh", data={"refresh_token": FORGED})
        assert response.status_code == 401


@pytest.mark.parametrize("rate_limit", [False, True])
async def test_the_token_limit_adds_no_store_request_to_a_refresh(rate_limit: bool) -> None:
    """With shared limits or none, a refresh costs the session's GET, the listing that
    keeps the user's sessions under the cap, and the rotation's PUT."""
    service = make_service(rate_limit_store="store")
    async with client_for(mounted(service, rate_limit=rate_limit)) as client:
        await register(client, "alice")
        tokens = await login(client, "alice")
        await client.get("/auth/me", headers=bearer(tokens))  # the first revocation sync
        service.store.reset_counts()
        response = await client.post(
            "/auth/refresh", data={"refresh_token": tokens["refresh_token"]}
        )
        assert response.status_code == 200
        assert dict(service.store.requests) == {"get": 1, "list": 1, "put": 1}
        if rate_limit:
            assert '"token";q=120;w=60' in response.headers["ratelimit-policy"]


async def test_logout_and_logout_all_count_against_the_token_limit() -> None:
    service = make_service()
    limiter = RateLimiter({"token": RateLimit(2, 60)})
    async with client_for(mounted(service, rate_limit=True, limiter=limiter)) as client:
        await register(client, "alice")
        first = await login(client, "alice")
        second = await login(client, "alice")
        assert (await client.post("/auth/logout", headers=bearer(first))).status_code == 204
        assert (await client.post("/auth/logout-all", headers=bearer(second))).status_code == 200
        third = await login(client, "alice")
        refused = await client.post("/auth/logout", headers=bearer(third))
        assert_problem(refused, 429, "rate_limited")
    # The third session was not ended by the refused request.
    user = await service.get_user_by_username("alice")
    assert user is not None
    assert len(await service.get_user_active_sessions(user.id)) == 1


async def test_profile_changes_are_limited_per_account_from_any_address() -> None:
    service = make_service()
    limiter = RateLimiter({"profile": RateLimit(100, 60), "profile_account": RateLimit(2, 60)})
    app = mounted(service, rate_limit=True, limiter=limiter)
    async with client_for(app) as client:
        await register(client, "alice")
        tokens = await login(client, "alice")
    statuses = []
    for i in range(3):
        async with client_for(app, peer=(f"198.51.100.{i + 1}", 1)) as client:
            response = await client.patch(
                "/auth/me", json={"full_name": f"Alice {i}"}, headers=bearer(tokens)
            )
            statuses.append(response.status_code)
    assert statuses == [200, 200, 429]
    user = await service.get_user_by_username("alice")
    assert user is not None and user.full_name == "Alice 1"  # the refused change was not made


async def test_logouts_are_limited_per_account_from_any_address() -> None:
    """With the caller known (a bearer token), logout counts against its account too; a
    refresh token in the body names no caller, so only its address counts."""
    service = make_service()
    limiter = RateLimiter({"token": RateLimit(100, 60), "token_account": RateLimit(2, 60)})
    app = mounted(service, rate_limit=True, limiter=limiter)
    async with client_for(app) as client:
        await register(client, "alice")
        sessions = [await login(client, "alice") for _ in range(4)]
    statuses = []
    for i, tokens in enumerate(sessions[:3]):
        async with client_for(app, peer=(f"198.51.100.{i + 1}", 1)) as client:
            statuses.append((await client.post("/auth/logout", headers=bearer(tokens))).status_code)
    assert statuses == [204, 204, 429]
    async with client_for(app, peer=("198.51.100.9", 1)) as client:
        by_body = await client.post(
            "/auth/logout", data={"refresh_token": sessions[3]["refresh_token"]}
        )
    assert by_body.status_code == 204


async def test_the_token_and_profile_limits_are_in_the_defaults() -> None:
    assert DEFAULT_AUTH_LIMITS["token"] == RateLimit(120, 60)
    assert DEFAULT_AUTH_LIMITS["token_account"] == RateLimit(30, 60)
    assert DEFAULT_AUTH_LIMITS["profile"] == RateLimit(20, 600)
    assert DEFAULT_AUTH_LIMITS["profile_account"] == RateLimit(10, 600)


# A new email address needs the current password --------------------------------------------


async def test_a_new_email_needs_the_current_password() -> None:
    service = make_service()
    async with client_for(mounted(service)) as client:
        await register(client, "alice")
        tokens = await login(client, "alice")
        missing = await client.patch(
            "/auth/me", json={"email": "thief@example.net"}, headers=bearer(tokens)
        )
        assert_problem(missing, 403, "current_password_required")
        wrong = await client.patch(
            "/auth/me",
            json={"email": "thief@example.net", "current_password": "Wrong123!"},
            headers=bearer(tokens),
        )
        assert_problem(wrong, 403, "wrong_password")
        user = await service.get_user_by_username("alice")
        assert user is not None and user.email == "alice@example.com"
        right = await client.patch(
            "/auth/me",
            json={"email": "alice@example.org", "current_password": PASSWORD},
            headers=bearer(tokens),
        )
        assert right.status_code == 200, right.text
        assert right.json()["email"] == "alice@example.org"
        # Other fields need no password.
        named = await client.patch("/auth/me", json={"full_name": "A"}, headers=bearer(tokens))
        assert named.status_code == 200


async def test_a_wrong_password_says_nothing_of_the_new_address() -> None:
    """Whether another account holds the address is not tried before the password holds."""
    service = make_service()
    async with client_for(mounted(service)) as client:
        await register(client, "alice")
        await register(client, "bob")
        tokens = await login(client, "alice")
        await client.get("/auth/me", headers=bearer(tokens))  # the first revocation sync
        answers = []
        for address in ("bob@example.com", "nobody@example.com"):
            service.store.reset_counts()
            response = await client.patch(
                "/auth/me",
                json={"email": address, "current_password": "Wrong123!"},
                headers=bearer(tokens),
            )
            answers.append((response.status_code, response.content, dict(service.store.requests)))
    assert answers[0] == answers[1]
    assert answers[0][0] == 403


async def test_wrong_current_passwords_count_against_the_login_budget() -> None:
    service = make_service()
    per_account = DEFAULT_AUTH_LIMITS["login_account"].max_requests
    async with client_for(mounted(service, rate_limit=True)) as client:
        await register(client, "alice")
        tokens = await login(client, "alice")
        statuses = []
        for _ in range(per_account + 1):
            response = await client.patch(
                "/auth/me",
                json={"email": "thief@example.net", "current_password": "Wrong123!"},
                headers=bearer(tokens),
            )
            statuses.append(response.status_code)
        assert statuses == [403] * per_account + [429]
        # The login budget is the same: the right password at /login is refused too.
        refused = await client.post(
            "/auth/login", data={"username": "alice@example.com", "password": PASSWORD}
        )
        assert_problem(refused, 429, "rate_limited")


async def test_a_password_checked_change_has_one_set_of_rate_limit_fields() -> None:
    # A new address is checked as a password attempt (the handler's limits) on top of the
    # profile limits every change counts against (the operation's): one answer, one list
    # of policies, and one policy in the legacy fields, the closest to refusing.
    limits = {name: RateLimit(1, 600) for name in ("profile", "profile_account", "login")}
    limiter = RateLimiter(limits, legacy_headers=True)
    service = make_service()
    user = await service.create_user("alice", "alice@example.com", PASSWORD)
    tokens = {"access_token": (await service.create_token_pair(user)).access_token}
    async with client_for(mounted(service, limiter=limiter, rate_limit=True)) as client:
        answer = await client.patch(
            "/auth/me",
            json={"email": "elsewhere@example.com", "current_password": PASSWORD},
            headers=bearer(tokens),
        )
    assert answer.status_code == 200
    assert answer.headers.get_list("x-ratelimit-limit") == ["1"]
    assert answer.headers.get_list("x-ratelimit-remaining") == ["0"]
    assert answer.headers.get_list("x-ratelimit-reset") == ["600"]
    assert answer.headers.get_list("ratelimit-policy") == [
        '"profile";q=1;w=600, "profile_account";q=1;w=600, "login";q=1;w=600'
    ]
    assert answer.headers.get_list("ratelimit") == [
        '"profile";r=0;t=600, "profile_account";r=0;t=600, "login";r=1;t=0'
    ]


async def test_an_administrator_changes_an_email_without_a_password() -> None:
    """An administrator acts on someone else's account: there is no password of theirs to
    give, and the admin body has no such field."""
    service = make_service()
    await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    async with client_for(mounted(service)) as client:
        alice = await register(client, "alice")
        tokens = await login(client, "root")
        path = f"/auth/admin/users/{alice['id']}"
        changed = await client.patch(
            path, json={"email": "alice@example.org"}, headers=bearer(tokens)
        )
        assert changed.status_code == 200 and changed.json()["email"] == "alice@example.org"
        stray = await client.patch(
            path, json={"email": "a@example.net", "current_password": "x"}, headers=bearer(tokens)
        )
        assert_problem(stray, 422, "validation_error")
