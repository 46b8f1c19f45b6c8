"""Refresh-token rotation and the session cap as a fleet runs them: several instances on one
store, their clocks apart by up to the skew allowance (10 s by default) and beyond it.

- One token presented to every instance at once, each reading the session before any
  writes: one rotation, every instance answers with its pair, whatever its clock; the
  token presented again after the grace is a reuse, and the session has then ended on
  every instance, its access tokens too.
- Logins on every instance at once, under a cap: the newest `cap` sessions by their ids
  refresh, on whichever instance, and no other.
- A rotation that ends the sessions beyond the cap, with the store failing at any of its
  requests: the client's retry, on another instance, is answered, and the session goes on
  alone.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import anyio
import pytest
from support import SharedTime, StoreWrapper, skewed_host, stored_user
from test_faults import FaultyStore

from s3auth_asgi import (
    InvalidTokenError,
    RefreshTokenReuseError,
    S3AuthService,
    StoreUnavailableError,
    TokenPair,
    TokenRevokedError,
)
from s3auth_asgi.models import Session
from s3auth_asgi.storage import ObjectStore, Store, keys

pytestmark = pytest.mark.anyio
OFFSETS = (0.0, 8.0, -8.0, 60.0, -60.0)
"""The instances' clocks against the true time: within the allowance, and beyond it."""


class ReadBeforeAnyWrite(StoreWrapper):
    """Holds an instance's write of a session until every instance of the fleet has reached
    its own: each has read the session, and found its token current, before any rotation
    lands."""

    def __init__(self, inner: Store, arrived: list[int], everyone: anyio.Event, n: int) -> None:
        super().__init__(inner)
        self.arrived, self.everyone, self.n = arrived, everyone, n

    async def replace(self, key: str, value: Any, etag: str) -> str:
        if key.startswith(keys.SESSIONS) and not self.everyone.is_set():
            self.arrived.append(1)
            if len(self.arrived) == self.n:
                self.everyone.set()
            await self.everyone.wait()
        return await self.inner.replace(key, value, etag)


def sid_of(pair: TokenPair) -> str:
    return pair.refresh_token.split(".")[2]


@pytest.mark.parametrize("store_url", ["file", "s3"], indirect=True)
async def test_one_token_at_every_instance_at_once_is_rotated_once(store_url: str) -> None:
    time, inner = SharedTime(), ObjectStore.from_url(store_url)
    arrived: list[int] = []
    everyone = anyio.Event()
    fleet = [
        skewed_host(ReadBeforeAnyWrite(inner, arrived, everyone, len(OFFSETS)), time, offset)
        for offset in OFFSETS
    ]
    user = await stored_user(fleet[0])
    pair = await fleet[0].create_token_pair(user)
    answers: dict[int, TokenPair] = {}

    async def refresh(index: int) -> None:
        answers[index] = await fleet[index].refresh_access_token(pair.refresh_token)

    async with anyio.create_task_group() as tasks:
        for index in range(len(fleet)):
            tasks.start_soon(refresh, index)
    assert len(answers) == len(fleet)
    assert len({answer.refresh_token for answer in answers.values()}) == 1
    key = keys.session(user.id, sid_of(pair))
    stored = await inner.get(key, Session)
    assert stored is not None and stored.value.generation == 1
    # Which access tokens each instance accepts: not those issued by a clock further ahead
    # of its own than the leeway, which it takes for issued in the future.
    accepted = []
    for host in fleet:
        await host.ensure_fresh(strict=True)
        for answer in answers.values():
            try:
                host.decode_token(answer.access_token)
            except InvalidTokenError:
                continue
            accepted.append((host, answer.access_token))
    assert len(accepted) > len(fleet)

    # Past the grace and the allowance on the clock furthest ahead, whichever rotated.
    time.advance(30)
    with pytest.raises(RefreshTokenReuseError):
        await fleet[OFFSETS.index(max(OFFSETS))].refresh_access_token(pair.refresh_token)
    assert await inner.get(key, Session) is None
    for host in fleet:
        with pytest.raises(TokenRevokedError):
            await host.refresh_access_token(answers[0].refresh_token)
        await host.ensure_fresh(strict=True)
    for host, access_token in accepted:
        with pytest.raises(TokenRevokedError):
            host.decode_token(access_token)


