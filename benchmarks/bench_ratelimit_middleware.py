"""What RateLimitMiddleware adds to a request, at 1 and at 100,000 distinct clients, and at
100,000 clients that each come back in debt.

    python -m benchmarks.bench_ratelimit_middleware [--smoke]

An ASGI app that answers every request (start and body) is called directly, alone and
behind RateLimitMiddleware with one rule over every path (a limit no client reaches, per
client address, RateLimit headers on), the clients taking turns in a shuffled order; both
see the same requests. The figure is the CPU time the middleware adds per request, round
by round.

Each request's scope is built just before the call, for both contenders, as a server
builds it just before calling the app: what is cold at 100,000 clients is then what a
server would find cold, the limiter's state of that many clients, and not a table of
100,000 scopes that only the bench keeps.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.bench_ratelimit import client_addresses
from benchmarks.harness import Bench, at_most, interleave, standalone
from s3auth_asgi.middleware.ratelimit import RateLimitMiddleware
from s3auth_asgi.ratelimit import MemoryRateLimitStore, RateLimit, RateLimiter, RateLimitRule

TITLE = "RateLimitMiddleware: added CPU per request"
TARGET_ADDED_US = 3.0
ADMITS_ALL = (10**9, 365 * 86400)
"""A limit no client reaches here (a billion a year, the longest window a limit takes): the
figure is the cost of an admitted request."""
IN_DEBT = (1_000, 3600)
"""A limit whose emission interval (3.6 s) is longer than a client's turn, after a first
request from each: every timed request is admitted in debt, so that the algorithm and the
remembered header fields are measured too, where the cases above only ever find the
allowance full (whose answer is written once per rule)."""

Batch = Callable[[int], Awaitable[None]]
"""A runner of this bench: `n` requests, awaited."""

START = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
BODY = {"type": "http.response.body", "body": b"ok"}


async def app(scope: Any, receive: Any, send: Any) -> None:
    await send(START)
    await send(BODY)


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(message: Any) -> None:
    return None


def http_scope(address: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/api/items",
        "raw_path": b"/api/items",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"api.example.com")],
        "client": (address, 40000),
        "server": ("127.0.0.1", 8000),
    }


def runners(count: int, limit: tuple[int, int] = ADMITS_ALL) -> dict[str, Batch]:
    addresses = client_addresses(count)
    random.Random(count).shuffle(addresses)
    template = http_scope("")
    limiter = RateLimiter(
        limits={"api": RateLimit(*limit)},
        store=MemoryRateLimitStore(max_keys=max(100_000, 2 * count)),
    )
    limited = RateLimitMiddleware(app, limiter, [RateLimitRule("/*", "api")])
    positions = {"bare": 0, "middleware": 0}

    def runner(name: str, target: Any) -> Batch:
        async def run(n: int) -> None:
            position = positions[name]
            for _ in range(n):
                position = (position + 1) % count
                await target({**template, "client": (addresses[position], 40000)}, receive, send)
            positions[name] = position

        return run

    return {"bare": runner("bare", app), "middleware": runner("middleware", limited)}


def every_client_once(count: int, target: Batch) -> Callable[[], Awaitable[None]]:
    """A first request from each client, before the rounds: the ones timed come back."""

    async def fill() -> None:
        await target(count)

    return fill


def run(bench: Bench) -> None:
    section = bench.section(
        "ratelimit_middleware",
        "RateLimitMiddleware: CPU added per request",
        "an app answering every request, alone and behind the middleware (one rule, a "
        "limit per address, headers on: one that no client reaches, so that every request "
        "finds the allowance full, or in debt: 1,000 an hour, every client seen once "
        "before the rounds), each request's scope built "
        "just before the call as a server does, interleaved rounds; added = middleware − "
        "bare, round by round",
    )
    many = bench.size(100_000, smoke=1_000)
    for count, limit, state in ((1, None, ""), (many, None, ""), (many, IN_DEBT, " in debt")):
        contenders = runners(count, limit) if limit else runners(count)
        samples = interleave(
            contenders,
            rounds=bench.rounds(),
            batch=bench.size(10_000, smoke=200),
            prepare={"middleware": every_client_once(count, contenders["middleware"])}
            if limit
            else None,
        )
        target = at_most(TARGET_ADDED_US) if count >= 100_000 else None
        label = f"{count:,} clients{state}"
        section.row(f"{label}: bare app", samples.stats("bare", 1e-3), "µs")
        section.row(
            f"{label}: added by RateLimitMiddleware",
            samples.minus("middleware", "bare", 1e-3),
            "µs",
            target,
        )


def main() -> int:
    return standalone(run)


if __name__ == "__main__":
    raise SystemExit(main())
