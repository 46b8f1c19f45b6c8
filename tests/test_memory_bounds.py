"""Memory that clients cannot grow: what a process keeps of the requests it answers stays
within its documented bound whatever they send (docs/deployment.md, "Memory a client cannot
grow"). Each test drives the real middlewares with many distinct hostile inputs and measures
what stays allocated once they are answered."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Iterator

import pytest
from conftest import make_service
from support import call_http, http_scope, ok_app

from s3auth_asgi import (
    BearerTokenMiddleware,
    BlacklistMiddleware,
    RateLimit,
    RateLimiter,
    RateLimitMiddleware,
    RateLimitRule,
)
from s3auth_asgi.paths import REMEMBERED_PATH_MAX
from s3auth_asgi.ratelimit import MemoryRateLimitStore
from s3auth_asgi.types import Scope

pytestmark = pytest.mark.anyio

LONG_PATH = 64_000
"""What uvicorn hands an app as a path, with either of its HTTP parsers, at the most."""


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def kept() -> int:
    """Bytes allocated now and still traced."""
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def middleware_stack() -> RateLimitMiddleware:
    limiter = RateLimiter(limits={"api": RateLimit(max_requests=600, window_seconds=60)})
    auth = make_service()
    guarded = BearerTokenMiddleware(BlacklistMiddleware(ok_app, auth), auth, protected=("/api/*",))
    return RateLimitMiddleware(guarded, limiter, rules=[RateLimitRule("/api/*", "api")])


async def test_long_paths_are_not_remembered(traced: None) -> None:
    """The middlewares remember what they decided for a path (which rules it falls under,
    whether it needs a token), a bounded number of paths: but a path is as long as the
    server lets it be, and 64 KB each (remembered as received and as routed) made the
    4,096 + 2,048 remembered paths hold 800 MB. A path longer than REMEMBERED_PATH_MAX is
    decided afresh each time instead."""
    app = middleware_stack()
    before = kept()
    for i in range(200):
        path = f"/public/{i}/" + "x" * LONG_PATH
        assert (await call_http(app, http_scope(path))).status == 200
    grown = kept() - before
    assert grown < 1_000_000, f"{grown:,} bytes kept after 200 long paths"
    # The same paths, as long as may be remembered, are: the memo still serves them.
    for i in range(200):
        path = f"/public/{i}/".ljust(REMEMBERED_PATH_MAX, "x")
        assert (await call_http(app, http_scope(path))).status == 200
    assert len(app._counted) == 200
    assert len(app.app.rules._memo) == 200  # type: ignore[attr-defined]


async def test_long_methods_are_not_remembered(traced: None) -> None:
    """The method is the client's to write too, and keys both memos where methods matter."""
    limiter = RateLimiter(limits={"api": RateLimit(max_requests=600, window_seconds=60)})
    guarded = BearerTokenMiddleware(ok_app, make_service(), methods=("POST",))
    app = RateLimitMiddleware(guarded, limiter, rules=[RateLimitRule("/api/*", "api")])
    before = kept()
    for i in range(200):
        method = f"M{i}".ljust(LONG_PATH, "X")
        assert (await call_http(app, http_scope("/api/items", method=method))).status == 200
    grown = kept() - before
    assert grown < 1_000_000, f"{grown:,} bytes kept after 200 long methods"


async def api_key(scope: Scope) -> str | None:
    """A host's key function, as docs/rate-limiting.md has one: the API key sent."""
    return dict(scope["headers"]).get(b"x-api-key", b"").decode() or None


async def test_a_long_key_costs_a_key_of_fixed_length(traced: None) -> None:
    """A limit kept in memory holds `max_keys` keys, documented at about 130 bytes each; a
    key function's key is the client's to write (an API key sent), and was kept as sent:
    100,000 keys of 64 KB, 6.4 GB. Past KEY_TEXT_MAX it is kept by its digest, as an
    account's name is, and is counted as before: under its own state."""
    store = MemoryRateLimitStore()
    limiter = RateLimiter(limits={"api": RateLimit(2, 60, key=api_key)}, store=store)
    app = RateLimitMiddleware(ok_app, limiter, rules=[RateLimitRule("/api/*", "api")])
    before = kept()
    for i in range(200):
        sent = [(b"x-api-key", f"k{i}".ljust(LONG_PATH, "k").encode())]
        assert (await call_http(app, http_scope(headers=sent))).status == 200
    grown = kept() - before
    assert len(store) == 200
    assert grown < 200 * 1000, f"{grown:,} bytes kept for 200 long keys"  # under 1 KB each
    long = [(b"x-api-key", b"k0".ljust(LONG_PATH, b"k"))]
    other = [(b"x-api-key", b"k0".ljust(LONG_PATH, b"k") + b"!")]
    statuses = [(await call_http(app, http_scope(headers=h))).status for h in (long, long, other)]
    assert statuses == [200, 429, 200]
