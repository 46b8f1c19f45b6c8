"""What a process does between two awaits holds every request it serves: CPU work of one
request or of start-up must not stop the others for long. A probe task wakes at every turn
of the event loop and records the longest gap between two wake-ups; a test compares it
with the time the work took in all, so that a loaded machine, slowing both, changes
nothing. A gap also holds whatever time the machine gave other processes, which no ratio
absorbs: such a test allows a hold of half the work, where the work on the loop holds it
all, and tries again before it fails. Where the hold has a cause that can be counted (the
tasks started at once), the count is asserted instead.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import pytest
from support import Clock, make_clocked_service

from s3auth_asgi.identifiers import new_id
from s3auth_asgi.storage import ObjectInfo, ObjectStore, Versioned
from s3auth_asgi.storage.access import READ_CONCURRENCY, gather, get_or_none
from s3auth_asgi.storage.key_rules import ForeignKeys

pytestmark = pytest.mark.anyio

T = TypeVar("T")


async def longest_hold(work: Callable[[], Awaitable[T]]) -> tuple[float, float, T]:
    """(longest gap between two turns of the loop, total time, result) of `work`."""
    gaps = [0.0]
    done = anyio.Event()

    async def probe() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await anyio.lowlevel.checkpoint()
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    async with anyio.create_task_group() as tg:
        tg.start_soon(probe)
        await anyio.lowlevel.checkpoint()
        start = time.perf_counter()
        result = await work()
        total = time.perf_counter() - start
        done.set()
    return max(gaps), total, result


async def test_a_first_start_makes_its_rsa_key_off_the_event_loop() -> None:
    # An RSA 3072 key takes 0.05-1 s to make: on the loop, every request of the process
    # would wait for it, a hold of nearly all the work; off it, a few ms of it.
    tries = []
    for _ in range(3):
        service = make_clocked_service(clock=Clock(), algorithm="RS256")
        held, total, key = await longest_hold(service.tokens.signing_key)
        assert key.algorithm == "RS256"
        tries.append((held, total))
        if held < total / 2:
            return
    raise AssertionError(f"the loop was held for most of the key's making: {tries}")


async def test_a_sync_of_unchanged_stored_keys_opens_none_of_them_again() -> None:
    # Opening an RSA 3072 private key checks it for 90-130 ms without letting go of the
    # interpreter: done at every sync, a worker thread would not help. A key is opened once
    # per process, when first read; then only its record is compared.
    store = ObjectStore.from_url("memory://")
    clock = Clock()
    first = make_clocked_service(store=store, clock=clock, algorithm="ES256")
    made = await first.tokens.signing_key()
    other = make_clocked_service(store=store, clock=clock, algorithm="ES256")
    read = await other.tokens.signing_key()
    assert read.kid == made.kid
    for service, key in ((first, made), (other, read)):
        ring = service.tokens.ring
        assert ring is not None
        await ring.sync()
        assert (await service.tokens.signing_key()).key is key.key


async def test_reading_many_objects_at_once_starts_a_task_per_concurrent_read() -> None:
    # A user's sessions past a cap of thousands, an admin's page of 1,000 users, the
    # logouts everywhere of a first revocation sync: each read of the batch waits its turn
    # among READ_CONCURRENCY. A task per read, all started in one turn of the loop, held it
    # 50-250 ms at 2,000 reads; the tasks are counted, since a hold measured here is about
    # a fifth of the work either way (the reads themselves are short).
    store = ObjectStore.from_url("memory://")
    names = [f"missing/{i:05d}" for i in range(4000)]
    running = 0
    most = 0

    async def read(key: str) -> Versioned[dict[str, Any]] | None:
        nonlocal running, most
        running += 1
        most = max(most, len(asyncio.all_tasks()))
        try:
            return await get_or_none(store, key, dict[str, Any])
        finally:
            running -= 1

    baseline = len(asyncio.all_tasks())
    found = await gather([read(key) for key in names])
    assert found == [None] * len(names)
    assert most <= baseline + READ_CONCURRENCY  # the readers


def test_a_page_of_a_listing_is_judged_in_about_the_time_it_takes_to_read() -> None:
    # A listing judges every key it gives (`key_rules`), a page of 1,000 between two turns
    # of the loop: a sweep or a first revocation sync lists hundreds of pages. Judging a
    # page costs little beside making the page's ObjectInfos (what a listing cannot skip);
    # a check of each character in Python cost ten times that, 8 ms a page.
    now = dt.datetime.now(dt.UTC)
    page = [
        {"path": f"sessions/{new_id()}/{new_id()}.json", "last_modified": now, "size": 2}
        for _ in range(1000)
    ]
    foreign = ForeignKeys()

    def fastest(work: Callable[[], object]) -> float:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            work()
            times.append(time.perf_counter() - start)
        return min(times)

    made = fastest(lambda: [ObjectInfo(m["path"], m["last_modified"], m["size"]) for m in page])
    judged = fastest(lambda: [foreign.left_out(m["path"]) for m in page])
    assert not any(foreign.left_out(m["path"]) for m in page)
    assert judged < 5 * made, (judged, made)
