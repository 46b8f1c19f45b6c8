"""Revocation sync cost against the size of the history, on the embedded `file://` store.

A process that knows 100,000 revocations (all still live, written between 25 minutes and
one minute ago) syncs every few seconds. A sync also lists again what was written in the
overlap (one and a half times the skew allowance, 15 s by default), which is a matter of
the recent rate, not of the history: that is why the history ends a minute ago. Measured,
medians over the rounds:

- the first sync of a process (the full load, done at lifespan startup);
- a sync that finds nothing new, and one that finds 10 new entries: CPU time (every
  thread, so the store library's work counts) and the longest the event loop was held;
- beside them, listing the same directory with obstore's own local listing and an offset,
  which is what a sync cost before revocation keys were sharded (the peer).

Targets: a sync with nothing new costs <= 1 ms CPU and holds the loop <= 2 ms.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import obstore as obs

from benchmarks.harness import Bench, Stats, at_most, standalone
from s3auth_asgi import TokenBlacklist
from s3auth_asgi.storage import ObjectStore, keys

TITLE = "Revocation sync cost against a history of 100,000 revocations"

HISTORY = 100_000
WINDOW_S = 24 * 60
QUIET_S = 60
LOOKBACK_S = 30 * 60 + 60


def write_history(root: Path, now: float, count: int) -> None:
    """`count` live session revocations, evenly over the window, written as files (the
    layout `keys` gives them), which is what the store would hold after as many logouts."""
    start_ms = int((now - QUIET_S - WINDOW_S) * 1000)
    step = WINDOW_S * 1000 // count
    expires = int(now) + LOOKBACK_S
    for i in range(count):
        key = keys.revocation(start_ms + i * step, "session", expires, f"s{i:07d}")
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"{}")


async def measure(work: Callable[[], Awaitable[object]]) -> tuple[float, float, float]:
    """(wall s, CPU s, longest loop hold s) of `work`: CPU from a run on its own, the hold
    from a second run beside a ticker that notes the longest gap between its turns (the
    ticker's own spinning would count as CPU, so it is not there for the first run)."""
    wall, cpu = time.perf_counter(), time.process_time()
    await work()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    longest = 0.0
    running = True

    async def ticker() -> None:
        nonlocal longest
        last = time.perf_counter()
        while running:
            await asyncio.sleep(0)
            now = time.perf_counter()
            longest = max(longest, now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    await work()
    running = False
    await task
    return wall, cpu, longest


async def measure_all(rounds: int, history: int) -> dict[str, list[tuple[float, float, float]]]:
    results: dict[str, list[tuple[float, float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        now = time.time()
        write_history(root, now, history)
        store = ObjectStore.from_url(f"file://{root}")
        blacklist = TokenBlacklist(store, lookback_seconds=LOOKBACK_S, sync_seconds=5.0)
        started = time.perf_counter(), time.process_time()
        await blacklist.sync()
        first = (time.perf_counter() - started[0], time.process_time() - started[1], 0.0)
        results["first sync (full load)"] = [first]
        assert len(blacklist.snapshot) == history, len(blacklist.snapshot)
        inner = obs.store.LocalStore(root)
        offset = keys.revocation_offset(int((time.time() - 10) * 1000))

        async def obstore_listing() -> None:
            async for _ in obs.list(inner, prefix=keys.REVOCATIONS, offset=offset):
                pass

        for _ in range(rounds):
            results.setdefault("sync, nothing new", []).append(await measure(blacklist.sync))
        # Then another process writes; what it wrote within the overlap is listed again
        # by every later sync, so these rounds come after the ones above.
        writer = TokenBlacklist(store, lookback_seconds=LOOKBACK_S)
        for _ in range(rounds):
            for i in range(10):
                await writer.revoke_session(f"new-{time.time_ns()}-{i}")
            wall, cpu = time.perf_counter(), time.process_time()
            await blacklist.sync()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            results.setdefault("sync, 10 new (no hold measured)", []).append((wall, cpu, 0.0))
        for _ in range(rounds):
            results.setdefault("peer: obstore local listing, offset", []).append(
                await measure(obstore_listing)
            )
    return results


def run(bench: Bench) -> None:
    history = bench.size(HISTORY, smoke=300)
    rounds = bench.rounds(15, smoke=2)
    results = asyncio.run(measure_all(rounds, history))
    section = bench.section(
        "revocation_sync",
        f"Revocation sync with {history:,} live revocations on file://",
        "CPU ms of this process (every thread) per sync and the longest the event loop was "
        "held, medians over rounds; the peer lists the same directory with obstore's local "
        "listing and an offset, what a sync cost before revocation keys were sharded",
    )

    def stats(name: str, index: int) -> Stats:
        return Stats.of(sample[index] * 1000 for sample in results[name])

    section.row("first sync (full load), wall", stats("first sync (full load)", 0), "ms")
    section.row("sync, nothing new: CPU", stats("sync, nothing new", 1), "ms", at_most(1.0))
    section.row("sync, nothing new: loop held", stats("sync, nothing new", 2), "ms", at_most(2.0))
    section.row("sync, 10 new: CPU", stats("sync, 10 new (no hold measured)", 1), "ms")
    peer = stats("peer: obstore local listing, offset", 1)
    section.row("peer: obstore local listing with offset, CPU", peer, "ms")
    ours = stats("sync, nothing new", 1).median
    section.row("peer / ours, CPU of a sync with nothing new", peer.median / max(ours, 1e-9), "x")


def main() -> int:
    return standalone(run)


if __name__ == "__main__":
    raise SystemExit(main())
