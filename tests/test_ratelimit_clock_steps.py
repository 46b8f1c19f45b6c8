"""A process whose wall clock is stepped back (NTP correcting a host that booted ahead) after
it remembered refusals: what it answers from memory is what the store would answer, never a
wait of the step's length.

The object-store limiter remembers a refusal with the time it was decided on, and answers
the key from memory until that time would admit. Read from the store, a time more than a
window and the skew allowance ahead of the clock counts as a full debt as of the clock
(`plausible`); remembered, it must count no more.
"""

from __future__ import annotations

import pytest
import support
from test_app import client_for, register
from test_login_account_budget import BudgetWritesFail
from test_login_burst import WRONG, gated_service

from s3auth_asgi.app import create_auth_app
from s3auth_asgi.ratelimit import FailureBudget, ObjectStoreRateLimitStore, RateLimit
from s3auth_asgi.storage import ObjectStore

SKEW = 10  # the default allowance
HOUR = 3600.0
LOGIN = RateLimit(max_requests=5, window_seconds=900)  # one more every 180 s
INTERVAL = LOGIN.emission_interval
BUDGET = FailureBudget("login.account", {"login_account": LOGIN})


@pytest.mark.parametrize("store_url", ["memory", "file", "seaweedfs", "azure"], indirect=True)
@pytest.mark.anyio
async def test_a_refusal_remembered_before_the_clock_went_back_is_read_again(
    store_url: str,
) -> None:
    clock, store = support.Clock(), ObjectStore.from_url(store_url)
    limiter = ObjectStoreRateLimitStore(store, clock=clock)
    for _ in range(LOGIN.max_requests):
        assert (await limiter.acquire("login", "alice", LOGIN, 1)).allowed
    assert not (await limiter.acquire("login", "alice", LOGIN, 1)).allowed  # remembered
    clock.advance(-HOUR)
    store.reset_counts()
    decision = await limiter.acquire("login", "alice", LOGIN, 1)
    # Read again: a full debt as of the clock, written back, as any reader is told.
    assert not decision.allowed and decision.retry_after == pytest.approx(INTERVAL)
    assert dict(store.requests) == {"get": 1, "put": 1}
    store.reset_counts()
    fresh = await ObjectStoreRateLimitStore(store, clock=clock).acquire("login", "alice", LOGIN, 1)
    assert fresh.retry_after == pytest.approx(decision.retry_after)
    assert dict(store.requests) == {"get": 1}
    clock.advance(INTERVAL)
    assert (await limiter.acquire("login", "alice", LOGIN, 1)).allowed


@pytest.mark.parametrize("store_url", ["memory", "file"], indirect=True)
@pytest.mark.anyio
async def test_a_budget_refusal_remembered_before_the_clock_went_back_is_read_again(
    store_url: str,
) -> None:
    clock, store = support.Clock(), ObjectStore.from_url(store_url)
    limiter = ObjectStoreRateLimitStore(store, clock=clock)
    for _ in range(LOGIN.max_requests):
        assert (await limiter.record(await limiter.peek(BUDGET, "alice"))).allowed
    assert not (await limiter.peek(BUDGET, "alice")).allowed  # remembered
    clock.advance(-HOUR)
    store.reset_counts()
    reading = await limiter.peek(BUDGET, "alice")
    assert not reading.allowed
    assert reading.decisions[0].retry_after == pytest.approx(INTERVAL)
    assert dict(store.requests) == {"get": 1, "put": 1}
    clock.advance(INTERVAL)
    assert (await limiter.record(await limiter.peek(BUDGET, "alice"))).allowed


@pytest.mark.anyio
async def test_an_account_held_after_a_lost_charge_is_held_no_longer_for_a_clock_step() -> None:
    """A wrong password whose charge the store failed (503) holds the account in this
    process for the budget's interval; a clock stepped back an hour meanwhile must not hold
    it an hour more, nor tell the client to come back in an hour."""
    clock = support.Clock()
    store = BudgetWritesFail(ObjectStore.from_url("memory://"))
    service, _ = gated_service(store, clock=clock)
    app = create_auth_app(service)
    async with client_for(app, peer=("192.0.2.1", 4000)) as client:
        await register(client, "alice", prefix="")
    store.failing = True
    async with client_for(app, peer=("198.51.100.1", 4000)) as client:
        data = {"username": "alice", "password": WRONG}
        assert (await client.post("/login", data=data)).status_code == 503
        clock.advance(-HOUR)
        refused = await client.post("/login", data=data)
        assert refused.status_code == 429
        assert 0 < int(refused.headers["retry-after"]) <= INTERVAL
