"""The auth app's limits on a fleet: S3AUTH_RATE_LIMIT_STORE, two app instances on one store
counting wrong passwords together on memory://, file:// and S3, and the exact store requests
of a successful, a failed and a refused login."""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio
import httpx
import pytest
from conftest import SECRET, make_service
from support import Clock, clock_fixture, make_clocked_service  # noqa: F401 (a fixture)
from test_app import PASSWORD, assert_problem, bearer, client_for, login, mounted, register

from s3auth_asgi import ConfigurationError, S3AuthService, S3AuthSettings
from s3auth_asgi.app import DEFAULT_AUTH_LIMITS, create_auth_app, default_limiter
from s3auth_asgi.auth_limits import PER_PROCESS_LIMITS
from s3auth_asgi.ratelimit import (
    MemoryRateLimitStore,
    ObjectStoreRateLimitStore,
    RateLimit,
    RateLimiter,
)
from s3auth_asgi.storage import ObjectStore

pytestmark = pytest.mark.anyio

PER_ACCOUNT = DEFAULT_AUTH_LIMITS["login_account"].max_requests
WRONG = "Wrong123!"
NAMES = ("alice", "alice@example.com")
"""The two names of one account."""


# S3AUTH_RATE_LIMIT_STORE -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("memory://", "memory"),
        ("file:///var/lib/auth", "store"),
        ("s3://bucket/auth", "store"),
        ("gs://bucket/auth", "store"),
        ("az://container/auth", "store"),
    ],
)
def test_limits_are_shared_by_default_wherever_the_store_is(url: str, expected: str) -> None:
    settings = S3AuthSettings.from_env({"S3AUTH_SECRET_KEY": SECRET, "S3AUTH_STORE_URL": url})
    assert settings.rate_limit_store is None
    assert settings.rate_limit_backend == expected


@pytest.mark.parametrize("chosen", ["memory", "store"])
def test_the_variable_overrides_the_default(chosen: str) -> None:
    for url in ("memory://", "s3://bucket/auth"):
        env = {
            "S3AUTH_SECRET_KEY": SECRET,
            "S3AUTH_STORE_URL": url,
            "S3AUTH_RATE_LIMIT_STORE": chosen,
        }
        assert S3AuthSettings.from_env(env).rate_limit_backend == chosen
        assert S3AuthSettings(secret_key=SECRET, store_url=url, rate_limit_store=chosen)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["redis", "Store", "shared", "1"])
def test_a_bad_value_names_the_variable(value: str) -> None:
    env = {"S3AUTH_SECRET_KEY": SECRET, "S3AUTH_RATE_LIMIT_STORE": value}
    with pytest.raises(ConfigurationError, match="S3AUTH_RATE_LIMIT_STORE"):
        S3AuthSettings.from_env(env)
    with pytest.raises(ConfigurationError, match="S3AUTH_RATE_LIMIT_STORE"):
        S3AuthSettings(secret_key=SECRET, rate_limit_store=value)  # type: ignore[arg-type]


def test_the_default_limiter_keeps_the_auth_limits_where_the_setting_says() -> None:
    store = ObjectStore.from_url("memory://")
    shared = default_limiter(
        make_service(rate_limit_store="store").settings,
        extra={"api": RateLimit(100, 60)},
        store=store,
    )
    for name in DEFAULT_AUTH_LIMITS:
        if name in PER_PROCESS_LIMITS:  # the token, profile and events limits: per process
            assert isinstance(shared.stores[name], MemoryRateLimitStore), name
        else:
            assert isinstance(shared.stores[name], ObjectStoreRateLimitStore), name
            assert shared.stores[name].store is store  # type: ignore[attr-defined]
    assert set(PER_PROCESS_LIMITS) == {
        "token",
        "token_account",
        "profile",
        "profile_account",
        "events_account",
    }
    assert isinstance(shared.stores["api"], MemoryRateLimitStore)  # high-rate: per process
    apart = default_limiter(make_service().settings)
    assert all(isinstance(s, MemoryRateLimitStore) for s in apart.stores.values())


def test_a_budget_needs_one_store_that_can_peek_and_record() -> None:
    limits = {"login_account": RateLimit(5, 60), "login_account_daily": RateLimit(50, 86400)}
    split = RateLimiter(limits, stores={"login_account_daily": MemoryRateLimitStore()})
    with pytest.raises(ConfigurationError, match="same store"):
        create_auth_app(make_service(), limiter=split)

    class AcquireOnly:
        async def acquire(self, *args: object) -> object:
            raise AssertionError("not called")

    plain = RateLimiter({"login": RateLimit(5, 60)}, store=AcquireOnly())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"'login'.*peek and record"):
        create_auth_app(make_service(), limiter=plain)


