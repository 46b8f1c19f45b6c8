"""A request queued for a password hash whose client goes away gives its place back: the
next arrival is admitted where it would have been refused, and the abandoned hash never
runs. Only up to the hash: a request whose hash has started runs to its end, its failure
charged, whenever its client leaves.

The app is driven by raw ASGI calls, as a server makes them: `receive()` gives the body,
then, once the test says the client has gone, `http.disconnect`. The hashes are real and
held at a gate the test opens (`GatedHasher`), so every step is decided by order."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import anyio
import anyio.lowlevel
import pytest
from support import http_scope
from test_app import PASSWORD, client_for, register
from test_hash_queue import GatedHasher, all_tasks_blocked, wait_until
from test_login_burst import gated_service

from s3auth_asgi.app import AuthApp, create_auth_app
from s3auth_asgi.hash_turns import ClientGoneError, given_up_on
from s3auth_asgi.name_index import owner_account

pytestmark = pytest.mark.anyio
WRONG = "Wrong123!"


class RawLogin:
    """One login sent as a server hands it to the app: the body, then nothing until
    `leave()`, then `http.disconnect`; what the app sent back is kept."""

    def __init__(self, app: AuthApp, name: str, password: str, peer: str) -> None:
        self.app, self.peer = app, peer
        self.body = urlencode({"username": name, "password": password}).encode()
        self.gone = anyio.Event()
        self.sent: list[dict[str, Any]] = []
        self.done = False
        self._body_given = False

    def leave(self) -> None:
        self.gone.set()

    async def receive(self) -> dict[str, Any]:
        if not self._body_given:
            self._body_given = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(dict(message))

    async def __call__(self) -> None:
        headers = [
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(self.body)).encode()),
        ]
        scope = http_scope("/login", headers, method="POST") | {"client": (self.peer, 4000)}
        try:
            await self.app(scope, self.receive, self.send)
        finally:
            self.done = True

    @property
    def status(self) -> int:
        (start,) = [m for m in self.sent if m["type"] == "http.response.start"]
        return int(start["status"])

    @property
    def content(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


async def account_room(app: AuthApp, user_id: str) -> int:
    """How many more failures the account's login budget admits, as stored."""
    store, budget = app.routes.limits.attempts.budgets["login.account"]
    reading = await store.peek(budget, f"account:{owner_account(user_id)}")
    return min(decision.remaining for decision in reading.decisions)


async def setup() -> tuple[GatedHasher, AuthApp, str]:
    """One hash at a time, two more waiting; alice registered."""
    service, hasher = gated_service(hash_queue=2)
    app = create_auth_app(service)
    async with client_for(app, peer=("192.0.2.1", 4000)) as client:
        user = await register(client, "alice", prefix="")
    return hasher, app, user["id"]


async def test_queued_logins_whose_clients_left_give_their_places_back_unhashed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hasher, app, user_id = await setup()
    room = await account_room(app, user_id)
    before = hasher.entered
    hasher.gate = gate = threading.Event()
    running = RawLogin(app, "alice", PASSWORD, "198.51.100.1")
    queued = [RawLogin(app, "alice", WRONG, f"198.51.100.{i}") for i in (2, 3)]
    late = RawLogin(app, "alice", PASSWORD, "198.51.100.4")
    caplog.set_level(logging.INFO)
    async with anyio.create_task_group() as tasks:
        try:
            tasks.start_soon(running)
            await wait_until(lambda: hasher.entered == before + 1, "the running hash")
            for login in queued:
                tasks.start_soon(login)
            await wait_until(lambda: hasher.asking == 3, "the queued logins")
            assert hasher.busy  # one running, two waiting: the queue is full
            for login in queued:
                login.leave()
            await all_tasks_blocked()
            assert all(login.done for login in queued), "a queued login outlived its client"
            assert hasher.admitted == 1 and not hasher.busy
            tasks.start_soon(late)  # admitted into a place given back, not refused
            await wait_until(lambda: hasher.asking == 2, "the late login")
            assert hasher.admitted == 2 and not late.done
        finally:
            gate.set()
    # Neither queued login was hashed nor charged; each ended with a bodiless answer.
    assert hasher.entered == before + 2
    assert await account_room(app, user_id) == room
    for login in queued:
        assert login.status == 499 and login.content == b""
    assert (running.status, late.status) == (200, 200)
    assert hasher.admitted == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    gone = [r for r in caplog.records if getattr(r, "reason", None) == "client_gone"]
    assert [(r.event, r.outcome) for r in gone] == [("login", "failure")] * 2  # type: ignore[attr-defined]


@dataclasses.dataclass
class Queued:
    """Two wrong passwords of alice from two addresses: `first` hashing, held at `gate`,
    `second` queued behind it; `room` alice's failure budget and `before` the hashes
    entered, both before either came."""

    hasher: GatedHasher
    app: AuthApp
    user_id: str
    room: int
    before: int
    gate: threading.Event
    first: RawLogin
    second: RawLogin


