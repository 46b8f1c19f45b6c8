"""Rate-limit benchmark: this package's in-memory GCRA against the `limits` library's async
moving-window memory storage, measured side by side in one run; then the memory held by
1,000,000 distinct keys.

    python -m benchmarks.bench_ratelimit [--checks 200000] [--repeats 5] [--keys 1000000]

Each throughput figure is the best of `repeats` interleaved runs (the least disturbed by
whatever else the machine is doing), on one core, one event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from s3auth_asgi.ratelimit import (
    MemoryRateLimitStore,
    ObjectStoreRateLimitStore,
    RateLimit,
    RateLimiter,
)
from s3auth_asgi.storage import ObjectStore

MAX_REQUESTS = 100  # per minute, as "api=100/60"
TARGET_CHECKS_PER_SECOND = 300_000
TARGET_RATIO = 2.0
TARGET_MEMORY_MB = 200

Run = Callable[[int], Awaitable[float]]


def client_addresses(count: int) -> list[str]:
    return [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(count)]


def scopes_for(addresses: list[str]) -> list[dict[str, object]]:
    return [
        {"type": "http", "method": "GET", "path": "/api", "headers": [], "client": (ip, 5000)}
        for ip in addresses
    ]


# Each contender has its own tight loop on purpose: a shared helper would add a call and
# argument unpacking per check to every side and blur the comparison.


def ours_via_limiter(addresses: list[str]) -> Run:
    """The whole public call: client address from the scope, check, RateLimitInfo."""
    limiter = RateLimiter(limits={"api": RateLimit(MAX_REQUESTS, 60)})
    scopes = scopes_for(addresses)
    count = len(scopes)

    async def run(checks: int) -> float:
        is_rate_limited = limiter.is_rate_limited
        start = time.perf_counter()
        for i in range(checks):
            await is_rate_limited(scopes[i % count], "api")
        return time.perf_counter() - start

    return run


def ours_store_only(addresses: list[str]) -> Run:
    """The store call alone, with the key already made: what `limits.hit` does."""
    store = MemoryRateLimitStore()
    limit = RateLimit(MAX_REQUESTS, 60)
    keys = [f"ip:{ip}" for ip in addresses]
    count = len(keys)

    async def run(checks: int) -> float:
        acquire = store.acquire
        start = time.perf_counter()
        for i in range(checks):
            await acquire("api", keys[i % count], limit, 1)
        return time.perf_counter() - start

    return run


def limits_moving_window(addresses: list[str]) -> Run:
    limiter = MovingWindowRateLimiter(MemoryStorage())
    item = RateLimitItemPerMinute(MAX_REQUESTS)
    keys = [f"ip:{ip}" for ip in addresses]
    count = len(keys)

    async def run(checks: int) -> float:
        hit = limiter.hit
        start = time.perf_counter()
        for i in range(checks):
            await hit(item, keys[i % count])
        return time.perf_counter() - start

    return run


def ours_object_store_memory(addresses: list[str]) -> Run:
    """For scale: the shared store over obstore's memory:// (no network at all)."""
    store = ObjectStoreRateLimitStore(ObjectStore.from_url("memory://"))
    limit = RateLimit(MAX_REQUESTS, 60)
    keys = [f"ip:{ip}" for ip in addresses]
    count = len(keys)

    async def run(checks: int) -> float:
        start = time.perf_counter()
        for i in range(checks):
            await store.acquire("api", keys[i % count], limit, 1)
        return time.perf_counter() - start

    return run


async def best_rates(
    runs: dict[str, Run], checks: dict[str, int], repeats: int
) -> dict[str, float]:
    """Checks per second, best of `repeats`, the contenders taking turns."""
    best = dict.fromkeys(runs, 0.0)
    for _ in range(repeats):
        for name, run in runs.items():
            gc.collect()
            elapsed = await run(checks[name])
            best[name] = max(best[name], checks[name] / elapsed)
    return best


def memory_of_keys(key_count: int, max_keys: int) -> tuple[float, int]:
    """MB of Python allocations held by a store after `key_count` distinct keys (the key
    strings included: a store holds the keys it is given)."""
    limit = RateLimit(MAX_REQUESTS, 60)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    store = MemoryRateLimitStore(max_keys=max_keys)
    for i in range(key_count):
        store.check("api", f"ip:10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", limit, 1)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return held / 1e6, len(store)


async def throughput(checks: int, repeats: int) -> bool:
    ok = True
    for scenario, addresses in (
        ("10,000 clients, mostly admitted", client_addresses(10_000)),
        ("one client, mostly refused", client_addresses(1)),
    ):
        runs = {
            "s3auth RateLimiter.is_rate_limited (scope → IP → GCRA)": ours_via_limiter(addresses),
            "s3auth MemoryRateLimitStore.acquire (GCRA)": ours_store_only(addresses),
            "limits MovingWindowRateLimiter.hit (aio MemoryStorage)": limits_moving_window(
                addresses
            ),
            "s3auth ObjectStoreRateLimitStore on mem:// (for scale)": ours_object_store_memory(
                addresses
            ),
        }
        sizes = dict.fromkeys(runs, checks)
        sizes[next(name for name in runs if name.startswith("s3auth ObjectStore"))] = checks // 100
        rates = await best_rates(runs, sizes, repeats)
        print(f"\n{scenario} ({MAX_REQUESTS}/60 s per client), best of {repeats}:")
        for name, rate in rates.items():
            print(f"  {name:<58} {rate:>12,.0f} checks/s")
        names = list(rates)
        limiter_rate, store_rate, limits_rate = (rates[n] for n in names[:3])
        print(f"  ratio, RateLimiter vs limits:  {limiter_rate / limits_rate:5.2f}x")
        print(f"  ratio, store vs limits.hit:    {store_rate / limits_rate:5.2f}x")
        ok &= limiter_rate >= TARGET_CHECKS_PER_SECOND
        ok &= limiter_rate >= TARGET_RATIO * limits_rate
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keys", type=int, default=1_000_000)
    args = parser.parse_args(argv)

    print(
        f"Python {sys.version.split()[0]}; targets: RateLimiter >= "
        f"{TARGET_CHECKS_PER_SECOND:,} checks/s and >= {TARGET_RATIO}x limits"
    )
    ok = asyncio.run(throughput(args.checks, args.repeats))

    print(f"\nMemory for {args.keys:,} distinct keys:")
    megabytes, held = memory_of_keys(args.keys, max_keys=args.keys)
    print(f"  max_keys={args.keys:<10,} holds {held:>9,} keys in {megabytes:7.1f} MB")
    ok &= held == args.keys and megabytes <= TARGET_MEMORY_MB
    bounded_mb, bounded_held = memory_of_keys(args.keys, max_keys=100_000)
    print(
        f"  max_keys={100_000:<10,} holds {bounded_held:>9,} keys in {bounded_mb:7.1f} MB "
        "(the default: the rest were evicted)"
    )
    ok &= bounded_held <= 100_000

    print("\nall targets met" if ok else "\nSOME TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
