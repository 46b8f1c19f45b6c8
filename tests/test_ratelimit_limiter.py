"""RateLimiter: who is counted (IP, user, IP + account, custom key), the IETF and legacy
headers, and configuration from S3AUTH_* variables."""

from __future__ import annotations

import logging

import pytest
from starlette.authentication import SimpleUser

from s3auth_asgi import S3AuthSettings
from s3auth_asgi.errors import ConfigurationError
from s3auth_asgi.ratelimit import (
    MemoryRateLimitStore,
    ObjectStoreRateLimitStore,
    RateLimit,
    RateLimiter,
    RateLimitInfo,
)
from s3auth_asgi.storage import ObjectStore
from s3auth_asgi.types import Scope

pytestmark = pytest.mark.anyio

SECRET = "test-secret-key-that-is-long-enough-0123456789"


def request(ip: str = "203.0.113.5", user: object = None, **extra: object) -> Scope:
    scope: Scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "client": (ip, 1)}
    if user is not None:
        scope["user"] = user
    scope.update(extra)
    return scope


class StarletteLikeUser:
    is_authenticated = True

    def __init__(self, identity: str) -> None:
        self.identity = identity


class AnonymousUser:
    is_authenticated = False

    @property
    def identity(self) -> str:
        raise NotImplementedError


