"""A place in the hash queue is taken when a request is admitted, not when it reaches its
hash: a burst arriving together is refused before the work that precedes the hash (a
login's store reads, a new password's breached-password lookup), however many arrive
before the first reaches a hash."""

from __future__ import annotations

import threading

import anyio
import httpx
import pytest
from test_app import PASSWORD, assert_problem, client_for
from test_hash_queue import wait_until
from test_login_burst import gated_service

from s3auth_asgi.app import create_auth_app
from s3auth_asgi.breached_passwords import BreachedPasswords

pytestmark = pytest.mark.anyio


async def test_a_burst_of_logins_is_refused_before_it_reads_the_store() -> None:
    """Every login of a burst sees the queue as it was before any of them reached a hash;
    the places go to the first two, and every other is refused without a store request."""
    service, hasher = gated_service(hash_queue=1)
    app = create_auth_app(service)
    burst = 12
    answers: list[httpx.Response] = []

    async def guess(i: int) -> None:
        async with client_for(app, peer=(f"198.51.100.{i + 1}", 4000)) as client:
            data = {"username": f"nobody{i}", "password": "Wrong123!"}
            answers.append(await client.post("/login", data=data))

    await guess(100)  # what one login reads, outside the burst
    one = sum(service.store.requests.values())
    assert answers.pop().status_code == 401 and one > 0
    service.store.reset_counts()
    before = hasher.entered
    hasher.gate = gate = threading.Event()
    async with anyio.create_task_group() as tasks:
        try:
            for i in range(burst):
                tasks.start_soon(guess, i)
            await wait_until(lambda: len(answers) == burst - 2, "the refusals")
            # The first hash's thread may start a moment after both have asked for theirs.
            await wait_until(
                lambda: hasher.asking == 2 and hasher.entered == before + 1, "the two admitted"
            )
            for answer in answers:
                assert_problem(answer, 503, "server_busy")
            assert hasher.admitted == 2 and hasher.entered == before + 1
        finally:
            gate.set()
    assert [answer.status_code for answer in answers[burst - 2 :]] == [401, 401]
    # The store saw the two logins that were answered, and nothing of the ten refused.
    assert sum(service.store.requests.values()) == 2 * one
    assert hasher.admitted == 0


class HeldLookups(BreachedPasswords):
    """The real lookup (off: no URL), counted, each held until the test opens `gate`: the
    lookups of a burst are under way together, as a slow range API keeps them."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0
        self.gate = anyio.Event()

    async def check(self, password: str) -> None:
        self.asked += 1
        await self.gate.wait()
        await super().check(password)


async def test_a_burst_of_registrations_is_refused_before_any_breached_password_lookup() -> None:
    """A registration takes its place before it asks the range API: the two that hold the
    places are looked up, the others of the burst are refused at once, asking nothing."""
    service, hasher = gated_service(hash_queue=1)
    lookups = service.breached_passwords = HeldLookups()
    app = create_auth_app(service)
    burst = 12
    answers: list[httpx.Response] = []

    async def register(i: int) -> None:
        async with client_for(app, peer=(f"198.51.100.{i + 1}", 4000)) as client:
            data = {"username": f"new{i}", "email": f"new{i}@example.com", "password": PASSWORD}
            answers.append(await client.post("/register", json=data))

    async with anyio.create_task_group() as tasks:
        try:
            for i in range(burst):
                tasks.start_soon(register, i)
            await wait_until(lambda: lookups.asked + len(answers) == burst, "the burst")
            assert lookups.asked == 2 and hasher.admitted == 2
            for answer in answers:
                assert_problem(answer, 503, "server_busy")
        finally:
            lookups.gate.set()
    assert [answer.status_code for answer in answers[burst - 2 :]] == [201, 201]
    assert lookups.asked == 2 and hasher.admitted == 0
