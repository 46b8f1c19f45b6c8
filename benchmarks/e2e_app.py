"""The apps `bench_e2e` serves with uvicorn: one JSON route, bare or behind authentication.

    S3AUTH_BENCH_VARIANT=ours uvicorn --factory benchmarks.e2e_app:create

- bare: the route alone;
- ours: BearerTokenMiddleware + BlacklistMiddleware over memory://, the same work as
  Starlette's AuthenticationMiddleware below;
- ours_limited: the same behind RateLimitMiddleware (a limit per client address no
  benchmark reaches, headers on);
- starlette: Starlette's AuthenticationMiddleware with the joserfc backend of
  bench_middleware (decode and validate every request);
- floor: `LeastAuthentication`, the least an authentication middleware does (below): what
  any of them costs here before it reads a header;
- work_0.5, work_2: the floor plus `FixedWork`, a loop that costs 0.5 or 2 microseconds of
  CPU in process: what any middleware doing that much work, whatever the work, gets under
  load on this machine.
"""

from __future__ import annotations

import os
import statistics
import time

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from benchmarks.bench_middleware import SECRET, JoserfcBackend
from s3auth_asgi import S3AuthService, S3AuthSettings
from s3auth_asgi.middleware.bearer import BearerTokenMiddleware
from s3auth_asgi.middleware.blacklist import BlacklistMiddleware
from s3auth_asgi.middleware.ratelimit import RateLimitMiddleware
from s3auth_asgi.middleware.user import ANONYMOUS_CREDENTIALS, ANONYMOUS_USER, current_scope
from s3auth_asgi.ratelimit import RateLimit, RateLimiter, RateLimitRule
from s3auth_asgi.types import ASGIApp, Receive, Scope, Send

WORK = {f"work_{microseconds:g}": microseconds for microseconds in (0.5, 2.0)}
"""The work controls: variant name to the microseconds of CPU its loop costs."""
VARIANTS = ("bare", "ours", "ours_limited", "starlette", "floor", *WORK)


class LeastAuthentication:
    """Puts an anonymous caller into the scope and the current-scope context variable, as
    BearerTokenMiddleware does, and nothing else: no header read, no token, no check."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["user"] = ANONYMOUS_USER
        scope["auth"] = ANONYMOUS_CREDENTIALS
        context = current_scope.set(scope)
        try:
            await self.app(scope, receive, send)
        finally:
            current_scope.reset(context)


def spin(rounds: int) -> int:
    total = 0
    for number in range(rounds):
        total += number
    return total


def rounds_for(microseconds: float) -> int:
    """How many rounds make a call of `spin` take `microseconds` of CPU here, timed in
    process (a call's own cost, then the cost of each round)."""
    empty = statistics.median(_call_cost(0) for _ in range(7))
    per_round = (statistics.median(_call_cost(200) for _ in range(7)) - empty) / 200
    return max(1, round((microseconds * 1e-6 - empty) / per_round))


def _call_cost(rounds: int, calls: int = 2_000) -> float:
    started = time.process_time()
    for _ in range(calls):
        spin(rounds)
    return (time.process_time() - started) / calls


class FixedWork:
    """Spends a set amount of CPU on every HTTP request, then calls the app: a middleware
    whose cost is known, to tell what a cost of that size does to requests per second."""

    def __init__(self, app: ASGIApp, microseconds: float) -> None:
        self.app = app
        self.rounds = rounds_for(microseconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            spin(self.rounds)
        await self.app(scope, receive, send)


async def item(request: Request) -> JSONResponse:
    return JSONResponse({"item": 42})


def service() -> S3AuthService:
    return S3AuthService(S3AuthSettings(secret_key=SECRET, store_url="memory://"))


def create() -> Starlette:
    variant = os.environ.get("S3AUTH_BENCH_VARIANT", "bare")
    middleware: list[Middleware] = []
    if variant in ("ours", "ours_limited"):
        auth = service()
        middleware = [
            Middleware(BearerTokenMiddleware, tokens=auth),
            Middleware(BlacklistMiddleware, blacklist=auth),
        ]
        if variant == "ours_limited":
            # A billion a year, a limit no client of the benchmark reaches.
            limiter = RateLimiter(limits={"api": RateLimit(10**9, 365 * 86400)})
            rules = [RateLimitRule("/*", "api")]
            middleware.insert(0, Middleware(RateLimitMiddleware, limiter=limiter, rules=rules))
    elif variant == "starlette":
        middleware = [Middleware(AuthenticationMiddleware, backend=JoserfcBackend(SECRET))]
    elif variant == "floor":
        middleware = [Middleware(LeastAuthentication)]
    elif variant in WORK:
        middleware = [
            Middleware(LeastAuthentication),
            Middleware(FixedWork, microseconds=WORK[variant]),
        ]
    elif variant != "bare":
        raise SystemExit(f"S3AUTH_BENCH_VARIANT must be one of {VARIANTS}")
    return Starlette(routes=[Route("/api/item", item)], middleware=middleware)