class RequestObject:
    """What frameworks pass to endpoints: an object with the scope as `.scope`."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope


async def exhaust(limiter: RateLimiter, scope: Scope, name: str, **kwargs: object) -> int:
    """How many requests pass before the first refusal."""
    for passed in range(1000):
        is_limited, _ = await limiter.is_rate_limited(scope, name, **kwargs)  # type: ignore[arg-type]
        if is_limited:
            return passed
    raise AssertionError("never limited")


async def test_guide_api_as_written() -> None:
    limiter = RateLimiter(
        limits={
            "login": RateLimit(max_requests=5, window_seconds=60),
            "api": RateLimit(max_requests=100, window_seconds=60),
        },
        trusted_proxies=["10.0.0.1"],
        trust_x_forwarded_for=True,
    )
    behind_proxy = request("10.0.0.1", headers=[(b"x-forwarded-for", b"198.51.100.4")])
    for _ in range(5):
        is_limited, info = await limiter.is_rate_limited(RequestObject(behind_proxy), "login")
        assert not is_limited
    is_limited, info = await limiter.is_rate_limited(behind_proxy, "login")
    assert is_limited
    assert info.key == "ip:198.51.100.4"
    headers = limiter.get_rate_limit_headers(info)
    assert headers == {
        "RateLimit-Policy": '"login";q=5;w=60',
        "RateLimit": '"login";r=0;t=12',
        "Retry-After": "12",
    }
    # The limits are separate: "api" is untouched.
    assert not (await limiter.is_rate_limited(behind_proxy, "api"))[0]


async def test_user_key_counts_the_user_wherever_they_come_from() -> None:
    limiter = RateLimiter(limits={"api": RateLimit(3, 60, key="user")})
    alice = StarletteLikeUser("alice-id")
    assert await exhaust(limiter, request("192.0.2.1", alice), "api") == 3
    is_limited, info = await limiter.is_rate_limited(request("192.0.2.99", alice), "api")
    assert is_limited and info.key == "user:alice-id"
    # Claims mappings (a bearer-token middleware) work too, and other users are apart.
    _, info = await limiter.is_rate_limited(request("192.0.2.1", {"sub": "bob"}), "api")
    assert info.allowed and info.key == "user:bob"
    # Starlette's SimpleUser has only a username.
    _, info = await limiter.is_rate_limited(request("192.0.2.1", SimpleUser("carol")), "api")
    assert info.key == "user:carol"
    # Anonymous requests fall back to the client address.
    _, info = await limiter.is_rate_limited(request("192.0.2.1", AnonymousUser()), "api")
    assert info.key == "ip:192.0.2.1"


async def test_ip_plus_account_for_login() -> None:
    limiter = RateLimiter(limits={"login": RateLimit(2, 60)})
    attacker = request("192.0.2.66")
    assert await exhaust(limiter, attacker, "login", account="alice") == 2
    # Same account, normalised the way usernames are.
    assert (await limiter.is_rate_limited(attacker, "login", account=" ALICE"))[0]
    # Another account from the same address, and the same account from elsewhere, pass.
    assert not (await limiter.is_rate_limited(attacker, "login", account="bob"))[0]
    assert not (await limiter.is_rate_limited(request("192.0.2.1"), "login", account="alice"))[0]
    _, info = await limiter.is_rate_limited(attacker, "login", account="x" * 1_000_000)
    assert info.key.startswith("ip:192.0.2.66|account:") and len(info.key) < 80


async def test_custom_async_key_function() -> None:
    async def by_api_key(scope: Scope) -> str | None:
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                return str(value.decode())
        return None

    limiter = RateLimiter(limits={"api": RateLimit(2, 60, key=by_api_key)})
    keyed = request(headers=[(b"x-api-key", b"k1")])
    assert await exhaust(limiter, keyed, "api") == 2
    other_ip_same_key = request("192.0.2.200", headers=[(b"x-api-key", b"k1")])
    is_limited, info = await limiter.is_rate_limited(other_ip_same_key, "api")
    assert is_limited and info.key == "key:k1"
    _, info = await limiter.is_rate_limited(request(), "api")  # no key: by address
    assert info.allowed and info.key == "ip:203.0.113.5"
    _, info = await limiter.is_rate_limited(request(), "api", key="explicit")
    assert info.key == "key:explicit"


async def test_request_objects_and_scopes() -> None:
    limiter = RateLimiter(limits={"api": RateLimit(1, 60)})
    assert not (await limiter.is_rate_limited(RequestObject(request()), "api"))[0]
    assert (await limiter.is_rate_limited(request(), "api"))[0]
    with pytest.raises(ConfigurationError, match="scope"):
        await limiter.is_rate_limited(object(), "api")


def info(name: str, limit: RateLimit, remaining: int, reset: float, retry: float) -> RateLimitInfo:
    return RateLimitInfo(name, limit, "ip:x", retry == 0, remaining, reset, retry)


def test_headers_for_several_limits_and_legacy_fields() -> None:
    login, api = RateLimit(5, 60), RateLimit(100, 60)
    infos = [info("login", login, 0, 11.2, 11.2), info("api", api, 41, 0.3, 0)]
    plain = RateLimiter(limits={"login": login, "api": api})
    assert plain.get_rate_limit_headers(infos) == {
        "RateLimit-Policy": '"login";q=5;w=60, "api";q=100;w=60',
        "RateLimit": '"login";r=0;t=12, "api";r=41;t=1',
        "Retry-After": "12",
    }
    legacy = RateLimiter(limits={"login": login, "api": api}, legacy_headers=True)
    headers = legacy.get_rate_limit_headers(infos)
    assert (
        headers["X-RateLimit-Limit"],
        headers["X-RateLimit-Remaining"],
        headers["X-RateLimit-Reset"],
    ) == ("5", "0", "12")
    admitted = legacy.get_rate_limit_headers(info("api", api, 99, 0.6, 0))
    assert "Retry-After" not in admitted
    assert admitted["RateLimit"] == '"api";r=99;t=1'
    assert admitted["X-RateLimit-Remaining"] == "99"
    full = plain.get_rate_limit_headers(info("api", api, 100, 0.0, 0))
    assert full["RateLimit"] == '"api";r=100;t=0'


def test_from_settings_reads_the_variables() -> None:
    settings = S3AuthSettings.from_env(
        {
            "S3AUTH_SECRET_KEY": SECRET,
            "S3AUTH_RATE_LIMITS": "login=5/60,api=100/60",
            "S3AUTH_TRUSTED_PROXIES": "10.0.0.1, 10.1.0.0/16",
            "S3AUTH_TRUST_X_FORWARDED_FOR": "true",
        }
    )
    limiter = RateLimiter.from_settings(settings)
    assert limiter.limits == {"login": RateLimit(5, 60), "api": RateLimit(100, 60)}
    assert isinstance(limiter.store, MemoryRateLimitStore)
    forwarded = request("10.1.2.3", headers=[(b"x-forwarded-for", b"198.51.100.4")])
    assert limiter.client_resolver.client_key(forwarded) == "ip:198.51.100.4"

    shared = ObjectStoreRateLimitStore(ObjectStore.from_url("memory://"))
    per_limit = RateLimiter.from_settings(settings, stores={"login": shared})
    assert per_limit.stores["login"] is shared
    assert per_limit.stores["api"] is per_limit.store


def test_a_configured_name_close_to_a_default_is_taken_and_warned_of(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Any name may be configured (the host counts its own requests under it); one a typo
    away from a default is most likely that default misspelt, which then goes unchanged."""
    settings = S3AuthSettings.from_env(
        {"S3AUTH_SECRET_KEY": SECRET, "S3AUTH_RATE_LIMITS": "uplaod=5/60,api=10/60,app=1/1"}
    )
    defaults = {"upload": RateLimit(10, 60), "api": RateLimit(100, 60)}
    with caplog.at_level(logging.WARNING, logger="s3auth_asgi"):
        limiter = RateLimiter.from_settings(settings, defaults=defaults)
        RateLimiter.from_settings(settings)  # nothing defined in code: nothing to be like
    assert limiter.limits["uplaod"] == RateLimit(5, 60)
    assert limiter.limits["upload"] == RateLimit(10, 60)  # the default, unchanged
    assert [r.getMessage() for r in caplog.records] == [
        "S3AUTH_RATE_LIMITS: 'uplaod' names none of the limits defined in code (did you mean "
        "'upload'?): only a call that names 'uplaod' is limited by it"
    ]  # `app` is not `api` misspelt: too short to tell