async def refreshed_at_once(
    fleet: list[S3AuthService], pairs: list[TokenPair], shift: int
) -> dict[str, TokenPair]:
    """Each pair refreshed at once, the i-th on instance i + `shift`: the new pairs of the
    sessions that were not refused, by session id."""
    refreshed: dict[str, TokenPair] = {}

    async def refresh(index: int, pair: TokenPair) -> None:
        host = fleet[(index + shift) % len(fleet)]
        with contextlib.suppress(TokenRevokedError):
            refreshed[sid_of(pair)] = await host.refresh_access_token(pair.refresh_token)

    async with anyio.create_task_group() as tasks:
        for index, pair in enumerate(pairs):
            tasks.start_soon(refresh, index, pair)
    return refreshed


async def test_logins_at_once_on_instances_whose_clocks_disagree_keep_the_newest_under_the_cap(
    tmp_path: Path,
) -> None:
    cap = 3
    time, inner = SharedTime(), ObjectStore.from_url(f"file://{tmp_path / 'store'}")
    fleet = [skewed_host(inner, time, offset, max_sessions_per_user=cap) for offset in OFFSETS]
    user = await stored_user(fleet[0])
    pairs: list[TokenPair] = []

    async def log_in(index: int) -> None:
        pairs.append(await fleet[index % len(fleet)].create_token_pair(user))

    async with anyio.create_task_group() as tasks:
        for index in range(2 * len(fleet)):
            tasks.start_soon(log_in, index)
    # Ranked by their ids, each the time its instance's clock gave: one order everywhere.
    newest = sorted(sid_of(p) for p in pairs)[-cap:]
    for shift in range(2):  # every session tries on one instance, then on another
        time.advance(1)
        refreshed = await refreshed_at_once(fleet, pairs, shift)
        assert sorted(refreshed) == newest
        pairs = [refreshed.get(sid_of(p), p) for p in pairs]
    listed = [info.key async for info in inner.list(keys.user_sessions(user.id))]
    assert sorted(keys.id_from_key(k) for k in listed) == newest


REQUESTS = ["get", "list", "get", "create", "delete_many", "replace"]
"""A rotation of the newer of two sessions under a cap of one: the session, the listing,
the other session (more listed than the cap), the revocation of the one beyond the cap,
its DELETE, the rotation."""


@pytest.mark.parametrize("after", [False, True], ids=["before", "after"])
@pytest.mark.parametrize("at", range(1, len(REQUESTS) + 1))
async def test_a_rotation_ending_sessions_beyond_the_cap_survives_a_failure_anywhere(
    at: int, after: bool
) -> None:
    time, inner = SharedTime(), ObjectStore.from_url("memory://")
    faulty = FaultyStore(inner)
    host = skewed_host(faulty, time, 0.0, max_sessions_per_user=1)
    ahead = skewed_host(inner, time, 8.0, max_sessions_per_user=1)
    user = await stored_user(host)
    older = await host.create_token_pair(user)
    time.advance(1)
    newer = await host.create_token_pair(user)
    await host.blacklist.sync()  # fresh: the failures counted are the rotation's
    time.advance(1)
    faulty.calls, faulty.fail_at, faulty.after = 0, at, after
    with pytest.raises(StoreUnavailableError):
        await host.refresh_access_token(newer.refresh_token)
    assert faulty.calls == at
    faulty.fail_at = None
    time.advance(2)
    retried = await ahead.refresh_access_token(newer.refresh_token)
    assert await host.refresh_access_token(retried.refresh_token)
    with pytest.raises(TokenRevokedError):
        await ahead.refresh_access_token(older.refresh_token)
    listed = [info.key async for info in inner.list(keys.user_sessions(user.id))]
    assert [keys.id_from_key(k) for k in listed] == [sid_of(newer)]


async def test_the_rotation_ending_sessions_beyond_the_cap_makes_the_requests_swept() -> None:
    time, inner = SharedTime(), ObjectStore.from_url("memory://")
    logged: list[str] = []

    class Named(FaultyStore):
        def _next_fails(self, name: str) -> bool:
            logged.append(name)
            return super()._next_fails(name)

    host = skewed_host(Named(inner), time, 0.0, max_sessions_per_user=1)
    user = await stored_user(host)
    await host.create_token_pair(user)
    time.advance(1)
    newer = await host.create_token_pair(user)
    await host.blacklist.sync()
    logged.clear()
    await host.refresh_access_token(newer.refresh_token)
    assert logged == REQUESTS
