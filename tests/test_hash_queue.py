"""The bounded hash queue: `hash_concurrency` hashes run, `hash_queue` more wait, and any
more are refused at once with 503 `server_busy` and Retry-After, while requests that only
check a token are answered throughout.

Hashing here is real (pwdlib, argon2id at conftest's cheap parameters); what makes the
queue fill is a gate in front of each verification that the test opens, so every
assertion is about order (refused before any hash finished), never about wall time.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from conftest import FAST_HASHING, make_service, make_settings
from hypothesis import given, settings
from hypothesis import strategies as st
from test_app import PASSWORD, assert_problem, bearer, client_for, login, mounted, register

from s3auth_asgi import ConfigurationError, S3AuthSettings
from s3auth_asgi.app.devices import DEVICE_COOKIE, DEVICE_HEADER
from s3auth_asgi.errors import HashingBusyError, StoreUnavailableError
from s3auth_asgi.kept_places import KEPT_PLACES_SHARE_PER_ACCOUNT
from s3auth_asgi.passwords import DEVICE_QUEUE_PER_HASH_SLOT, QUEUE_PER_HASH_SLOT, PasswordHasher
from s3auth_asgi.problems import PROBLEM_CONTENT_TYPE, auth_error_response
from s3auth_asgi.settings import new_secret_key

pytestmark = pytest.mark.anyio
SECRET = new_secret_key()
BUSY = "busy"


class GatedHasher(PasswordHasher):
    """A real hasher whose verifications, once `gate` is set, wait in their worker thread
    until the test opens it; `entered` counts the verifications that reached a thread,
    `asking` the hashes and verifications asked for and not yet answered (a request holds
    its place before it asks: `admitted` counts it from then)."""

    def __init__(self, **kwargs: Any) -> None:
        cheap = {
            "memory_kib": FAST_HASHING["argon2_memory_kib"],
            "time_cost": FAST_HASHING["argon2_time_cost"],
        }
        super().__init__(**{**cheap, **kwargs})
        self.gate: threading.Event | None = None
        self.entered = 0
        self.asking = 0
        self._lock = threading.Lock()

    async def hash(self, password: str) -> str:
        self.asking += 1
        try:
            return await super().hash(password)
        finally:
            self.asking -= 1

    async def verify(
        self, password: str, hashed: str | None, *, device_owner: str | None = None
    ) -> tuple[bool, str | None]:
        self.asking += 1
        try:
            return await super().verify(password, hashed, device_owner=device_owner)
        finally:
            self.asking -= 1

    def _safe_verify(self, password: str, hashed: str) -> tuple[bool, str | None] | None:
        with self._lock:
            self.entered += 1
        if self.gate is not None and not self.gate.wait(timeout=10):
            raise AssertionError("the gate was never opened")
        return super()._safe_verify(password, hashed)


async def all_tasks_blocked() -> None:
    """`anyio.wait_all_tasks_blocked`, polling every millisecond where anyio's sleeps 0.1 s
    whenever a task is still running, which is most times a task was just started: those
    sleeps were nearly all of the property test's time. Blocked means what it means to
    anyio: waiting on a future not yet done (a lock, a worker thread held at the gate)."""
    await anyio.lowlevel.checkpoint()
    this = asyncio.current_task()
    while any(task is not this and _running(task) for task in asyncio.all_tasks()):
        await anyio.sleep(0.001)


def _running(task: asyncio.Task[Any]) -> bool:
    waiter: asyncio.Future[Any] | None = getattr(task, "_fut_waiter", None)
    return waiter is None or waiter.done()


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll the loop until `condition()` holds; fail (not hang) after 10 s."""
    with anyio.move_on_after(10):
        while not condition():
            await anyio.sleep(0.001)
    assert condition(), what


# Settings -------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["hash_queue", "hash_device_queue"])
def test_each_queue_is_read_from_its_variable(field: str) -> None:
    assert getattr(make_settings(), field) == 0
    env = {"S3AUTH_SECRET_KEY": SECRET, f"S3AUTH_{field.upper()}": "7"}
    assert getattr(S3AuthSettings.from_env(env), field) == 7


