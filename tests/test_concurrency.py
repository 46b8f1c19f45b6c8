"""Concurrent registrations and refreshes through separate service objects, on every store."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
from conftest import make_service, on_every_store
from support import held_index_keys

from s3auth_asgi import (
    ConflictError,
    EmailTakenError,
    RefreshTokenReuseError,
    S3AuthService,
    TokenPair,
    UsernameTakenError,
)
from s3auth_asgi.identifiers import fold
from s3auth_asgi.storage import ObjectStore, keys

pytestmark = pytest.mark.anyio
PASSWORD = "SecurePass123!"


def _services(store_url: str, count: int, **overrides: object) -> list[S3AuthService]:
    """Separate service objects; memory:// is per-object, so those share one store."""
    shared = ObjectStore.from_url(store_url) if store_url == "memory://" else None
    return [make_service(store_url, store=shared, **overrides) for _ in range(count)]


# SeaweedFS makes a conditional PUT wait for a per-object lock that it polls once a second,
# so a race of many writers on one object takes seconds, the loser that waits longest ~10.
SEAWEEDFS_LOCK_POLLING = "SeaweedFS polls its per-object write lock once a second"


async def _register_all(
    services: list[S3AuthService], same: str
) -> tuple[list[str], list[Exception]]:
    winners: list[str] = []
    losers: list[Exception] = []

    async def register(i: int, service: S3AuthService) -> None:
        name = "contested" if same == "username" else f"user{i}"
        email = "contested@example.com" if same == "email" else f"user{i}@example.com"
        try:
            winners.append((await service.create_user(name, email, PASSWORD)).id)
        except (UsernameTakenError, EmailTakenError) as exc:
            losers.append(exc)

    async with anyio.create_task_group() as tg:
        for i, service in enumerate(services):
            tg.start_soon(register, i, service)
    return winners, losers


@on_every_store
@pytest.mark.parametrize("same", ["username", "email"])
async def test_fifty_concurrent_registrations_one_winner(
    store_url: str, backend: str, same: str
) -> None:
    if backend == "seaweedfs" and same == "email":
        pytest.skip(
            f"{SEAWEEDFS_LOCK_POLLING}, so a 50-way race costs up to ~15 s; "
            "the username race asserts the same conditional create there"
        )
    services = _services(store_url, 50)
    winners, losers = await _register_all(services, same)
    expected = UsernameTakenError if same == "username" else EmailTakenError
    assert len(winners) + len(losers) == 50
    assert all(isinstance(exc, expected) for exc in losers)
    store = services[0].store
    users = {keys.id_from_key(i.key) async for i in store.list(keys.USERS)}
    if backend == "s3":
        # moto's conditional PUT is not atomic under heavy interleaving: assert that
        # nothing is half-made and the name resolves to one of the winners.
        assert len(winners) >= 1
        assert users == set(winners)
    else:
        # SeaweedFS checks the condition and writes under a per-object lock, Azurite in one
        # step of its event loop, fake-gcs-server under its store's lock: atomic.
        assert len(winners) == 1
        assert users == set(winners)
    lookup = (
        services[0].get_user_by_username("contested")
        if same == "username"
        else services[0].get_user_by_email("contested@example.com")
    )
    owner = await lookup
    assert owner is not None and owner.id in winners


_REGISTRAR = """
import asyncio, json, sys, time
sys.path.insert(0, sys.argv[3])
from conftest import make_service
from s3auth_asgi import UsernameTakenError

async def main(url, start_at):
    services = [make_service(url) for _ in range(10)]
    while time.time() < start_at:
        await asyncio.sleep(0.001)
    async def one(i, s):
        try:
            await s.create_user("contested", f"p{sys.argv[4]}-{i}@example.com", "SecurePass123!")
            return "won"
        except UsernameTakenError:
            return "taken"
    print(json.dumps(await asyncio.gather(*(one(i, s) for i, s in enumerate(services)))))

asyncio.run(main(sys.argv[1], float(sys.argv[2])))
"""


@pytest.mark.slow
async def test_fifty_registrations_from_five_processes_on_file_store(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    start_at = time.time() + 3
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _REGISTRAR,
                url,
                str(start_at),
                str(Path(__file__).parent),
                str(n),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(5)
    ]
    outcomes = [o for p in procs for o in json.loads(p.communicate(timeout=120)[0])]
    assert sorted(outcomes) == ["taken"] * 49 + ["won"]
    store = ObjectStore.from_url(url)
    assert len([i async for i in store.list(keys.USERS)]) == 1


@on_every_store
async def test_twenty_concurrent_refreshes_one_rotation(store_url: str) -> None:
    # A loser that found the token current answers from the winner's rotation however long
    # it waited to learn that it lost (on SeaweedFS over 10 s: SEAWEEDFS_LOCK_POLLING); one
    # whose read came after the rotation, within the grace window.
    services = _services(store_url, 20)
    user = await services[0].create_user("refresher", "refresher@example.com", PASSWORD)
    original = await services[0].create_token_pair(user)
    answers: list[TokenPair] = []

    async def refresh(service: S3AuthService) -> None:
        answers.append(await service.refresh_access_token(original.refresh_token))

    async with anyio.create_task_group() as tg:
        for service in services:
            tg.start_soon(refresh, service)
    # Exactly one new refresh token: the losers of the race got the winner's result. This
    # holds on moto too: were its If-Match to let two writers through, both would have
    # written the same generation, whose refresh token is the same string.
    assert len({a.refresh_token for a in answers}) == 1
    assert len(answers) == 20
    (current,) = {a.refresh_token for a in answers}
    sessions = await services[1].get_user_active_sessions(user.id)
    assert len(sessions) == 1
    newer = await services[2].refresh_access_token(current)
    with pytest.raises(RefreshTokenReuseError):
        await services[3].refresh_access_token(original.refresh_token)
    assert await services[4].get_user_active_sessions(user.id) == []
    assert newer.refresh_token != current


@pytest.mark.parametrize("store_url", ["memory", "file", "azure"], indirect=True)
async def test_concurrent_email_changes_keep_one_address_and_free_the_others(
    store_url: str,
) -> None:
    services = _services(store_url, 8)
    user = await services[0].create_user("mover", "mover@example.com", PASSWORD)
    # One of them only changes the address's case, which keeps its index entry.
    wanted = ["Mover@example.com", *(f"moved{i}@example.com" for i in range(len(services) - 1))]
    changed: list[str] = []
    refused: list[Exception] = []

    async def move(service: S3AuthService, address: str) -> None:
        try:
            changed.append((await service.update_user(user.id, email=address)).email)
        except ConflictError as exc:
            refused.append(exc)

    async with anyio.create_task_group() as tg:
        for service, address in zip(services, wanted, strict=True):
            tg.start_soon(move, service, address)
    assert len(changed) + len(refused) == len(services)
    assert all(type(exc) is ConflictError for exc in refused)  # "changed concurrently"
    # A change that read the record after another landed replaces it, in turn: the last
    # of them is what is stored.
    assert changed
    stored = await services[1].get_user_by_id(user.id)
    assert stored is not None and stored.email in changed
    owner = await services[2].get_user_by_email(stored.email)
    assert owner is not None and owner.id == user.id
    # Every other address, the first included, is free again: no index entry holds it.
    indexed = await held_index_keys(services[0].store, keys.EMAIL_INDEX)
    assert indexed == [keys.email_index(fold(stored.email))]
    free = {fold(address): address for address in ["mover@example.com", *wanted]}
    del free[fold(stored.email)]
    for i, address in enumerate(free.values()):
        await services[3].create_user(f"taker{i}", address, PASSWORD)
