"""The in-memory limiter against the `limits` library's moving window (aio, MemoryStorage), at
1 to 1,000,000 distinct IPv4 clients and 100,000 IPv6 clients (each in a /64 of its own, so
that every one is a key of its own for both), and at 1,000,000 clients that all come back
in debt (a window of an hour, so that every check runs the algorithm); then the memory one
key holds.

    python -m benchmarks.bench_ratelimit [--smoke]

Both stores are filled with every client first (one check each, not timed), so a check finds
a table of that size. The clients then come in one shuffled order, the same for both, and
both start from the request's ASGI scope: ours is the whole public call (client address
from the scope, check, RateLimitInfo), `limits` is `hit` with the client address read from
the scope, as its integrations key by default (slowapi's `get_remote_address`). "Tight":
checks back to back. "Server-like": an event-loop turn (`asyncio.sleep(0)`) after every
check, as between two requests of a server, which lets the CPU caches go cold; the turn
alone is measured as a third contender and taken off both. Memory: a fresh interpreter
fills a store with 1,000,000 keys as the limiter makes them, and the growth of its resident
set is divided by the keys.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from limits import RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from benchmarks.harness import Bench, Runner, Samples, at_least, at_most, interleave, standalone
from s3auth_asgi.ratelimit import MemoryRateLimitStore, RateLimit, RateLimiter

TITLE = "In-memory rate limiter against limits (MovingWindow), 1 to 1M clients"
MAX_REQUESTS = 100  # per minute, as "api=100/60"
TARGET_RATIO = 3.0
IPV6_TARGET_RATIO = 1.0
"""An IPv6 client is counted by its /64 written out, a string made on every check (past the
address memo), where an IPv4 client is counted by the very text the server gave: what is
asked of IPv6 is no cliff, never costlier than `limits`, which keys by the address as is."""
TARGET_BYTES_PER_KEY = 150
CLIENT_COUNTS = (1, 10_000, 100_000, 1_000_000)
IN_DEBT_CLIENTS = 1_000_000
IN_DEBT_WINDOW = 3600
"""A window long enough that every client comes back before its allowance is full again:
in the cases above, past 10,000 clients, each comes back after its emission interval, and
a check that finds the allowance full skips the algorithm; this case measures the
algorithm itself past the CPU caches."""


IPV6_CLIENTS = 100_000


def client_addresses(count: int, version: int = 4) -> list[str]:
    """`count` distinct clients: IPv4 addresses, or IPv6 addresses in as many /64s."""
    if version == 6:
        return [f"2001:db8:{i >> 16:x}:{i & 0xFFFF:x}::1" for i in range(count)]
    return [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(count)]


def scope_for(address: str) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": "/api",
        "headers": [],
        "client": (address, 5000),
    }


def cycle(items: list[Any]) -> Callable[[], Any]:
    """The next item, round and round: every contender walks the same order."""
    position = 0

    def following() -> Any:
        nonlocal position
        position = (position + 1) % len(items)
        return items[position]

    return following


class Contenders:
    """Ours and theirs, filled with `count` clients, with runners for both modes."""

    def __init__(self, count: int, *, background: bool, version: int = 4, window: int = 60) -> None:
        addresses = client_addresses(count, version)
        random.Random(count).shuffle(addresses)
        self.scopes = [scope_for(address) for address in addresses]
        # As its docstring asks: max_keys above the clients expected within a window.
        store = MemoryRateLimitStore(max_keys=max(100_000, 2 * count))
        self.limiter = RateLimiter(limits={"api": RateLimit(MAX_REQUESTS, window)}, store=store)
        self.storage = MemoryStorage()
        self.limits = MovingWindowRateLimiter(self.storage)
        self.background = background
        self.item = (
            RateLimitItemPerMinute(MAX_REQUESTS)
            if window == 60
            else RateLimitItemPerSecond(MAX_REQUESTS, window)
        )

    async def fill_ours(self) -> None:
        for scope in self.scopes:
            await self.limiter.is_rate_limited(scope, "api")

    async def fill_limits(self) -> None:
        for scope in self.scopes:
            await self.limits.hit(self.item, scope["client"][0])
        if not self.background:
            # The check alone: limits' expiry pass (below) is not let start. It would run
            # whenever a check waits on a key's lock, which makes the figure a lottery.
            self.storage.timer = asyncio.get_running_loop().create_future()  # type: ignore[assignment]

    def runners(self, turn: bool) -> dict[str, Runner]:
        # Each contender has its own loop on purpose: a shared helper would add a call per
        # check to both sides and blur the comparison.
        is_rate_limited, hit, item = self.limiter.is_rate_limited, self.limits.hit, self.item
        next_scope, next_peer = cycle(self.scopes), cycle(self.scopes)
        sleep = asyncio.sleep

        async def ours(n: int) -> None:
            for _ in range(n):
                await is_rate_limited(next_scope(), "api")

        async def theirs(n: int) -> None:
            for _ in range(n):
                await hit(item, next_peer()["client"][0])

        async def ours_turn(n: int) -> None:
            for _ in range(n):
                await is_rate_limited(next_scope(), "api")
                await sleep(0)

        async def theirs_turn(n: int) -> None:
            for _ in range(n):
                await hit(item, next_peer()["client"][0])
                await sleep(0)

        async def turn_only(n: int) -> None:
            for _ in range(n):
                next_peer()
                await sleep(0)

        if turn:
            return {"ours": ours_turn, "limits": theirs_turn, "turn": turn_only}
        return {"ours": ours, "limits": theirs}


def compare(bench: Bench) -> dict[str, Samples]:
    section = bench.section(
        "ratelimit",
        "In-memory limiter vs limits MovingWindow (aio, MemoryStorage)",
        "CPU µs per check, medians over interleaved rounds; both start from the ASGI "
        "scope: ours is the whole RateLimiter.is_rate_limited call, limits is hit() with "
        "the client address read from the scope, as its integrations key by default. "
        "Tight: checks back to back, the check alone (limits' background expiry pass "
        "not started). Server-like: an event-loop turn after each check, the turn's own cost "
        "taken off both; each contender has its own event loop, and what limits' "
        "MemoryStorage runs in the background there (a pass over every key to expire "
        "events, one thread hop per key) is counted as its cost, as a server would pay it",
    )
    counts = (1, 2_000) if bench.smoke else CLIENT_COUNTS
    both = (False, True)
    cases = [(count, 4, 60, both) for count in counts] + [
        (bench.size(IPV6_CLIENTS, smoke=2_000), 6, 60, both),
        (bench.size(IN_DEBT_CLIENTS, smoke=2_000), 4, IN_DEBT_WINDOW, (False,)),
    ]
    results: dict[str, Samples] = {}
    for count, version, window, modes in cases:
        for turn in modes:
            # Fresh stores for each mode, filled on the loop each contender then runs on:
            # limits' locks belong to the loop that first waited on them.
            contenders = Contenders(count, background=turn, version=version, window=window)
            fill = {"ours": contenders.fill_ours, "limits": contenders.fill_limits}
            mode = "server-like" if turn else "tight"
            batch = bench.size(4_000 if turn else 20_000, smoke=200)
            samples = interleave(
                contenders.runners(turn),
                rounds=bench.rounds(),
                batch=batch,
                prepare=fill,
            )
            family = "IPv6 " if version == 6 else ""
            state = " in debt" if window == IN_DEBT_WINDOW else ""
            results[f"{count}{family.strip().lower()}{state.replace(' ', '-')}/{mode}"] = samples
            base = "turn" if turn else None
            label = f"{count:,} {family}clients{state}, {mode}"
            us = 1e-3
            ours = samples.minus("ours", base, us) if base else samples.stats("ours", us)
            theirs = samples.minus("limits", base, us) if base else samples.stats("limits", us)
            section.row(f"{label}: ours", ours, "µs")
            section.row(f"{label}: limits", theirs, "µs")
            section.row(
                f"{label}: limits / ours",
                samples.ratio("limits", "ours", base),
                "x",
                at_least(TARGET_RATIO if version == 4 else IPV6_TARGET_RATIO),
            )
            del contenders
    return results


MEMORY_PROBE = """
import gc, sys
from s3auth_asgi.ratelimit import MemoryRateLimitStore, RateLimit
from limits import RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