def test_bad_configuration_names_the_variable() -> None:
    def settings(**env: str) -> S3AuthSettings:
        return S3AuthSettings.from_env({"S3AUTH_SECRET_KEY": SECRET, **env})

    with pytest.raises(ConfigurationError, match="S3AUTH_RATE_LIMITS"):
        RateLimiter.from_settings(settings(S3AUTH_RATE_LIMITS="login=five/60"))
    with pytest.raises(ConfigurationError, match="S3AUTH_TRUSTED_PROXIES"):
        RateLimiter.from_settings(
            settings(S3AUTH_TRUSTED_PROXIES="10.0.0.1,proxy.local", S3AUTH_RATE_LIMITS="a=1/1")
        )
    with pytest.raises(ConfigurationError, match="S3AUTH_TRUST_X_FORWARDED_FOR"):
        RateLimiter.from_settings(settings(S3AUTH_TRUST_X_FORWARDED_FOR="true"))
    with pytest.raises(ConfigurationError, match="S3AUTH_TRUST_X_FORWARDED_FOR"):
        RateLimiter.from_settings(
            S3AuthSettings(secret_key=SECRET, trust_x_forwarded_for="yes")  # type: ignore[arg-type]
        )
    with pytest.raises(ConfigurationError, match="S3AUTH_TRUST_X_FORWARDED_FOR"):
        settings(S3AUTH_TRUST_X_FORWARDED_FOR="perhaps")


def test_constructor_validates() -> None:
    for name in ("lo gin", ".."):
        with pytest.raises(ConfigurationError, match="limit name"):
            RateLimiter(limits={name: RateLimit(1, 1)})
    with pytest.raises(ConfigurationError, match="RateLimit"):
        RateLimiter(limits={"login": (5, 60)})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError, match="'nope'"):
        RateLimiter(limits={"login": RateLimit(1, 1)}, stores={"nope": MemoryRateLimitStore()})