@pytest.mark.parametrize("variable", ["S3AUTH_HASH_QUEUE", "S3AUTH_HASH_DEVICE_QUEUE"])
@pytest.mark.parametrize("value", ["-1", "many", "1.5"])
def test_a_bad_queue_names_its_variable(variable: str, value: str) -> None:
    env = {"S3AUTH_SECRET_KEY": SECRET, variable: value}
    with pytest.raises(ConfigurationError, match=variable):
        S3AuthSettings.from_env(env)


@pytest.mark.parametrize("field", ["hash_queue", "hash_device_queue"])
@pytest.mark.parametrize("value", [-1, -100])
def test_a_negative_queue_argument_is_refused(field: str, value: int) -> None:
    with pytest.raises(ConfigurationError, match=f"S3AUTH_{field.upper()} must be .* from 0 to"):
        make_settings(**{field: value})


@pytest.mark.parametrize("bounds", [(-1, 0, 0), (0, -1, 0), (0, 0, -1)])
def test_a_hasher_built_by_hand_refuses_negative_bounds(bounds: tuple[int, int, int]) -> None:
    concurrency, queue, device_queue = bounds
    with pytest.raises(ConfigurationError, match=r"must be a whole number from 0 to .*, not -1"):
        PasswordHasher(concurrency=concurrency, queue=queue, device_queue=device_queue)


@pytest.mark.parametrize(
    ("concurrency", "queue", "device_queue"), [(1, 0, 0), (2, 0, 0), (3, 5, 2), (1, 1, 0)]
)
def test_the_default_queues_scale_with_the_running_hashes(
    concurrency: int, queue: int, device_queue: int
) -> None:
    settings = make_settings(
        hash_concurrency=concurrency, hash_queue=queue, hash_device_queue=device_queue
    )
    hasher = PasswordHasher.from_settings(settings)
    assert hasher.concurrency == concurrency
    assert hasher.queue == (queue or QUEUE_PER_HASH_SLOT * concurrency)
    assert hasher.device_queue == (device_queue or DEVICE_QUEUE_PER_HASH_SLOT * concurrency)
    default = PasswordHasher()
    assert default.queue == QUEUE_PER_HASH_SLOT * default.concurrency
    assert default.device_queue == DEVICE_QUEUE_PER_HASH_SLOT * default.concurrency


@pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs CPU affinity, and two CPUs to take one away",
)
def test_zero_runs_as_many_hashes_as_the_process_has_cpus_not_the_host() -> None:
    """A process held to some of the host's CPUs (a container's `--cpuset-cpus`, `taskset`)
    hashes on those alone: counting the host's would let more hashes run than can, and size
    the queues behind them for CPUs it does not have."""
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})
    try:
        made = PasswordHasher()
        configured = PasswordHasher.from_settings(make_settings(hash_concurrency=0))
    finally:
        os.sched_setaffinity(0, allowed)
    assert made.concurrency == configured.concurrency == 1
    assert configured.queue == QUEUE_PER_HASH_SLOT
    assert configured.device_queue == DEVICE_QUEUE_PER_HASH_SLOT


# The error ------------------------------------------------------------------------------


def test_the_refusal_is_a_503_problem_with_retry_after() -> None:
    error = HashingBusyError()
    assert isinstance(error, StoreUnavailableError)  # "try again later", nothing was done
    status, headers, body = auth_error_response(error)
    assert status == 503
    assert headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert headers["retry-after"] == "1"
    assert b'"code":"server_busy"' in body
    # A Retry-After given by the caller replaces the default, never doubles it.
    _, headers, _ = auth_error_response(HashingBusyError(headers=[("Retry-After", "3")]))
    assert headers["retry-after"] == "3"
    assert dict(HashingBusyError(retry_after=2).headers) == {"Retry-After": "2"}


# The hasher -----------------------------------------------------------------------------


