"""The sweep of `ratelimit/` (`ObjectStoreRateLimitStore.delete_expired`): objects of the
limits it is given are judged by their windows from the listing alone; objects of any other
limit or failure budget (a host's own, kept in the same store) are read, and deleted only
when every time they hold has passed, so that no answer changes. What is not a state of
this package's is left as it was. On memory://, file:// and moto's S3. And the service's
clean-up (`cleanup_expired_tokens`) sweeps them, judging the auth app's own by its
limits' windows: from the listing alone when given them, and by default, with windows that
need not be the app's, reading each object past its window before deleting it."""

from __future__ import annotations

import datetime as dt
import logging
import time

import obstore
import pytest
from conftest import make_settings
from test_app import PASSWORD, client_for, mounted, register

from s3auth_asgi import S3AuthService
from s3auth_asgi.app import stored_auth_limits
from s3auth_asgi.ratelimit import FailureBudget, ObjectStoreRateLimitStore, RateLimit, RateLimiter
from s3auth_asgi.storage import ObjectStore, keys

pytestmark = pytest.mark.anyio
on_three = pytest.mark.parametrize("store_url", ["memory", "file", "s3"], indirect=True)
on_local = pytest.mark.parametrize("store_url", ["memory", "file"], indirect=True)

LOGIN = RateLimit(max_requests=5, window_seconds=60)
APP_LIMITS = {"login": LOGIN}
"""What the sweep is told of: the auth app's limits, not the host's."""
REPORTS = RateLimit(max_requests=2, window_seconds=600)  # one more every 300 s
REPORT_FAILURES = FailureBudget(
    "reports.failures",
    {"reports_failed": RateLimit(3, 900), "reports_failed_hourly": RateLimit(6, 3600)},
)  # one more every 300 s and every 600 s


