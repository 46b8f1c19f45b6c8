"""Where limiter state lives: the bounded in-memory store, and the object-store store shared
by several limiters (and processes) over memory://, file:// and a real S3 endpoint."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import TypeVar

import anyio
import pytest
from support import StoreWrapper

from s3auth_asgi.errors import ConfigurationError
from s3auth_asgi.ratelimit import (
    MemoryRateLimitStore,
    ObjectStoreRateLimitStore,
    RateLimit,
    RateLimiter,
    RateLimitStore,
)
from s3auth_asgi.ratelimit.stores import BucketState
from s3auth_asgi.storage import ObjectInfo, ObjectStore, Store, Versioned, keys

pytestmark = pytest.mark.anyio

LOGIN = RateLimit(max_requests=5, window_seconds=60)
T = TypeVar("T")


def client(ip: str = "203.0.113.5") -> dict[str, object]:
    return {"type": "http", "method": "POST", "path": "/login", "headers": [], "client": (ip, 1)}


def shared_limiter(store: ObjectStore) -> RateLimiter:
    return RateLimiter(limits={"login": LOGIN}, store=ObjectStoreRateLimitStore(store))


def open_twice(store_url: str) -> tuple[ObjectStore, ObjectStore]:
    """Two independent handles on one store (memory:// is per object, so it is shared)."""
    if store_url == "memory://":
        store = ObjectStore.from_url(store_url)
        return store, store
    return ObjectStore.from_url(store_url), ObjectStore.from_url(store_url)


def test_both_stores_satisfy_the_protocol() -> None:
    assert isinstance(MemoryRateLimitStore(), RateLimitStore)
    assert isinstance(ObjectStoreRateLimitStore(ObjectStore.from_url("memory://")), RateLimitStore)
    assert not isinstance(object(), RateLimitStore)


async def test_two_limiters_on_one_store_admit_no_more_than_the_limit(store_url: str) -> None:
    first_store, second_store = open_twice(store_url)
    first, second = shared_limiter(first_store), shared_limiter(second_store)
    answers = []
    for i in range(10):
        limiter = first if i % 2 == 0 else second
        is_limited, info = await limiter.is_rate_limited(client(), "login")
        answers.append((is_limited, info.remaining))
    assert answers == [(False, 4), (False, 3), (False, 2), (False, 1), (False, 0)] + [(True, 0)] * 5
    # Another client is counted apart, through either limiter.
    assert not (await second.is_rate_limited(client("198.51.100.1"), "login"))[0]


async def test_concurrent_limiters_admit_no_more_than_the_limit(store_url: str) -> None:
    first_store, second_store = open_twice(store_url)
    limiters = [shared_limiter(first_store), shared_limiter(second_store)]
    admitted = 0

    async def attempt(limiter: RateLimiter) -> None:
        nonlocal admitted
        is_limited, _ = await limiter.is_rate_limited(client(), "login")
        admitted += not is_limited

    async with anyio.create_task_group() as tasks:
        for i in range(12):
            tasks.start_soon(attempt, limiters[i % 2])
    # Lost races are retried; a key under a storm may be refused rather than over-admitted.
    assert 1 <= admitted <= LOGIN.max_requests
    _, info = await limiters[0].is_rate_limited(client(), "login", cost=0)
    assert info.remaining == LOGIN.max_requests - admitted


async def test_a_cost_above_the_limit_is_refused_before_any_request(store_url: str) -> None:
    store = ObjectStore.from_url(store_url)
    shared = ObjectStoreRateLimitStore(store)
    store.reset_counts()
    for cost in (6, -1):
        with pytest.raises(ConfigurationError, match=f"cost must be between 0 and 5, got {cost}"):
            await shared.acquire("login", "k", LOGIN, cost)
    assert dict(store.requests) == {}
    assert (await shared.acquire("login", "k", LOGIN, 5)).allowed


async def test_a_limit_name_no_limiter_accepts_is_refused_before_any_request(
    store_url: str,
) -> None:
    # A name with a "/" would store `ratelimit/api/v1/{digest}`, a key no limit's state
    # has: the sweep would never delete it. One of dots alone, `ratelimit/../{digest}`, is
    # a key no store takes.
    store = ObjectStore.from_url(store_url)
    shared = ObjectStoreRateLimitStore(store)
    store.reset_counts()
    for name in ("api/v1", "", "x" * 65, "log in", ".", ".."):
        with pytest.raises(ConfigurationError, match=f"limit name {name!r} must be 1-64"):
            await shared.acquire(name, "k", LOGIN, 1)
    assert dict(store.requests) == {}
    assert [info async for info in store.list(keys.RATELIMIT)] == []
    assert (await shared.acquire("x" * 64, "k", LOGIN, 1)).allowed


async def test_one_check_costs_one_get_and_one_conditional_put(store_url: str) -> None:
    store = ObjectStore.from_url(store_url)
    limiter = shared_limiter(store)
    store.reset_counts()
    await limiter.is_rate_limited(client(), "login")  # new key: GET (missing) + create
    assert dict(store.requests) == {"get": 1, "put": 1}
    store.reset_counts()
    await limiter.is_rate_limited(client(), "login")  # existing key: GET + If-Match PUT
    assert dict(store.requests) == {"get": 1, "put": 1}
    for _ in range(3):
        await limiter.is_rate_limited(client(), "login")
    store.reset_counts()
    is_limited, _ = await limiter.is_rate_limited(client(), "login")
    assert is_limited
    assert dict(store.requests) == {"get": 1}  # a refusal writes nothing


@pytest.mark.parametrize("store_url", ["memory", "file"], indirect=True)
async def test_an_even_check_costs_a_get_and_a_put_whatever_it_decides(store_url: str) -> None:
    """`acquire_evenly`: what it decides tells nothing by its requests. A refusal and a
    check of cost 0 write the state back as it was (a full allowance for a key never
    seen), so they count nothing; and no refusal is answered from memory."""
    store = ObjectStore.from_url(store_url)
    now = 1_780_000_000.0
    limit_store = ObjectStoreRateLimitStore(store, clock=lambda: now)
    limit = RateLimit(max_requests=2, window_seconds=60)
    decisions = []
    for cost in (0, 1, 1, 1, 1, 0):
        store.reset_counts()
        decisions.append(await limit_store.acquire_evenly("mail", "k", limit, cost))
        assert dict(store.requests) == {"get": 1, "put": 1}
    assert [(d.allowed, d.remaining) for d in decisions] == [
        (True, 2),
        (True, 1),
        (True, 0),
        (False, 0),
        (False, 0),
        (True, 0),
    ]
    assert decisions[3].retry_after == decisions[4].retry_after == 30
    stored = await store.get(keys.ratelimit("mail", "k"), BucketState)
    assert stored is not None and stored.value.tat == now + 60  # the two admissions only
    # The ordinary check agrees, and its refusals cost a GET, then nothing.
    store.reset_counts()
    assert not (await limit_store.acquire("mail", "k", limit, 1)).allowed
    assert not (await limit_store.acquire("mail", "k", limit, 1)).allowed
    assert dict(store.requests) == {"get": 1}
    now += 30
    assert (await limit_store.acquire_evenly("mail", "k", limit, 1)).allowed
    # Through a limiter: `evenly` asks the store for it; a store of memory makes no request.
    limits = {"login": LOGIN}
    limiter = RateLimiter(limits=limits, stores={"login": limit_store})
    for _ in range(LOGIN.max_requests):
        await limiter.is_rate_limited(client(), "login", evenly=True)
    store.reset_counts()
    for _ in range(2):
        limited, _ = await limiter.is_rate_limited(client(), "login", evenly=True)
        assert limited
    assert dict(store.requests) == {"get": 2, "put": 2}
    in_memory = RateLimiter(limits=limits)
    assert not (await in_memory.is_rate_limited(client(), "login", cost=0, evenly=True))[0]


async def test_state_is_one_object_per_key_under_the_ratelimit_prefix(store_url: str) -> None:
    store = ObjectStore.from_url(store_url)
    limiter = shared_limiter(store)
    await limiter.is_rate_limited(client("203.0.113.5"), "login")
    await limiter.is_rate_limited(client("203.0.113.6"), "login")
    await limiter.is_rate_limited(client("203.0.113.6"), "login")
    listed = sorted([info.key async for info in store.list(keys.RATELIMIT)])
    assert listed == sorted(
        [keys.ratelimit("login", "ip:203.0.113.5"), keys.ratelimit("login", "ip:203.0.113.6")]
    )
    assert "203.0.113" not in "".join(listed)  # a listing shows no addresses


class RacingStore(StoreWrapper):
    """Runs `race` once, right after the next GET has read the object."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.race: Callable[[], Awaitable[object]] | None = None

    async def get(self, key: str, type_: type[T]) -> Versioned[T] | None:
        current = await self.inner.get(key, type_)
        race, self.race = self.race, None
        if race is not None:
            await race()
        return current


async def test_a_write_racing_ours_is_retried_not_lost(store_url: str) -> None:
    """Another process writes between our GET and PUT: our PUT loses, we re-read and count
    on top of its state, so neither admission is lost."""
    ours, theirs = open_twice(store_url)
    clock_now = 1_780_000_000.0
    racing = RacingStore(ours)
    limit_store = ObjectStoreRateLimitStore(racing, clock=lambda: clock_now)
    other = ObjectStoreRateLimitStore(theirs, clock=lambda: clock_now)
    await limit_store.acquire("login", "k", LOGIN, 1)
    racing.race = lambda: other.acquire("login", "k", LOGIN, 1)
    decision = await limit_store.acquire("login", "k", LOGIN, 1)
    assert racing.race is None  # the other write did come between our GET and PUT
    assert decision.allowed and decision.remaining == 2  # 3 of 5 counted: nothing lost
    # Ours: the first create, the If-Match PUT that lost, the retry (+ theirs when shared).
    assert ours.requests["put"] == (4 if ours is theirs else 3)


async def test_delete_expired_removes_only_full_allowances(store_url: str) -> None:
    store = ObjectStore.from_url(store_url)
    limits = {"login": LOGIN, "register": RateLimit(max_requests=3, window_seconds=3600)}
    limiter = RateLimiter(limits=limits, store=ObjectStoreRateLimitStore(store))
    await limiter.is_rate_limited(client(), "login")
    await limiter.is_rate_limited(client(), "register")
    cleaner = ObjectStoreRateLimitStore(store)
    assert await cleaner.delete_expired(limits) == 0
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120)
    assert await cleaner.delete_expired(limits, now=later) == 1
    remaining = [info.key async for info in store.list(keys.RATELIMIT)]
    assert remaining == [keys.ratelimit("register", "ip:203.0.113.5")]
    # Without `now`, the store's own clock decides, as it does for every check.
    hours_later = ObjectStoreRateLimitStore(store, clock=lambda: time.time() + 7200)
    assert await hours_later.delete_expired(limits) == 1


async def test_object_store_limits_across_processes(tmp_path: Path) -> None:
    """Three processes on one file:// store: five admissions in total, not five each."""
    url = f"file://{tmp_path / 'store'}"
    script = textwrap.dedent(
        f"""
        import anyio
        from s3auth_asgi.ratelimit import ObjectStoreRateLimitStore, RateLimit, RateLimiter
        from s3auth_asgi.storage import ObjectStore

        async def main():
            limiter = RateLimiter(
                limits={{"login": RateLimit(max_requests=5, window_seconds=60)}},
                store=ObjectStoreRateLimitStore(ObjectStore.from_url({url!r})),
            )
            scope = {{"type": "http", "client": ("203.0.113.5", 1), "headers": []}}
            admitted = 0
            for _ in range(4):
                is_limited, _ = await limiter.is_rate_limited(scope, "login")
                admitted += not is_limited
            print(admitted)

        anyio.run(main)
        """
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    counts = [int(process.communicate(timeout=60)[0]) for process in processes]
    assert sum(counts) == 5, counts


def test_memory_store_is_bounded() -> None:
    store = MemoryRateLimitStore(max_keys=1000)
    limit = RateLimit(max_requests=1, window_seconds=60)
    for i in range(50_000):
        store.check("api", f"ip:{i}", limit, 1)
        assert len(store) <= 1000
    assert len(store) >= 1000 - 1000 // 16


def test_memory_store_evicts_the_least_recently_used() -> None:
    now = [0.0]
    store = MemoryRateLimitStore(max_keys=100, clock=lambda: now[0])
    limit = RateLimit(max_requests=1, window_seconds=60)
    assert store.check("api", "attacker", limit, 1).allowed
    for i in range(1000):
        store.check("api", f"flood-{i}", limit, 1)
        # The attacker keeps trying, so it stays recently used and stays limited.
        assert not store.check("api", "attacker", limit, 1).allowed
    # A key not seen since the flood began is long gone: it starts afresh.
    assert store.check("api", "flood-0", limit, 1).allowed


def test_memory_store_keeps_limits_apart() -> None:
    store = MemoryRateLimitStore()
    limit = RateLimit(max_requests=1, window_seconds=60)
    assert store.check("login", "ip:1.2.3.4", limit, 1).allowed
    assert store.check("api", "ip:1.2.3.4", limit, 1).allowed
    assert not store.check("login", "ip:1.2.3.4", limit, 1).allowed


async def test_delete_expired_deletes_each_page_as_it_is_listed() -> None:
    # A store has no conditional DELETE: the longer between listing a state and deleting
    # it, the likelier a client's new state is deleted with it. Each page goes at once.
    store = ObjectStore.from_url("memory://")
    limits = {"login": LOGIN}
    limiter = RateLimiter(limits=limits, store=ObjectStoreRateLimitStore(store))
    for i in range(1500):
        scope = {"type": "http", "client": (f"10.0.{i >> 8}.{i & 255}", 1), "headers": []}
        await limiter.is_rate_limited(scope, "login")
    order: list[str] = []

    class Watched(StoreWrapper):
        async def delete_many(self, batch: Iterable[str]) -> int:
            keys_ = list(batch)
            order.append(f"delete {len(keys_)}")
            return await self.inner.delete_many(keys_)

        async def list(self, prefix: str, offset: str | None = None) -> AsyncIterator[ObjectInfo]:
            async for info in self.inner.list(prefix, offset):
                order.append("listed")
                yield info

    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120)
    cleaner = ObjectStoreRateLimitStore(Watched(store))
    assert await cleaner.delete_expired(limits, now=later) == 1500
    # The first thousand go before the last five hundred are listed.
    assert order.index("delete 1000") == 1000 and order[-1] == "delete 500"
    assert [info async for info in store.list(keys.RATELIMIT)] == []