@pytest.mark.parametrize(("concurrency", "queue", "calls"), [(1, 2, 8), (2, 3, 12)])
async def test_exactly_concurrency_plus_queue_are_admitted_and_the_rest_refused_at_once(
    concurrency: int, queue: int, calls: int
) -> None:
    hasher = GatedHasher(concurrency=concurrency, queue=queue)
    hashed = await hasher.hash(PASSWORD)
    hasher.gate = gate = threading.Event()
    outcomes: list[object] = []

    async def attempt() -> None:
        try:
            outcomes.append(await hasher.verify(PASSWORD, hashed))
        except HashingBusyError as error:
            outcomes.append((BUSY, dict(error.headers)))

    admitted = concurrency + queue
    async with anyio.create_task_group() as tg:
        for _ in range(calls):
            tg.start_soon(attempt)
        try:
            # Every refusal is answered while the gate still holds the first hashes: no
            # refused call waited for a hash to finish.
            await wait_until(lambda: len(outcomes) == calls - admitted, "refusals")
            await wait_until(lambda: hasher.entered == concurrency, "the running hashes")
            await all_tasks_blocked()
            assert outcomes == [(BUSY, {"Retry-After": "1"})] * (calls - admitted)
            assert hasher.admitted == admitted and hasher.busy
            assert hasher.entered == concurrency  # the others wait; the refused never hash
        finally:
            gate.set()
    assert outcomes[calls - admitted :] == [(True, None)] * admitted
    assert hasher.entered == admitted
    assert hasher.admitted == 0 and not hasher.busy
    assert await hasher.verify(PASSWORD, hashed) == (True, None)  # every place was freed


async def test_hashing_and_unknown_users_take_places_in_the_same_queue() -> None:
    """Registration (hash), login (verify) and the dummy verification of an unknown user
    share one bound: each takes a place, and each is refused when none is left."""
    hasher = GatedHasher(concurrency=1, queue=2)
    hashed = await hasher.hash(PASSWORD)
    hasher.gate = gate = threading.Event()
    done: list[object] = []

    async def run(call: Any) -> None:
        done.append(await call())

    async with anyio.create_task_group() as tg:
        tg.start_soon(run, lambda: hasher.verify(PASSWORD, hashed))  # runs, held at the gate
        tg.start_soon(run, lambda: hasher.hash(PASSWORD))  # waits
        tg.start_soon(run, lambda: hasher.verify(PASSWORD, None))  # waits (unknown user)
        try:
            await wait_until(lambda: hasher.entered == 1, "the running verification")
            await all_tasks_blocked()
            for refused in (
                hasher.hash(PASSWORD),
                hasher.verify(PASSWORD, hashed),
                hasher.verify(PASSWORD, None),
            ):
                with pytest.raises(HashingBusyError):
                    await refused
            assert done == [] and hasher.admitted == 3
        finally:
            gate.set()
    assert len(done) == 3 and (True, None) in done and (False, None) in done
    assert hasher.admitted == 0


async def test_a_cancelled_waiter_gives_its_place_back() -> None:
    hasher = GatedHasher(concurrency=1, queue=1)
    hashed = await hasher.hash(PASSWORD)
    hasher.gate = gate = threading.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(hasher.verify, PASSWORD, hashed)
        try:
            await wait_until(lambda: hasher.entered == 1, "the running verification")
            async with anyio.create_task_group() as waiters:
                waiters.start_soon(hasher.verify, PASSWORD, hashed)
                await wait_until(lambda: hasher.admitted == 2, "the waiter")
                with pytest.raises(HashingBusyError):
                    await hasher.verify(PASSWORD, hashed)
                waiters.cancel_scope.cancel()
            # Its place is free again while the first hash is still held at the gate.
            assert hasher.admitted == 1 and hasher.entered == 1
            tg.start_soon(hasher.verify, PASSWORD, hashed)
            await wait_until(lambda: hasher.admitted == 2, "the next waiter")
        finally:
            gate.set()
    assert hasher.admitted == 0 and hasher.entered == 2