@contextlib.asynccontextmanager
async def second_queued_behind_first() -> AsyncIterator[Queued]:
    """`Queued`'s logins running, the second waiting for the hash; on the way out the gate
    opens, whatever happened, and both run to their ends."""
    hasher, app, user_id = await setup()
    q = Queued(
        hasher,
        app,
        user_id,
        await account_room(app, user_id),
        hasher.entered,
        threading.Event(),
        RawLogin(app, "alice", WRONG, "198.51.100.1"),
        RawLogin(app, "alice", WRONG, "198.51.100.2"),
    )
    hasher.gate = q.gate
    async with anyio.create_task_group() as tasks:
        try:
            tasks.start_soon(q.first)
            await wait_until(lambda: hasher.entered == q.before + 1, "the first hash")
            tasks.start_soon(q.second)
            await wait_until(lambda: hasher.asking == 2, "the queued login")
            yield q
        finally:
            q.gate.set()


async def test_a_login_whose_hash_has_started_runs_to_its_end_and_is_charged() -> None:
    """Leaving once its turn has come escapes nothing: a wrong password whose hash started
    is charged, however soon after that the client goes."""
    async with second_queued_behind_first() as q:
        q.first.leave()  # while its hash runs
        q.gate.set()
        await wait_until(lambda: q.hasher.entered == q.before + 2, "the second's hash")
        q.second.leave()  # the moment its turn came
    assert (q.first.status, q.second.status) == (401, 401)
    assert await account_room(q.app, q.user_id) == q.room - 2
    assert q.hasher.admitted == 0


async def test_a_client_gone_before_a_free_slot_is_not_listened_for() -> None:
    """A hash that can start at once starts: the client is listened for only by a request
    that waits behind others, so one admitted at once costs no listening."""
    hasher = GatedHasher(concurrency=1, queue=1)
    asked = 0

    async def gone() -> None:
        nonlocal asked
        asked += 1

    with given_up_on(gone):
        assert await hasher.verify(PASSWORD, None) == (False, None)
    assert asked == 0 and hasher.entered == 1


async def test_a_waiter_given_up_holds_nothing() -> None:
    hasher = GatedHasher(concurrency=1, queue=1)
    hashed = await hasher.hash(PASSWORD)
    hasher.gate = gate = threading.Event()
    left = anyio.Event()
    outcome: list[object] = []

    async def waiter() -> None:
        with given_up_on(left.wait):
            try:
                outcome.append(await hasher.verify(PASSWORD, hashed))
            except ClientGoneError as error:
                outcome.append(error)

    async with anyio.create_task_group() as tasks:
        try:
            tasks.start_soon(hasher.verify, PASSWORD, hashed)
            await wait_until(lambda: hasher.entered == 1, "the running hash")
            tasks.start_soon(waiter)
            await wait_until(lambda: hasher.admitted == 2, "the waiter")
            left.set()
            await wait_until(lambda: len(outcome) == 1, "the waiter's end")
            assert isinstance(outcome[0], ClientGoneError) and hasher.admitted == 1
        finally:
            gate.set()
    # Its turn was never taken: the next hash runs as soon as the first has ended.
    assert await hasher.verify(PASSWORD, hashed) == (True, None)
    assert hasher.entered == 2 and hasher.admitted == 0


async def test_a_client_leaving_as_its_turn_comes_is_charged_exactly_when_hashed() -> None:
    """However close to the moment its turn comes the client leaves, the login either
    never hashed and is not charged, or hashed and is charged: never a check uncharged.
    The client of the queued login leaves at a few moments around the one the first hash
    ends and hands its turn on: before it (given up), then after 0-3 loop steps."""
    outcomes = [await leave_at(moment) for moment in (None, 0, 1, 2, 3)]
    assert outcomes[0] is False and True in outcomes


async def leave_at(moment: int | None) -> bool:
    """Whether a wrong password queued behind another, its client leaving `moment` loop
    steps after the turn is handed on (None: before), was hashed; each way, charged as it
    was hashed."""
    async with second_queued_behind_first() as q:
        if moment is None:
            q.second.leave()
        q.gate.set()
        with anyio.fail_after(10):
            while q.hasher.asking == 2:  # the first hash ends, its turn handed on
                await anyio.lowlevel.checkpoint()
        for _ in range(moment or 0):
            await anyio.lowlevel.checkpoint()
        q.second.leave()
    hashed = q.hasher.entered == q.before + 2
    assert q.second.status == (401 if hashed else 499)
    assert await account_room(q.app, q.user_id) == q.room - (2 if hashed else 1)
    assert q.hasher.admitted == 0
    return hashed