# Two instances on one store -------------------------------------------------------------


class Fleet:
    """Two services (two processes, as far as the store can tell) and their auth apps, on
    one store: the same memory:// store object, or two handles on one file:// or S3 URL."""

    def __init__(self, store_url: str, clock: Clock, **overrides: Any) -> None:
        shared = ObjectStore.from_url(store_url) if store_url == "memory://" else None
        if shared is not None:
            overrides.setdefault("rate_limit_store", "store")  # memory:// defaults to memory
        self.services: list[S3AuthService] = [
            make_clocked_service(store_url, clock=clock, store=shared, **overrides)
            for _ in range(2)
        ]
        self.apps = [mounted(service, rate_limit=True) for service in self.services]
        self.stores = {id(s.store): s.store for s in self.services}.values()

    def client(self, i: int, ip: str) -> httpx.AsyncClient:
        return client_for(self.apps[i % 2], peer=(ip, 4000))

    def reset_counts(self) -> None:
        for store in self.stores:
            store.reset_counts()

    def requests(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for store in self.stores:
            total.update(store.requests)
        return dict(total)


async def post_login(
    client: httpx.AsyncClient, name: str, password: str, **headers: str
) -> httpx.Response:
    return await client.post(
        "/auth/login", data={"username": name, "password": password}, headers=headers
    )


async def test_two_instances_give_exactly_the_limit_of_wrong_password_answers(
    store_url: str, clock: Clock
) -> None:
    fleet = Fleet(store_url, clock)
    async with fleet.client(0, "192.0.2.1") as client:
        await register(client, "alice")
    statuses = []
    for i in range(PER_ACCOUNT + 6):
        async with fleet.client(i, f"198.51.100.{i + 1}") as client:
            statuses.append((await post_login(client, "alice", WRONG)).status_code)
    assert statuses == [401] * PER_ACCOUNT + [429] * 6
    for i in range(2):  # the right password is refused too, by either instance
        async with fleet.client(i, "203.0.113.200") as client:
            assert_problem(await post_login(client, "alice", PASSWORD), 429, "rate_limited")


async def test_concurrent_wrong_passwords_on_two_instances_stay_within_the_limit(
    store_url: str,
) -> None:
    fleet = Fleet(store_url, Clock())
    async with fleet.client(0, "192.0.2.1") as client:
        await register(client, "alice")
    answers: list[int] = []

    async def attempt(i: int) -> None:
        async with fleet.client(i, f"198.51.100.{i + 1}") as client:
            response = await post_login(client, NAMES[i % 2], WRONG)
        answers.append(response.status_code)

    async with anyio.create_task_group() as tasks:
        for i in range(PER_ACCOUNT * 2 + 4):
            tasks.start_soon(attempt, i)
    # Races lost at the record are re-read; one that finds a budget spent answers 429.
    assert set(answers) <= {401, 429}
    assert 1 <= answers.count(401) <= PER_ACCOUNT
    # Whatever the races did, each name's state has counted at least the 401s (a failure
    # charged to one name and then refused by the other counts without a 401): after the
    # burst, at most the rest of the limit is admitted, under either name.
    remaining = PER_ACCOUNT - answers.count(401)
    for name in NAMES:
        statuses = []
        for i in range(remaining + 1):
            async with fleet.client(i, "203.0.113.9") as client:
                statuses.append((await post_login(client, name, WRONG)).status_code)
        admitted = statuses.count(401)
        assert admitted <= remaining
        assert statuses == [401] * admitted + [429] * (remaining + 1 - admitted)
        remaining -= admitted


async def test_a_password_change_and_logins_share_the_account_budget(
    store_url: str, clock: Clock
) -> None:
    fleet = Fleet(store_url, clock, rate_limits="login_account=4/600")
    async with fleet.client(0, "192.0.2.1") as client:
        await register(client, "alice")
        tokens = await login(client, "alice")
        for _ in range(2):
            response = await client.post(
                "/auth/password",
                json={"current_password": "Guess123!", "new_password": "Newer123!"},
                headers=bearer(tokens),
            )
            assert_problem(response, 403, "wrong_password")
    async with fleet.client(1, "198.51.100.7") as client:
        statuses = [(await post_login(client, "alice", WRONG)).status_code for _ in range(3)]
    assert statuses == [401, 401, 429]


# Store requests ----------------------------------------------------------------------------


async def test_request_counts_with_shared_limits(store_url: str, clock: Clock) -> None:
    """On top of the login's own requests (index GET, user GET, session PUT, the user read
    back): the limits of
    the account the index names and of the address are read (2 GETs) before the user is,
    and charged only for a wrong password (2 conditional PUTs). A refusal reads the index
    and the limits, nothing more."""
    fleet = Fleet(store_url, clock)
    async with fleet.client(0, "192.0.2.1") as client:
        await register(client, "alice")
        fleet.reset_counts()
        assert (await post_login(client, "alice", PASSWORD)).status_code == 200
        # ...and the audit event, after the answer (a PUT for every login, failed or not)
        assert fleet.requests() == {"get": 5, "put": 2}

        fleet.reset_counts()
        assert (await post_login(client, "alice", WRONG)).status_code == 401
        assert fleet.requests() == {"get": 4, "put": 3}

        # An unknown name costs the same: a budget of its own, a user GET that finds
        # nothing, an audit event in a decoy trail.
        fleet.reset_counts()
        assert (await post_login(client, "nobody", WRONG)).status_code == 401
        assert fleet.requests() == {"get": 4, "put": 3}

        for i in range(PER_ACCOUNT - 1):
            await post_login(client, NAMES[i % 2], WRONG)
            await post_login(client, "nobody", WRONG)
        # A first refusal reads the name's index and the account's limits; then the
        # refusal is remembered until the state would admit, and only the index is read,
        # under either of the account's names.
        expected = (
            ("alice", WRONG, 2),
            ("alice@example.com", PASSWORD, 1),
            ("alice", PASSWORD, 1),
            ("nobody", WRONG, 2),
            ("nobody", WRONG, 1),
        )
        for name, password, gets in expected:
            fleet.reset_counts()
            assert (await post_login(client, name, password)).status_code == 429
            assert fleet.requests() == {"get": gets}


async def test_a_refusal_by_the_address_reads_three_objects(store_url: str, clock: Clock) -> None:
    fleet = Fleet(store_url, clock, rate_limits="login=3/60")
    async with fleet.client(0, "192.0.2.1") as client:
        for i in range(3):
            assert (await post_login(client, f"user{i}", WRONG)).status_code == 401
        fleet.reset_counts()
        refused = await post_login(client, "someone-else", WRONG)
    assert_problem(refused, 429, "rate_limited")
    assert '"login";q=3' in refused.headers["ratelimit-policy"]
    assert fleet.requests() == {"get": 3}  # the name's index, its limits, the address's
    async with fleet.client(0, "192.0.2.1") as client:
        fleet.reset_counts()
        again = await post_login(client, "someone-else-again", WRONG)
    assert_problem(again, 429, "rate_limited")
    assert fleet.requests() == {"get": 2}  # the address's refusal is remembered


async def test_registration_counts_every_attempt_in_the_store(store_url: str, clock: Clock) -> None:
    fleet = Fleet(store_url, clock)
    for service in fleet.services:  # as their starts do: the first write would, on S3
        await service.check_store()
    async with fleet.client(0, "192.0.2.1") as client:
        fleet.reset_counts()
        await register(client, "alice")
    # Three index creates (username, its skeleton, email) and the user create; a GET and a
    # conditional PUT per limit; the audit event.
    assert fleet.requests() == {"get": 2, "put": 7}


async def test_limits_in_memory_cost_no_requests(clock: Clock) -> None:
    service = make_clocked_service(clock=clock, rate_limit_store="memory")
    async with client_for(mounted(service, rate_limit=True)) as client:
        await register(client, "alice")
        service.store.reset_counts()
        assert (await post_login(client, "alice", PASSWORD)).status_code == 200
        # The index, the user; the session, the user read back; the audit event.
        assert dict(service.store.requests) == {"get": 3, "put": 2}
        service.store.reset_counts()
        assert (await post_login(client, "alice", WRONG)).status_code == 401
        assert dict(service.store.requests) == {"get": 2, "put": 1}  # the audit event
        for _ in range(PER_ACCOUNT - 1):
            await post_login(client, "alice", WRONG)
        service.store.reset_counts()
        assert (await post_login(client, "alice", WRONG)).status_code == 429
        assert dict(service.store.requests) == {"get": 1}  # the name's index entry