@given(
    arrivals=st.lists(st.none() | st.integers(0, 2), min_size=1, max_size=14),
    bounds=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 9)),
)
@settings(max_examples=40, deadline=None)
def test_places_kept_for_known_devices_are_taken_only_when_the_shared_ones_are_full(
    arrivals: list[int | None], bounds: tuple[int, int, int]
) -> None:
    """Arrivals (None: no device; a number: showing a device of that account) while every
    hash is held: each is admitted or refused at once as the shared bound, the kept bound
    and the account's share of it say, and every admitted one then verifies."""
    concurrency, queue, device_queue = bounds
    share = max(1, device_queue // KEPT_PLACES_SHARE_PER_ACCOUNT)

    async def scenario() -> None:
        hasher = GatedHasher(concurrency=concurrency, queue=queue, device_queue=device_queue)
        assert hasher.kept.per_account == share
        hashed = await hasher.hash(PASSWORD)
        hasher.gate = gate = threading.Event()
        shared = refused = 0
        kept: dict[str, int] = {}
        outcomes: list[object] = []

        async def attempt(owner: str | None) -> None:
            try:
                outcomes.append(await hasher.verify(PASSWORD, hashed, device_owner=owner))
            except HashingBusyError:
                outcomes.append(BUSY)

        async with anyio.create_task_group() as tg:
            try:
                for account in arrivals:
                    owner = None if account is None else f"user{account}"
                    if shared < concurrency + queue:
                        shared += 1
                    elif (
                        owner is not None
                        and sum(kept.values()) < device_queue
                        and kept.get(owner, 0) < share
                    ):
                        kept[owner] = kept.get(owner, 0) + 1
                    else:
                        refused += 1
                    tg.start_soon(attempt, owner)
                    await all_tasks_blocked()
                    assert hasher.admitted == shared
                    assert hasher.admitted_by_device == sum(kept.values())
                    assert hasher.kept.held == kept
                    assert outcomes == [BUSY] * refused
                # A verification waiting on its thread may not have reached the gate yet.
                running = min(concurrency, shared + sum(kept.values()))
                await wait_until(lambda: hasher.entered >= running, "the running hashes")
                await all_tasks_blocked()
                assert hasher.entered == running
            finally:
                gate.set()
        admitted = shared + sum(kept.values())
        assert outcomes == [BUSY] * refused + [(True, None)] * admitted
        assert (hasher.admitted, hasher.admitted_by_device, hasher.kept.held) == (0, 0, {})

    anyio.run(scenario)


async def test_a_refused_registration_touches_no_store_and_a_refused_login_hashes_nothing() -> None:
    service = make_service()
    await service.create_user("known", "known@example.com", PASSWORD)
    hasher = service.passwords = GatedHasher(concurrency=1, queue=1)
    hasher.gate = gate = threading.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(service.authenticate_user, "known", PASSWORD)
        tg.start_soon(service.authenticate_user, "known", PASSWORD)
        try:
            await wait_until(lambda: (hasher.admitted, hasher.entered) == (2, 1), "both logins")
            service.store.reset_counts()
            with pytest.raises(HashingBusyError):
                await service.create_user("new", "new@example.com", PASSWORD)
            assert sum(service.store.requests.values()) == 0
            with pytest.raises(HashingBusyError):
                await service.authenticate_user("known", PASSWORD)
            with pytest.raises(HashingBusyError):
                await service.authenticate_user("nobody", PASSWORD)
            # A login has read the name index (and the user) when it reaches the hash: it
            # writes nothing, and its failure is not charged.
            assert set(service.store.requests) <= {"get"}
            assert hasher.entered == 1
        finally:
            gate.set()
    assert await service.get_user_by_username("new") is None


# Through the auth app -------------------------------------------------------------------


async def test_a_login_flood_gets_503s_while_token_requests_are_answered() -> None:
    service = make_service(hash_concurrency=1, hash_queue=2)
    hasher = GatedHasher.from_settings(service.settings)
    assert isinstance(hasher, GatedHasher) and (hasher.concurrency, hasher.queue) == (1, 2)
    service.passwords = hasher
    flood = 10
    admitted = hasher.concurrency + hasher.queue
    responses: list[tuple[bool, httpx.Response]] = []
    async with client_for(mounted(service)) as client:
        await register(client, "alice")
        tokens = await login(client, "alice")
        hasher.gate = gate = threading.Event()
        before = hasher.entered

        async def attempt(i: int) -> None:
            right = i % 2 == 1
            password = PASSWORD if right else "Wrong-password-1"
            data = {"username": "alice", "password": password}
            responses.append((right, await client.post("/auth/login", data=data)))

        async with anyio.create_task_group() as tg:
            for i in range(flood):
                tg.start_soon(attempt, i)
            try:
                await wait_until(lambda: len(responses) == flood - admitted, "the refusals")
                await wait_until(lambda: hasher.asking == admitted, "the admitted logins")
                # The queue is full and its first hash is held: a token still works.
                me = await client.get("/auth/me", headers=bearer(tokens))
                assert me.status_code == 200 and me.json()["username"] == "alice"
                assert hasher.admitted == admitted and hasher.entered == before + 1
                # A login refused for a full queue reads nothing from the store.
                service.store.reset_counts()
                extra = await client.post(
                    "/auth/login", data={"username": "alice", "password": "x"}
                )
                assert_problem(extra, 503, "server_busy")
                assert dict(service.store.requests) == {}
            finally:
                gate.set()
        # The next login, after the flood, is admitted again.
        assert (await login(client, "alice"))["access_token"]
    refused, answered = responses[: flood - admitted], responses[flood - admitted :]
    for _, response in refused:
        assert_problem(response, 503, "server_busy")
        assert response.headers["retry-after"] == "1"
        assert response.headers["cache-control"] == "no-store"
    assert len(answered) == admitted
    for right, response in answered:
        assert response.status_code == (200 if right else 401), response.text


async def test_the_owner_on_a_known_device_logs_in_while_a_flood_is_refused() -> None:
    """The shared places full of a flood of unknown names: the owner's login without the
    device cookie is refused like the flood's, with it admitted into a kept place; a cookie
    of another account, or a forged one, counts as none. One account's devices hold only
    its share of the kept places, so a thief firing a stolen cookie in parallel leaves the
    rest to other owners; the kept places are bounded too."""
    service = make_service(hash_concurrency=1, hash_queue=1, hash_device_queue=2)
    hasher = service.passwords = GatedHasher.from_settings(service.settings)
    assert isinstance(hasher, GatedHasher)
    assert hasher.kept.per_account == 1
    async with client_for(mounted(service), base_url="https://testserver") as client:
        devices: dict[str, str] = {}
        for name in ("alice", "bob", "carol"):
            await register(client, name)
            await login(client, name)
            devices[name] = client.cookies.get(DEVICE_COOKIE, path="/auth/login") or ""
            client.cookies.clear()
        alice, bob, carol = devices["alice"], devices["bob"], devices["carol"]
        assert alice and bob and carol and len({alice, bob, carol}) == 3
        hasher.gate = gate = threading.Event()
        answers: dict[str, httpx.Response] = {}

        async def attempt(label: str, name: str, device: str | None = None) -> None:
            data = {"username": name, "password": PASSWORD}
            headers = {DEVICE_HEADER: device} if device else {}
            answers[label] = await client.post("/auth/login", data=data, headers=headers)

        def refused(label: str) -> None:
            assert_problem(answers[label], 503, "server_busy")

        async with anyio.create_task_group() as tg:
            try:
                for i in range(2):  # the flood takes the shared places
                    tg.start_soon(attempt, f"flood {i}", f"flood{i}")
                await wait_until(lambda: hasher.admitted == 2, "the flood")
                service.store.reset_counts()
                forged = alice[:-4] + ("AAAA" if not alice.endswith("AAAA") else "BBBB")
                for label, device in (("none", None), ("bob's", bob), ("forged", forged)):
                    await attempt(label, "alice", device)
                    refused(label)
                assert dict(service.store.requests) == {}  # refused before any read
                tg.start_soon(attempt, "owner", "alice", alice)
                await wait_until(lambda: hasher.admitted_by_device == 1, "the owner")
                await attempt("alice's cookie again", "alice", alice)
                refused("alice's cookie again")  # her account's share is taken
                tg.start_soon(attempt, "bob", "bob", bob)
                await wait_until(lambda: hasher.admitted_by_device == 2, "bob")
                owners = [cookie.split(".")[1] for cookie in (alice, bob)]  # d3.{user id}.…
                assert hasher.kept.held == dict.fromkeys(owners, 1)
                await attempt("carol", "carol", carol)
                refused("carol")  # every kept place is taken
            finally:
                gate.set()
    assert answers["owner"].status_code == 200, answers["owner"].text
    assert answers["bob"].status_code == 200, answers["bob"].text
    assert [answers[f"flood {i}"].status_code for i in range(2)] == [401, 401]
    assert (hasher.admitted, hasher.admitted_by_device, hasher.kept.held) == (0, 0, {})
