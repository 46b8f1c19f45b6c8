"""Several instances of the object-store limiter on one store, each with its own memory of
refusals, checking one key at once: together they admit no more than GCRA admits one
client, and every admission is in the stored state (none lost to a race it lost)."""

from __future__ import annotations

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st

from s3auth_asgi.ratelimit import ObjectStoreRateLimitStore, RateLimit
from s3auth_asgi.ratelimit.gcra import TOLERANCE
from s3auth_asgi.ratelimit.stores import BucketState
from s3auth_asgi.storage import ObjectStore, keys

LIMIT = RateLimit(max_requests=4, window_seconds=8)  # one more every 2 s
START = 1_800_000_000.0

checks = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=1, max_size=6)
"""A round: (instance, cost) of each check made at once."""


async def check(instance: ObjectStoreRateLimitStore, cost: int, admitted: list[int]) -> None:
    decision = await instance.acquire("api", "k", LIMIT, cost)
    if decision.allowed:
        admitted.append(cost)


@settings(max_examples=40, deadline=None)
@given(rounds=st.lists(st.tuples(checks, st.sampled_from([0.0, 0.5, 1.0, 2.0, 5.0])), max_size=8))
def test_instances_together_admit_what_one_client_may(
    rounds: list[tuple[list[tuple[int, int]], float]],
) -> None:
    async def scenario() -> None:
        now = [START]
        store = ObjectStore.from_url("memory://")
        instances = [
            ObjectStoreRateLimitStore(store, clock=lambda: now[0], max_attempts=50)
            for _ in range(3)
        ]
        interval = LIMIT.emission_interval
        tat = START  # what the state must be: every admission counted, at the clock's time
        admitted_total = 0
        for round_checks, wait in rounds:
            admitted: list[int] = []

            async with anyio.create_task_group() as tasks:
                for who, cost in round_checks:
                    tasks.start_soon(check, instances[who], cost, admitted)
            admitted_total += sum(admitted)
            # Within a round the clock stands still: whatever order the writes won in, the
            # state is the TAT before it, or now, plus every cost admitted.
            if sum(admitted):
                tat = max(tat, now[0]) + sum(admitted) * interval
            assert tat <= now[0] + LIMIT.window_seconds + TOLERANCE
            # The GCRA bound over the whole run: the burst, and one more per interval.
            assert admitted_total <= LIMIT.max_requests + (now[0] - START) / interval
            stored = await store.get(keys.ratelimit("api", "k"), BucketState)
            if admitted_total:
                assert stored is not None and stored.value.tat == tat
            now[0] += wait

    anyio.run(scenario)
