"""Login, register and password change are rate-limited per IP and per IP + account by
default, and sessions record the client address the limiter resolves."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from conftest import DEFAULT_HASHING, FAST_HASHING, SECRET, make_service
from test_app import PASSWORD, assert_problem, bearer, client_for, login, mounted, register

from s3auth_asgi import S3AuthService, S3AuthSettings
from s3auth_asgi.app import DEFAULT_AUTH_LIMITS, create_auth_app, default_limiter
from s3auth_asgi.app.limits import AuthRateLimits
from s3auth_asgi.ratelimit import ObjectStoreRateLimitStore, RateLimit, RateLimiter

pytestmark = pytest.mark.anyio


async def attempt_login(client: httpx.AsyncClient, name: str, **headers: str) -> httpx.Response:
    return await client.post(
        "/auth/login", data={"username": name, "password": "Wrong123!"}, headers=headers
    )


async def test_login_is_limited_per_account_from_one_address_by_default() -> None:
    service = make_service()
    per_account = DEFAULT_AUTH_LIMITS["login_account"].max_requests
    async with client_for(mounted(service, rate_limit=True)) as client:
        await register(client, "alice")
        statuses = [(await attempt_login(client, "alice")).status_code for _ in range(per_account)]
        assert statuses == [401] * per_account
        refused = await attempt_login(client, "alice")
        body = assert_problem(refused, 429, "rate_limited")
        assert "retry" in body["detail"]
        assert int(refused.headers["retry-after"]) >= 1
        assert '"login_account"' in refused.headers["ratelimit-policy"]
        # The right password does not get through either: the account is being guessed at.
        right = await client.post("/auth/login", data={"username": "alice", "password": PASSWORD})
        assert right.status_code == 429
        # Another account from the same address is still open.
        assert (await attempt_login(client, "bob")).status_code == 401


async def test_login_is_limited_per_address_across_accounts() -> None:
    service = make_service()
    per_ip = DEFAULT_AUTH_LIMITS["login"].max_requests
    async with client_for(mounted(service, rate_limit=True)) as client:
        for i in range(per_ip):
            assert (await attempt_login(client, f"user{i}")).status_code == 401
        refused = await attempt_login(client, "someone-new")
        assert_problem(refused, 429, "rate_limited")
        assert '"login"' in refused.headers["ratelimit-policy"]
    async with client_for(mounted(service, rate_limit=True), peer=("192.0.2.1", 1)) as other:
        assert (await attempt_login(other, "someone-new")).status_code == 401


async def test_admitted_logins_carry_the_ratelimit_headers() -> None:
    async with client_for(mounted(make_service(), rate_limit=True)) as client:
        await register(client, "alice")
        response = await client.post(
            "/auth/login", data={"username": "alice", "password": PASSWORD}
        )
    assert response.status_code == 200
    assert response.headers["ratelimit"].startswith('"login";r=')


async def test_register_is_limited_per_address_and_account() -> None:
    service = make_service()
    per_account = DEFAULT_AUTH_LIMITS["register_account"].max_requests
    async with client_for(mounted(service, rate_limit=True)) as client:
        statuses = []
        for _ in range(per_account + 1):
            response = await client.post(
                "/auth/register",
                json={"username": "alice", "email": "a@example.com", "password": PASSWORD},
            )
            statuses.append(response.status_code)
    assert statuses == [201] + [409] * (per_account - 1) + [429]


async def test_limits_come_from_the_settings() -> None:
    service = make_service(rate_limits="login_account=2/60")
    async with client_for(mounted(service, rate_limit=True)) as client:
        statuses = [(await attempt_login(client, "alice")).status_code for _ in range(3)]
    assert statuses == [401, 401, 429]


async def test_a_given_limiter_is_used_and_rate_limit_false_turns_limiting_off() -> None:
    limiter = RateLimiter({"login": RateLimit(max_requests=1, window_seconds=60)})
    async with client_for(mounted(make_service(), limiter=limiter, rate_limit=True)) as client:
        statuses = [(await attempt_login(client, "alice")).status_code for _ in range(2)]
        # This limiter has no register limits: more registrations from one address than
        # the default limits allow all succeed.
        for i in range(DEFAULT_AUTH_LIMITS["register"].max_requests + 1):
            await register(client, f"user{i}")
    assert statuses == [401, 429]
    async with client_for(mounted(make_service(), rate_limit=False)) as client:
        statuses = [(await attempt_login(client, "alice")).status_code for _ in range(8)]
    assert statuses == [401] * 8


async def test_password_change_attempts_count_against_the_account() -> None:
    service = make_service(rate_limits="login_account=3/60")
    async with client_for(mounted(service, rate_limit=True)) as client:
        await register(client, "alice")
        tokens = await login(client, "alice")
        statuses = []
        for _ in range(4):
            response = await client.post(
                "/auth/password",
                json={"current_password": "Guess123!", "new_password": "Newer123!"},
                headers=bearer(tokens),
            )
            statuses.append(response.status_code)
    assert statuses == [403, 403, 403, 429]


async def sessions_of(client: httpx.AsyncClient, tokens: dict[str, Any]) -> list[dict[str, Any]]:
    response = await client.get("/auth/sessions", headers=bearer(tokens))
    sessions: list[dict[str, Any]] = response.json()["sessions"]
    return sessions


async def test_sessions_record_the_client_behind_a_trusted_proxy() -> None:
    service = make_service(
        trusted_proxies=["10.0.0.0/8"], trust_x_forwarded_for=True, rate_limits="login=2/60"
    )
    app = mounted(service, rate_limit=True)
    async with client_for(app, peer=("10.1.2.3", 4000)) as proxied:
        await register(proxied, "alice")
        response = await proxied.post(
            "/auth/login",
            data={"username": "alice", "password": PASSWORD},
            headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.9"},
        )
        (session,) = await sessions_of(proxied, response.json())
        assert session["ip_address"] == "203.0.113.9"
        # Each forwarded client has its own allowance of wrong passwords.
        for _ in range(2):
            await attempt_login(proxied, "alice", **{"X-Forwarded-For": "203.0.113.50"})
        limited = await attempt_login(proxied, "alice", **{"X-Forwarded-For": "203.0.113.50"})
        other = await attempt_login(proxied, "alice", **{"X-Forwarded-For": "203.0.113.51"})
        assert (limited.status_code, other.status_code) == (429, 401)
    # From an untrusted peer the header is the client's own claim, and ignored.
    async with client_for(app, peer=("192.0.2.7", 4000)) as direct:
        response = await direct.post(
            "/auth/login",
            data={"username": "alice", "password": PASSWORD},
            headers={"X-Forwarded-For": "203.0.113.9"},
        )
        addresses = {s["ip_address"] for s in await sessions_of(direct, response.json())}
        assert "192.0.2.7" in addresses


async def test_the_default_limiter_takes_the_options_of_a_limiter_of_ones_own() -> None:
    """Behind a proxy that writes RFC 7239 `Forwarded`, the app's limits and the addresses
    its sessions record must be read as the host's own limiter reads them, while its shared
    limits stay in the store that every process counts in."""
    service = make_service(
        trusted_proxies=["10.0.0.1"],
        trust_x_forwarded_for=True,
        rate_limit_store="store",
        rate_limits="login=2/60",
    )
    limiter = default_limiter(
        service.settings,
        store=service.store,
        clock=service.clock,
        forwarded_header="forwarded",
        ipv6_prefix_length=56,
    )
    assert isinstance(limiter.stores["login"], ObjectStoreRateLimitStore)
    direct = {"client": ("2001:db8:0:1ff::1", 1), "headers": []}
    assert limiter.client_resolver.client_key(direct) == "ip:2001:db8:0:100::/56"
    app = mounted(service, limiter=limiter, rate_limit=True)
    async with client_for(app, peer=("10.0.0.1", 4000)) as proxied:
        await register(proxied, "alice")
        response = await proxied.post(
            "/auth/login",
            data={"username": "alice", "password": PASSWORD},
            headers={"Forwarded": 'for="[2001:db8::9]:4711"', "X-Forwarded-For": "192.0.2.66"},
        )
        (session,) = await sessions_of(proxied, response.json())
        assert session["ip_address"] == "2001:db8::9"
        spent = {"Forwarded": "for=203.0.113.50"}
        statuses = [(await attempt_login(proxied, "alice", **spent)).status_code for _ in range(3)]
        other = await attempt_login(proxied, "alice", Forwarded="for=203.0.113.51")
        assert (statuses, other.status_code) == ([401, 401, 429], 401)


FORWARDED_BY_ENV = {
    "S3AUTH_SECRET_KEY": SECRET,
    "S3AUTH_TRUSTED_PROXIES": "10.0.0.1",
    "S3AUTH_TRUST_X_FORWARDED_FOR": "true",
    "S3AUTH_FORWARDED_HEADER": "forwarded",
    "S3AUTH_IPV6_PREFIX_LENGTH": "56",
    "S3AUTH_RATE_LIMITS": "login=2/60",
}
"""A deployment behind a proxy that writes RFC 7239 `Forwarded`, configured by the
environment alone."""


async def test_the_settings_say_how_the_app_and_the_hosts_limiter_read_a_client() -> None:
    """Without limits of its own the app still records the client of each session, and it
    must be the one a limiter the host makes from the same settings counts: read from
    `Forwarded` (a client's own X-Forwarded-For passed through is no one's word), IPv6 by
    the configured prefix."""
    settings = S3AuthSettings.from_env(FORWARDED_BY_ENV, **FAST_HASHING)
    host = RateLimiter.from_settings(settings, defaults={"api": RateLimit(100, 60)})
    forwarded = {"Forwarded": 'for="[2001:db8:0:1ff::9]:4711"', "X-Forwarded-For": "192.0.2.66"}
    app = mounted(S3AuthService(settings), rate_limit=False)
    async with client_for(app, peer=("10.0.0.1", 4000)) as proxied:
        await register(proxied, "alice")
        response = await proxied.post(
            "/auth/login", data={"username": "alice", "password": PASSWORD}, headers=forwarded
        )
        (session,) = await sessions_of(proxied, response.json())
    assert session["ip_address"] == "2001:db8:0:1ff::9"
    scope = {
        "type": "http",
        "client": ("10.0.0.1", 4000),
        "headers": [(name.lower().encode(), value.encode()) for name, value in forwarded.items()],
    }
    _, info = await host.is_rate_limited(scope, "api")
    assert info.key == "ip:2001:db8:0:100::/56"
    assert AuthRateLimits(None, settings).client_ip(scope) == session["ip_address"]
    assert default_limiter(settings).client_resolver.client_key(scope) == info.key


async def test_the_apps_own_limits_count_a_client_as_the_settings_say() -> None:
    service = S3AuthService(S3AuthSettings.from_env(FORWARDED_BY_ENV, **FAST_HASHING))
    async with client_for(mounted(service, rate_limit=True), peer=("10.0.0.1", 4000)) as proxied:
        await register(proxied, "alice")
        # Two addresses of one /56 are one client; the next /56 is another.
        first = [
            (await attempt_login(proxied, "alice", Forwarded=f'for="[{a}]"')).status_code
            for a in ("2001:db8:0:1ff::9", "2001:db8:0:100::1", "2001:db8:0:1aa::1")
        ]
        other = await attempt_login(proxied, "alice", Forwarded='for="[2001:db8:0:200::1]"')
        # What the client wrote itself in the other header is never read.
        spoofed = await attempt_login(
            proxied,
            "alice",
            Forwarded='for="[2001:db8:0:1ff::9]"',
            **{"X-Forwarded-For": "192.0.2.1"},
        )
    assert (first, other.status_code, spoofed.status_code) == ([401, 401, 429], 401, 429)


# A limit name one typo away from the app's own ---------------------------------------------


def test_a_limit_name_close_to_the_apps_own_is_warned_of_at_build(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`logn=5/60` configures a limit no endpoint counts, while the operator believes logins
    are limited: a custom name is legitimate (a host may count its own requests under it),
    so it is taken, and a warning names it with the name it is most like."""
    service = make_service(
        rate_limits="logn=5/60,login_acount=3/900,api=100/60,register=5/60", **DEFAULT_HASHING
    )
    with caplog.at_level(logging.WARNING, logger="s3auth_asgi"):
        create_auth_app(service)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "S3AUTH_RATE_LIMITS: 'logn' names none of the limits defined in code (did you "
        "mean 'login'?): only a call that names 'logn' is limited by it",
        "S3AUTH_RATE_LIMITS: 'login_acount' names none of the limits defined in code (did "
        "you mean 'login_account'?): only a call that names 'login_acount' is limited by it",
    ]


def test_a_name_the_host_defines_is_no_misspelling(caplog: pytest.LogCaptureFixture) -> None:
    service = make_service(rate_limits="tokens=5/60,api=100/60,Login=5/60")
    with caplog.at_level(logging.WARNING, logger="s3auth_asgi"):
        default_limiter(service.settings, extra={"tokens": RateLimit(10, 60)})
    assert [r.getMessage() for r in caplog.records] == [
        "S3AUTH_RATE_LIMITS: 'Login' names none of the limits defined in code (did you "
        "mean 'login'?): only a call that names 'Login' is limited by it",
    ]
