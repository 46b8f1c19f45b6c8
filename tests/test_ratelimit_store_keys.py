"""What a request is counted under, as the object-store limiter names it: any string a key
function, an account or a user id may give, each its own fixed-length object, as the
limiter in memory counts it."""

from __future__ import annotations

import pytest
from support import RecordingApp, asgi_client

from s3auth_asgi.middleware.ratelimit import RateLimitMiddleware
from s3auth_asgi.ratelimit import (
    MemoryRateLimitStore,
    ObjectStoreRateLimitStore,
    RateLimit,
    RateLimiter,
    RateLimitRule,
    RateLimitStore,
)
from s3auth_asgi.storage import ObjectStore, keys
from s3auth_asgi.types import Scope

pytestmark = pytest.mark.anyio


async def api_key(scope: Scope) -> str | None:
    """A host's key function: the raw API key, its bytes kept whatever they are, as
    `os.fsdecode` keeps them (undecodable bytes become lone surrogates)."""
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            return str(value.decode("utf-8", "surrogateescape"))
    return None


@pytest.mark.parametrize("kind", ["memory", "object store"])
async def test_a_key_of_any_string_is_counted_under_its_own_state(kind: str) -> None:
    store = ObjectStore.from_url("memory://")
    limit_store: RateLimitStore = (
        MemoryRateLimitStore() if kind == "memory" else ObjectStoreRateLimitStore(store)
    )
    limiter = RateLimiter(limits={"api": RateLimit(2, 60, key=api_key)}, store=limit_store)
    app = RateLimitMiddleware(RecordingApp(), limiter, rules=[RateLimitRule("/api/*", "api")])
    async with asgi_client(app) as client:
        statuses = [
            (await client.get("/api/x", headers={"x-api-key": key})).status_code
            for key in (b"\xff", b"\xff", b"\xff", b"\xfe", b"caf\xc3\xa9")
        ]
    assert statuses == [200, 200, 429, 200, 200]
    if kind == "object store":
        listed = sorted([info.key async for info in store.list(keys.RATELIMIT)])
        assert len(listed) == 3
        assert keys.ratelimit("api", "key:café") in listed  # a valid key as it always was


async def test_a_huge_identity_is_one_object_of_fixed_length() -> None:
    store = ObjectStore.from_url("memory://")
    limiter = ObjectStoreRateLimitStore(store)
    for key in ("user:" + "x" * 1_000_000, "ip:2001:db8:ffff:ffff::", "key:\udc80" * 10_000):
        assert (await limiter.acquire("api", key, RateLimit(1, 60), 1)).allowed
        assert not (await limiter.acquire("api", key, RateLimit(1, 60), 1)).allowed
    listed = [info.key async for info in store.list(keys.RATELIMIT)]
    assert len(listed) == 3
    assert {len(key) for key in listed} == {len(keys.RATELIMIT) + len("api/") + 64}