which, count = sys.argv[1], int(sys.argv[2])
limit, item = RateLimit(100, 60), RateLimitItemPerMinute(100)
store = MemoryRateLimitStore(max_keys=count)
theirs = MovingWindowRateLimiter(MemoryStorage())
gc.collect()
before = rss()
for i in range(count):
    key = f"ip:10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
    if which == "ours":
        store.check("api", key, limit, 1)
    else:
        theirs.hit(item, key)
gc.collect()
print((rss() - before) / count)
"""


def bytes_per_key(which: str, count: int) -> float:
    """RSS growth per key of a fresh interpreter that fills one store (the key strings
    included: a store holds the keys it is given)."""
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, which, str(count)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip())


def memory(bench: Bench) -> None:
    count = bench.size(1_000_000, smoke=5_000)
    section = bench.section(
        "ratelimit_memory",
        f"Memory per key, {count:,} keys",
        "resident-set growth of a fresh interpreter filling one store, per key (key "
        "strings included); limits uses its synchronous MemoryStorage here, the same data",
    )
    ours = bytes_per_key("ours", count)
    section.row("ours, bytes per key", ours, "B", at_most(TARGET_BYTES_PER_KEY))
    if not bench.smoke:
        theirs = bytes_per_key("limits", count)
        section.row("limits MovingWindow, bytes per key", theirs, "B")
        section.row("limits / ours", theirs / ours, "x")


def run(bench: Bench) -> None:
    compare(bench)
    memory(bench)


def main() -> int:
    return standalone(run)


if __name__ == "__main__":
    raise SystemExit(main())
