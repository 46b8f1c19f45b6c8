"""The object-store limiter: store requests per answer, and what a refusal costs while the
client's retry time has not passed.

    python -m benchmarks.bench_ratelimit_store [--smoke]

One client over "login" (5 a minute) on memory:// and file://: the requests of an admission,
of the first refusal (it reads the state) and of every refusal after it until the retry
time (answered from the process's memory of the refusal); then the CPU of a refusal
answered from memory against one that reads the store, interleaved.
"""

from __future__ import annotations

import asyncio
import tempfile

from benchmarks.harness import Bench, Runner, at_most, interleave, standalone
from s3auth_asgi.ratelimit import ObjectStoreRateLimitStore, RateLimit
from s3auth_asgi.ratelimit.refusal_memo import RefusalMemo
from s3auth_asgi.storage import ObjectStore

TITLE = "Object-store limiter: store requests per answer"
LIMIT = RateLimit(max_requests=5, window_seconds=60)


class FrozenClock:
    """Time stands still: the client stays refused for the whole measurement."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def counts(url: str) -> dict[str, int]:
    clock, store = FrozenClock(), ObjectStore.from_url(url)
    limiter = ObjectStoreRateLimitStore(store, clock=clock)
    most = 0
    for _ in range(LIMIT.max_requests):
        store.reset_counts()
        assert (await limiter.acquire("login", "ip:203.0.113.7", LIMIT, 1)).allowed
        most = max(most, sum(store.requests.values()))
    store.reset_counts()
    assert not (await limiter.acquire("login", "ip:203.0.113.7", LIMIT, 1)).allowed
    first = sum(store.requests.values())
    store.reset_counts()
    for _ in range(100):
        assert not (await limiter.acquire("login", "ip:203.0.113.7", LIMIT, 1)).allowed
    return {"admission": most, "first": first, "later": sum(store.requests.values())}


def run(bench: Bench) -> None:
    section = bench.section(
        "ratelimit_store",
        "Object-store limiter: store requests per answer",
        "exact request counts of one client over a limit of 5 a minute, the clock stopped "
        "inside its retry time; CPU µs per refusal, interleaved rounds",
    )
    with tempfile.TemporaryDirectory() as tmp:
        for label, url in (("memory://", "memory://"), ("file://", f"file://{tmp}")):
            found = asyncio.run(counts(url))
            section.row(f"{label} admission: requests", found["admission"], "req", at_most(2))
            section.row(f"{label} first refusal: requests", found["first"], "req")
            section.row(
                f"{label} refusal before the retry time: requests per refusal",
                found["later"] / 100,
                "req",
                at_most(0),
            )
    clock = FrozenClock()
    remembered = ObjectStoreRateLimitStore(ObjectStore.from_url("memory://"), clock=clock)
    forgetful_store = ObjectStore.from_url("memory://")
    forgetful = ObjectStoreRateLimitStore(forgetful_store, clock=clock)

    def refusals(limiter: ObjectStoreRateLimitStore, forget: bool) -> Runner:
        async def run(n: int) -> None:
            for _ in range(n):
                if forget:  # a refusal that reads the store, as every one did before
                    limiter._refused = RefusalMemo()
                await limiter.acquire("login", "ip:203.0.113.7", LIMIT, 1)

        return run

    async def spend(limiter: ObjectStoreRateLimitStore) -> None:
        for _ in range(LIMIT.max_requests + 1):
            await limiter.acquire("login", "ip:203.0.113.7", LIMIT, 1)

    samples = interleave(
        {"remembered": refusals(remembered, False), "read": refusals(forgetful, True)},
        rounds=bench.rounds(),
        batch=bench.size(2_000, smoke=20),
        prepare={"remembered": lambda: spend(remembered), "read": lambda: spend(forgetful)},
    )
    section.row("refusal from memory, CPU", samples.stats("remembered", 1e-3), "µs")
    section.row("refusal reading memory:// (no memo), CPU", samples.stats("read", 1e-3), "µs")


def main() -> int:
    return standalone(run)


if __name__ == "__main__":
    raise SystemExit(main())