def at(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


async def listed(store: ObjectStore) -> list[str]:
    return sorted([info.key async for info in store.list(keys.RATELIMIT)])


async def answers(store: ObjectStore, now: float) -> list[object]:
    """What a fresh process would answer for every host key at `now`, counting nothing."""
    fresh = ObjectStoreRateLimitStore(store, clock=lambda: now)
    found: list[object] = []
    for key in ("early", "late", "never"):
        found.append(await fresh.acquire("reports", key, REPORTS, 0))
        found.append((await fresh.peek(REPORT_FAILURES, key)).decisions)
    return found


@on_three
async def test_a_hosts_limits_are_swept_once_their_state_has_passed(store_url: str) -> None:
    store = ObjectStore.from_url(store_url)
    started = time.time()
    now = [started]
    host = ObjectStoreRateLimitStore(store, clock=lambda: now[0])
    # "early": one request, one failure at the start (TATs +300; +300 and +600).
    assert (await host.acquire("reports", "early", REPORTS, 1)).allowed
    assert (await host.record(await host.peek(REPORT_FAILURES, "early"))).allowed
    # "late": two requests and a failure 200 s in (TATs +800; +500 and +800).
    now[0] = started + 200
    for _ in range(2):
        assert (await host.acquire("reports", "late", REPORTS, 1)).allowed
    assert (await host.record(await host.peek(REPORT_FAILURES, "late"))).allowed
    # And a state of the app's own limit, judged from the listing by its 60 s window.
    await ObjectStoreRateLimitStore(store).acquire("login", "ip:203.0.113.5", LOGIN, 1)
    written = await listed(store)
    assert len(written) == 5

    # 650 s in, "early" has its whole allowance back in both; "late" owes in both (its
    # budget in one limit only: a budget goes when every one of its times has passed).
    cleaned_at = started + 650
    before = await answers(store, cleaned_at)
    store.reset_counts()
    cleaner = ObjectStoreRateLimitStore(store)
    assert await cleaner.delete_expired(APP_LIMITS, now=at(cleaned_at)) == 3
    # One LIST page; a GET of each of the host's four objects, none of the app's; one
    # DELETE batch.
    assert dict(store.requests) == {"list": 1, "get": 4, "delete": 1}
    assert await listed(store) == sorted(
        [keys.ratelimit("reports", "late"), keys.ratelimit_budget(REPORT_FAILURES.name, "late")]
    )
    assert await answers(store, cleaned_at) == before

    # Once the last time is the skew allowance (10 s) past, nothing is left, and nothing
    # is read twice.
    store.reset_counts()
    assert await cleaner.delete_expired(APP_LIMITS, now=at(started + 809)) == 0
    store.reset_counts()
    assert await cleaner.delete_expired(APP_LIMITS, now=at(started + 811)) == 2
    assert dict(store.requests) == {"list": 1, "get": 2, "delete": 1}
    assert await listed(store) == []


@on_three
async def test_windows_only_guessed_are_confirmed_by_reading_the_state(store_url: str) -> None:
    store = ObjectStore.from_url(store_url)
    started = time.time()
    # `login` counted with an hour's window where the sweep is told of 60 s: the client
    # owes 2 minutes (one request of 30 allowed an hour).
    longer = RateLimit(max_requests=30, window_seconds=3600)
    host = ObjectStoreRateLimitStore(store, clock=lambda: started)
    await host.acquire("login", "ip:203.0.113.5", longer, 1)
    state = await listed(store)
    cleaner = ObjectStoreRateLimitStore(store)
    store.reset_counts()
    assert await cleaner.delete_expired(APP_LIMITS, now=at(started + 90), confirm=True) == 0
    assert dict(store.requests) == {"list": 1, "get": 1}
    assert await listed(store) == state
    # Within the window it was told of, it is not even read.
    store.reset_counts()
    assert await cleaner.delete_expired(APP_LIMITS, now=at(started + 30), confirm=True) == 0
    assert dict(store.requests) == {"list": 1}
    # Once its state is the skew allowance (10 s) past, it goes.
    assert await cleaner.delete_expired(APP_LIMITS, now=at(started + 131), confirm=True) == 1
    assert await listed(store) == []
    # Trusted, the window it is told of would have deleted it while still owed.
    await host.acquire("login", "ip:203.0.113.5", longer, 1)
    assert await cleaner.delete_expired(APP_LIMITS, now=at(started + 90)) == 1


@on_three
async def test_what_is_no_state_of_ours_is_left_under_the_prefix(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "s3auth_asgi")
    store = ObjectStore.from_url(store_url)
    digest = "0" * 64
    # Keys a state of ours may have, with what is no state: a long past time in a field
    # of its own, or of the wrong type, or not JSON at all.
    shaped = {
        f"{keys.RATELIMIT}reports/{digest}": "no state",
        f"{keys.RATELIMIT}other/{digest}": {"tat": 1.0, "owner": "someone"},
        f"{keys.RATELIMIT}budget/{digest}": {"tats": {"a": "yesterday"}},
        f"{keys.RATELIMIT}empty/{digest}": {},
        f"{keys.RATELIMIT}both/{digest}": {"tat": 1.0, "tats": {"a": 1.0}},
    }
    # Keys none of ours has, holding a time long past: never read.
    unshaped = {
        f"{keys.RATELIMIT}README": {"tat": 1.0},
        f"{keys.RATELIMIT}reports/notes.json": {"tat": 1.0},
        f"{keys.RATELIMIT}{digest}": {"tat": 1.0},
        f"{keys.RATELIMIT}reports/{'2' * 64}/deeper": {"tat": 1.0},
        f"{keys.RATELIMIT}reports/{'A' * 64}": {"tat": 1.0},
    }
    for key, value in {**shaped, **unshaped}.items():
        await store.create(key, value)
    garbage = f"{keys.RATELIMIT}raw/{'1' * 64}"
    await obstore.put_async(store._inner, garbage, b"\x00\xff not json")
    store.reset_counts()
    far_future = at(time.time() + 10 * 365 * 86400)
    assert await ObjectStoreRateLimitStore(store).delete_expired({}, now=far_future) == 0
    assert dict(store.requests) == {"list": 1, "get": len(shaped) + 1}
    assert await listed(store) == sorted([*shaped, *unshaped, garbage])
    # Logged: what does not decode as a state (`{}` and both fields at once do, and are
    # no state all the same).
    ignored = [r.getMessage() for r in caplog.records if "corrupt" in r.getMessage()]
    assert len(ignored) == 4


@on_local
async def test_under_a_named_limit_only_what_a_state_is_named_goes(store_url: str) -> None:
    """Judged from the listing, a named limit's objects go past its window; what else lies
    under its prefix is no state of ours, and is left as under any other."""
    store = ObjectStore.from_url(store_url)
    await ObjectStoreRateLimitStore(store).acquire("login", "ip:203.0.113.5", LOGIN, 1)
    foreign = [f"{keys.RATELIMIT}login/notes.json", f"{keys.RATELIMIT}login/{'2' * 64}/deeper"]
    for key in foreign:
        await store.create(key, {"tat": 1.0})
    store.reset_counts()
    an_hour_on = at(time.time() + 3600)
    assert await ObjectStoreRateLimitStore(store).delete_expired(APP_LIMITS, now=an_hour_on) == 1
    assert dict(store.requests) == {"list": 1, "delete": 1}
    assert await listed(store) == sorted(foreign)


@on_local
async def test_the_services_cleanup_sweeps_the_apps_and_the_hosts_limits(store_url: str) -> None:
    started = time.time()
    now = [started]
    settings = make_settings(store_url, rate_limit_store="store")
    service = S3AuthService(settings, clock=lambda: now[0])
    async with client_for(mounted(service, rate_limit=True)) as client:
        await register(client, "alice")
        wrong = {"username": "alice", "password": PASSWORD + "x"}
        assert (await client.post("/auth/login", data=wrong)).status_code == 401
    # And a limit of the host's own, kept in the same store, whose client owes an hour.
    host = ObjectStoreRateLimitStore(service.store, clock=lambda: now[0])
    assert (await host.acquire("reports", "client", RateLimit(1, 3600), 1)).allowed
    app_objects = {  # a failure is charged to the account's one budget and the address's
        "login.account": 1, "login.address": 1, "register": 1, "register_account": 1,
    }  # fmt: skip
    assert counted(await listed(service.store)) == {**app_objects, "reports": 1}

    # Within every window: nothing goes. The app's objects, within their default windows,
    # are left unread; the host's, whose window only the host's code knows, is read.
    # Sessions, revocations, mailed tokens, audit events and rate-limit objects: a LIST each.
    service.store.reset_counts()
    assert await service.cleanup_expired_tokens() == 0
    # and the GETs of the state read and of the cut-off of every session
    assert dict(service.store.requests) == {"list": 5, "get": 2}

    # A day and a minute on, past the longest window (the account's budget's, a day). The
    # default windows are not known to be the app's: each object past its own is read.
    now[0] = started + 86400 + 60
    service.store.reset_counts()
    assert await service.cleanup_expired_tokens() == len(app_objects) + 1
    # Each object read, and the cut-off of every session.
    assert dict(service.store.requests) == {"list": 5, "get": len(app_objects) + 2, "delete": 1}
    assert await listed(service.store) == []


@on_local
async def test_the_cleanup_is_given_the_windows_of_an_apps_own_limiter(store_url: str) -> None:
    started = time.time()
    now = [started]
    service = S3AuthService(make_settings(store_url), clock=lambda: now[0])
    shared = ObjectStoreRateLimitStore(service.store, clock=lambda: now[0])
    limiter = RateLimiter({"register": RateLimit(10, 7200)}, store=shared)
    async with client_for(mounted(service, rate_limit=True, limiter=limiter)) as client:
        await register(client, "alice")
    # Past the default window of `register` (600 s), within this limiter's: the client owes
    # 720 s. Judged by the windows given, from the listing, it stays.
    now[0] = started + 700
    stored = stored_auth_limits(limiter)
    service.store.reset_counts()
    assert await service.cleanup_expired_tokens(rate_limits=stored) == 0
    assert dict(service.store.requests) == {"list": 5, "get": 1}  # the cut-off's GET
    assert counted(await listed(service.store)) == {"register": 1}
    now[0] = started + 7200 + 60
    assert await service.cleanup_expired_tokens(rate_limits=stored) == 1
    assert await listed(service.store) == []


@on_local
async def test_by_default_a_state_an_own_limiter_still_counts_is_kept(store_url: str) -> None:
    started = time.time()
    now = [started]
    service = S3AuthService(make_settings(store_url), clock=lambda: now[0])
    shared = ObjectStoreRateLimitStore(service.store, clock=lambda: now[0])
    own = RateLimit(10, 7200)  # `register`'s name, twelve times its default window
    limiter = RateLimiter({"register": own}, store=shared)
    async with client_for(mounted(service, rate_limit=True, limiter=limiter)) as client:
        await register(client, "alice")
    client = "ip:127.0.0.1"
    state = keys.ratelimit("register", client)
    assert await listed(service.store) == [state]
    # Past the default window of `register` (600 s), within this limiter's: the client owes
    # 720 s. A clean-up not told of the limiter reads the object before it deletes it.
    now[0] = started + 700
    fresh = ObjectStoreRateLimitStore(service.store, clock=lambda: now[0])
    before = await fresh.acquire("register", client, own, 0)
    assert before.remaining == 9  # one request counted, none of it given back yet
    service.store.reset_counts()
    assert await service.cleanup_expired_tokens() == 0
    # and the GETs of the state read and of the cut-off of every session
    assert dict(service.store.requests) == {"list": 5, "get": 2}
    assert await listed(service.store) == [state]
    assert await fresh.acquire("register", client, own, 0) == before
    # Once the state is the skew allowance (10 s) past, it goes.
    now[0] = started + 731
    service.store.reset_counts()
    assert await service.cleanup_expired_tokens() == 1
    # The state read, and the cut-off of every session.
    assert dict(service.store.requests) == {"list": 5, "get": 2, "delete": 1}
    assert await listed(service.store) == []


def counted(listing: list[str]) -> dict[str, int]:
    """How many objects each limit (or budget) has in `listing`."""
    names = [keys.ratelimit_limit_name(key) for key in listing]
    return {name: names.count(name) for name in sorted(set(names))}
