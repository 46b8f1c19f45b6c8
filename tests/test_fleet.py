"""Several uvicorn worker processes on one store, driven over HTTP on 127.0.0.1: what holds
in one process holds across the fleet. Each answer names the worker that gave it
(`x-worker`); new connections spread requests over the workers."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from conftest import SECRET

from s3auth_asgi.storage import ObjectStore, keys

WORKERS = 2
SYNC_SECONDS = 0.5
PASSWORD = "Fleet-Password-42"
LOGIN_ACCOUNT_LIMIT = 5  # the default burst (DEFAULT_AUTH_LIMITS["login_account"])
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Fleet:
    def __init__(self, url: str, process: subprocess.Popen[bytes], store_url: str) -> None:
        self.url = url
        self.process = process
        self.store_url = store_url

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        # A new connection each time, so the kernel picks the worker.
        with httpx.Client(base_url=self.url, timeout=30) as client:
            return client.request(method, path, **kwargs)

    def worker_pids(self) -> set[str]:
        seen: set[str] = set()
        deadline = time.monotonic() + 30
        while len(seen) < WORKERS and time.monotonic() < deadline:
            seen.add(self.request("GET", "/auth/openapi.json").headers["x-worker"])
        assert len(seen) == WORKERS, seen
        return seen

    def every_worker(self, method: str, path: str, **kwargs: Any) -> dict[str, int]:
        """The status each worker gives the same request."""
        statuses: dict[str, int] = {}
        deadline = time.monotonic() + 30
        while len(statuses) < WORKERS and time.monotonic() < deadline:
            response = self.request(method, path, **kwargs)
            statuses.setdefault(response.headers["x-worker"], response.status_code)
        assert len(statuses) == WORKERS, statuses
        return statuses


def _start(store_url: str, tmp: Path, env: dict[str, str]) -> Iterator[Fleet]:
    port = _free_port()
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("S3AUTH_")},
        **env,
        "S3AUTH_STORE_URL": store_url,
        "S3AUTH_SECRET_KEY": SECRET,
        "S3AUTH_ARGON2_MEMORY_KIB": "1024",
        "S3AUTH_ARGON2_TIME_COST": "1",
        "S3AUTH_REVOCATION_SYNC_SECONDS": str(SYNC_SECONDS),
        # One client address registers every account of the module, and asks every worker
        # about each of up to two dozen tokens within a minute (the demo's "api" limit is 60
        # a minute per worker, which a race's count of refreshed pairs could reach).
        "S3AUTH_RATE_LIMITS": "register=1000/60,register_account=1000/60,api=100000/60",
        "PYTHONPATH": str(Path(__file__).parent),
    }
    log = (tmp / "uvicorn.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "fleet_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(WORKERS),
            "--no-proxy-headers",
            "--no-access-log",
        ],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    fleet = Fleet(f"http://127.0.0.1:{port}", process, store_url)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                fleet.request("GET", "/auth/openapi.json")
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail((tmp / "uvicorn.log").read_text())
                time.sleep(0.2)
        fleet.worker_pids()
        yield fleet
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module", params=["file", "seaweedfs"])
def fleet(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    """The fleet on the embedded store and on a real S3 server (SeaweedFS), one per module:
    each test uses accounts of its own."""
    tmp_path = tmp_path_factory.mktemp("fleet")
    if request.param == "file":
        yield from _start(f"file://{tmp_path / 'store'}", tmp_path, {})
        return
    server = request.getfixturevalue("seaweedfs")
    yield from _start(server.fresh_url(), tmp_path, server.env())


def register(fleet: Fleet, name: str) -> httpx.Response:
    return fleet.request(
        "POST",
        "/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
        headers={"X-Forwarded-For": "ignored"},
    )


def login(fleet: Fleet, name: str, password: str = PASSWORD) -> httpx.Response:
    return fleet.request("POST", "/auth/login", data={"username": name, "password": password})


def parallel(count: int, call: Any) -> list[Any]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(call, range(count)))


def test_the_workers_started_together_leave_one_verdict_of_their_store(fleet: Fleet) -> None:
    """Each worker checks the store at its start; on SeaweedFS both may probe it, and the
    verdict is written once. A file:// store's conditional writes are the package's own:
    nothing is probed or written."""
    store = ObjectStore.from_url(fleet.store_url)
    verdict = anyio.run(lambda: store.get(keys.STORE_VERDICT, dict), backend="asyncio")
    if fleet.store_url.startswith("file://"):
        assert verdict is None
    else:
        assert verdict is not None and verdict.value["by"] == "service", verdict
    listed = anyio.run(lambda: _keys(store, keys.PROBES), backend="asyncio")
    assert listed == []  # each probe object deleted


async def _keys(store: ObjectStore, prefix: str) -> list[str]:
    return [info.key async for info in store.list(prefix)]


def test_one_account_from_fifty_concurrent_registrations(fleet: Fleet) -> None:
    responses = parallel(50, lambda _: register(fleet, "alice"))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1, statuses
    assert set(statuses) <= {201, 409, 429}
    assert len({r.headers["x-worker"] for r in responses}) == WORKERS
    assert login(fleet, "alice").status_code == 200


def test_one_rotation_from_twenty_concurrent_refreshes_and_reuse_ends_the_session(
    fleet: Fleet,
) -> None:
    assert register(fleet, "bob").status_code == 201
    first = login(fleet, "bob").json()
    responses = parallel(
        20,
        lambda _: fleet.request(
            "POST", "/auth/refresh", json={"refresh_token": first["refresh_token"]}
        ),
    )
    # One rotation wins; the losers of the race get the winner's pair (the grace window).
    winners = [r for r in responses if r.status_code == 200]
    assert len({r.json()["refresh_token"] for r in winners}) == 1
    assert all(r.status_code in (200, 401) for r in responses)
    assert len({r.headers["x-worker"] for r in responses}) == WORKERS
    # After one more rotation the first token is two generations old: a reuse.
    current = winners[0].json()["refresh_token"]
    again = fleet.request("POST", "/auth/refresh", json={"refresh_token": current})
    assert again.status_code == 200
    reused = fleet.request("POST", "/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    latest = again.json()["refresh_token"]
    assert fleet.request("POST", "/auth/refresh", json={"refresh_token": latest}).status_code == 401


def test_logout_everywhere_racing_refreshes_leaves_nothing_alive(fleet: Fleet) -> None:
    assert register(fleet, "carol").status_code == 201
    pairs = [login(fleet, "carol").json() for _ in range(6)]
    access = pairs[0]["access_token"]

    def act(i: int) -> httpx.Response:
        if i == 0:
            return fleet.request(
                "POST", "/auth/logout-all", headers={"Authorization": f"Bearer {access}"}
            )
        pair = pairs[i % len(pairs)]
        return fleet.request("POST", "/auth/refresh", json={"refresh_token": pair["refresh_token"]})

    results = parallel(18, act)
    assert results[0].status_code == 200
    issued = [r.json() for r in results[1:] if r.status_code == 200]
    time.sleep(2 * SYNC_SECONDS + 0.2)
    for pair in [*pairs, *issued]:
        statuses = fleet.every_worker(
            "GET", "/api/hello", headers={"Authorization": f"Bearer {pair['access_token']}"}
        )
        assert set(statuses.values()) == {401}, statuses
        refreshed = fleet.request(
            "POST", "/auth/refresh", json={"refresh_token": pair["refresh_token"]}
        )
        assert refreshed.status_code == 401


def test_a_revocation_through_one_worker_holds_on_every_worker_within_the_bound(
    fleet: Fleet,
) -> None:
    assert register(fleet, "dave").status_code == 201
    pair = login(fleet, "dave").json()
    bearer = {"Authorization": f"Bearer {pair['access_token']}"}
    assert set(fleet.every_worker("GET", "/api/hello", headers=bearer).values()) == {200}
    logout = fleet.request("POST", "/auth/logout", json={"refresh_token": pair["refresh_token"]})
    assert logout.status_code == 204
    time.sleep(2 * SYNC_SECONDS + 0.1)  # the documented bound: twice the sync interval
    assert set(fleet.every_worker("GET", "/api/hello", headers=bearer).values()) == {401}


def test_the_shared_login_limit_admits_no_more_than_the_limit_in_total(fleet: Fleet) -> None:
    assert register(fleet, "erin").status_code == 201
    responses = parallel(30, lambda _: login(fleet, "erin", "Wrong-Password-1"))
    statuses = [r.status_code for r in responses]
    assert len({r.headers["x-worker"] for r in responses}) == WORKERS
    assert statuses.count(401) <= LOGIN_ACCOUNT_LIMIT, statuses
    assert statuses.count(401) + statuses.count(429) == 30


def test_kill_9_of_a_worker_mid_load_loses_nothing_that_was_answered(
    fleet: Fleet,
) -> None:
    victim = int(next(iter(fleet.worker_pids())))
    answered: list[tuple[str, dict[str, Any]]] = []

    def work(i: int) -> None:
        name = f"load{i}"
        try:
            if register(fleet, name).status_code == 201:
                answered.append((name, {}))
                response = login(fleet, name)
                if response.status_code == 200:
                    answered[-1] = (name, response.json())
        except httpx.TransportError:
            pass  # cut off by the kill: no answer, no promise

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(work, i) for i in range(40)]
        time.sleep(0.3)
        os.kill(victim, signal.SIGKILL)
        concurrent.futures.wait(futures)
    assert answered
    assert str(victim) not in fleet.worker_pids()  # uvicorn started another in its place
    for name, tokens in answered:
        assert login(fleet, name).status_code == 200, name
        if tokens:
            refreshed = fleet.request(
                "POST", "/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
            )
            assert refreshed.status_code == 200, name
