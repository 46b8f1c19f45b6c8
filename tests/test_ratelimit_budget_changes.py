"""Hosts on one store whose failure budgets of one name differ (a limit added to a budget and
deployed host by host, or S3AUTH_RATE_LIMITS set apart): a failure one host records keeps
the times of the limits only the others have, so no host erases what another counted."""

from __future__ import annotations

import pytest

from s3auth_asgi.ratelimit import FailureBudget, ObjectStoreRateLimitStore, RateLimit
from s3auth_asgi.ratelimit.budget import charge_budget
from s3auth_asgi.ratelimit.stores import BudgetState
from s3auth_asgi.storage import ObjectStore, keys

pytestmark = pytest.mark.anyio

NOW = 1_800_000_000.0
SHORT = RateLimit(max_requests=5, window_seconds=900)
DAILY = RateLimit(max_requests=2, window_seconds=86400)
NEW = FailureBudget("login.account", {"login_account": SHORT, "login_account_daily": DAILY})
OLD = FailureBudget("login.account", {"login_account": SHORT})


@pytest.mark.parametrize("store_url", ["memory", "file"], indirect=True)
async def test_a_host_without_a_limit_keeps_what_the_others_counted_in_it(store_url: str) -> None:
    store = ObjectStore.from_url(store_url)
    new_host = ObjectStoreRateLimitStore(store, clock=lambda: NOW)
    old_host = ObjectStoreRateLimitStore(store, clock=lambda: NOW)
    for _ in range(DAILY.max_requests):
        assert (await new_host.record(await new_host.peek(NEW, "alice"))).allowed
    assert not (await new_host.peek(NEW, "alice")).allowed  # the daily limit is spent
    # The old host knows the short limit only, which admits a failure more.
    assert (await old_host.record(await old_host.peek(OLD, "alice"))).allowed
    stored = await store.get(keys.ratelimit_budget(NEW.name, "alice"), BudgetState)
    assert stored is not None
    assert stored.value.tats == {
        "login_account": NOW + 3 * SHORT.emission_interval,
        "login_account_daily": NOW + 2 * DAILY.emission_interval,
    }
    # A host of the new budget that has not seen the key still finds the daily limit spent.
    assert not (
        await ObjectStoreRateLimitStore(store, clock=lambda: NOW).peek(NEW, "alice")
    ).allowed


def test_only_times_still_owed_are_kept_of_limits_the_budget_lacks() -> None:
    tats = {"login_account": NOW + 10, "gone": NOW - 1, "owed": NOW + 1}
    kept, decisions = charge_budget(tats, NOW, OLD)
    assert decisions[0].allowed
    assert kept == {"login_account": NOW + 10 + SHORT.emission_interval, "owed": NOW + 1}
