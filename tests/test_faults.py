"""Fault injection: every store call of create_user, refresh, revoke and revoke-all fails
in turn, before the request reaches the store or after (the write happened, the answer was
lost). After each, the invariants hold: no user that logs in half-made, no name reserved
forever, no session lost or duplicated."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest
from conftest import make_service, make_settings
from support import StoreWrapper

from s3auth_asgi import (
    EmailTakenError,
    S3AuthService,
    StoreUnavailableError,
    TokenPair,
    TokenRevokedError,
    User,
    UsernameTakenError,
)
from s3auth_asgi.storage import ObjectInfo, ObjectStore, Store, keys

pytestmark = pytest.mark.anyio
R = TypeVar("R")
PASSWORD = "SecurePass123!"
before_or_after = pytest.mark.parametrize("after", [False, True], ids=["before", "after"])


class FaultyStore(StoreWrapper):
    """Delegates to a real store; the `fail_at`-th call raises, before or after it runs."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.calls = 0
        self.fail_at: int | None = None
        self.after = False

    def _next_fails(self, name: str) -> bool:
        """Counts a call; raises now if it is the one to fail before it runs."""
        self.calls += 1
        failing = self.calls == self.fail_at
        if failing and not self.after:
            raise StoreUnavailableError(f"injected fault before {name}")
        return failing

    async def call(self, name: str, run: Callable[[], Awaitable[R]]) -> R:
        failing = self._next_fails(name)
        result = await run()
        if failing:
            raise StoreUnavailableError(f"injected fault after {name}")
        return result

    async def list(self, prefix: str, offset: str | None = None) -> AsyncIterator[ObjectInfo]:
        failing = self._next_fails("list")
        async for item in self.inner.list(prefix, offset):
            yield item
        if failing:
            raise StoreUnavailableError("injected fault after list")


def _faulty(store_url: str, **overrides: Any) -> tuple[S3AuthService, FaultyStore]:
    faulty = FaultyStore(ObjectStore.from_url(store_url))
    service = make_service(store_url, store=faulty, **overrides)
    return service, faulty


@before_or_after
@pytest.mark.parametrize("step", [1, 2, 3, 4])  # username, skeleton, email, user
async def test_create_user_faults(store_url: str, step: int, after: bool) -> None:
    # A reservation older than 0 s counts as abandoned, so "not forever" is testable now.
    service, faulty = _faulty(store_url, name_reservation_seconds=0)
    faulty.fail_at, faulty.after = step, after
    with pytest.raises(StoreUnavailableError):
        await service.create_user("faulty", "faulty@example.com", PASSWORD)
    faulty.fail_at = None
    assert await service.authenticate_user("faulty", PASSWORD) is None
    assert await service.authenticate_user("faulty@example.com", PASSWORD) is None
    assert [i async for i in faulty.inner.list(keys.USERS)] == []
    # Neither name stays reserved: the same registration now succeeds.
    user = await service.create_user("faulty", "faulty@example.com", PASSWORD)
    found = await service.authenticate_user("faulty", PASSWORD)
    assert found is not None and found.id == user.id
    assert len([i async for i in faulty.inner.list(keys.USERS)]) == 1


async def test_abandoned_reservation_holds_until_its_time(store_url: str) -> None:
    now = [time.time()]
    faulty = FaultyStore(ObjectStore.from_url(store_url))
    service = S3AuthService(make_settings(store_url), store=faulty, clock=lambda: now[0])
    faulty.fail_at, faulty.after = 1, True  # the username index is written, then "lost"
    with pytest.raises(StoreUnavailableError):
        await service.create_user("held", "held@example.com", PASSWORD)
    faulty.fail_at = None
    with pytest.raises(UsernameTakenError):
        await service.create_user("held", "other@example.com", PASSWORD)
    now[0] += service.settings.name_reservation_seconds + 1
    taken_over = await service.create_user("held", "other@example.com", PASSWORD)
    found = await service.authenticate_user("held", PASSWORD)
    assert found is not None and found.id == taken_over.id


@before_or_after
@pytest.mark.parametrize("step", [1, 2, 3, 4])  # user GET, new index, user PUT, old index
async def test_email_change_faults(store_url: str, step: int, after: bool) -> None:
    now = [time.time()]
    faulty = FaultyStore(ObjectStore.from_url(store_url))
    service = S3AuthService(make_settings(store_url), store=faulty, clock=lambda: now[0])
    user = await service.create_user("mover", "old@example.com", PASSWORD)
    faulty.calls, faulty.fail_at, faulty.after = 0, step, after
    if step < 4:
        with pytest.raises(StoreUnavailableError):
            await service.update_user(user.id, email="new@example.com")
    else:  # the user holds its new address: freeing the old one is a clean-up
        await service.update_user(user.id, email="new@example.com")
    assert faulty.calls >= step  # the fault was met
    faulty.fail_at = None
    stored = await service.get_user_by_id(user.id)
    assert stored is not None
    (other,) = {"old@example.com", "new@example.com"} - {stored.email}
    # The address the account holds is its own: it logs in by it, nobody can take it.
    found = await service.authenticate_user(stored.email, PASSWORD)
    assert found is not None and found.id == user.id
    with pytest.raises(EmailTakenError):
        await service.create_user("thief", stored.email, PASSWORD)
    # The other is free, at once or once its entry counts as abandoned.
    now[0] += service.settings.name_reservation_seconds + 1
    taker = await service.create_user("taker", other, PASSWORD)
    found = await service.authenticate_user(other, PASSWORD)
    assert found is not None and found.id == taker.id


async def _fail_once(
    store_url: str, step: int, after: bool, call: Any, sessions: int = 1
) -> tuple[S3AuthService, User, list[TokenPair]]:
    """A user with `sessions` sessions; then `call(service, user, pairs)` with the
    `step`-th store call failing (before or after it runs)."""
    service, faulty = _faulty(store_url)
    user = await service.create_user("faulty", "faulty@example.com", PASSWORD)
    pairs = [await service.create_token_pair(user) for _ in range(sessions)]
    faulty.calls, faulty.fail_at, faulty.after = 0, step, after
    with pytest.raises(StoreUnavailableError):
        await call(service, user, pairs)
    faulty.fail_at = None
    return service, user, pairs


@before_or_after
@pytest.mark.parametrize("step", [1, 2, 3])  # the session GET, the cap's LIST, the PUT
async def test_refresh_faults(store_url: str, step: int, after: bool) -> None:
    service, user, (pair,) = await _fail_once(
        store_url, step, after, lambda s, u, p: s.refresh_access_token(p[0].refresh_token)
    )
    # The client retries with the token it has: it works (a lost answer is covered by
    # the grace window) and there is still exactly one session.
    again = await service.refresh_access_token(pair.refresh_token)
    service.decode_token(again.access_token)
    assert len(await service.get_user_active_sessions(user.id)) == 1
    await service.refresh_access_token(again.refresh_token)


@before_or_after
@pytest.mark.parametrize("step", [1, 2, 3])
async def test_revoke_faults(store_url: str, step: int, after: bool) -> None:
    service, user, (pair,) = await _fail_once(
        store_url, step, after, lambda s, u, p: s.revoke_refresh_token(p[0].refresh_token)
    )
    # A retry finishes the logout, whatever state the failure left.
    await service.revoke_refresh_token(pair.refresh_token)
    assert await service.get_user_active_sessions(user.id) == []
    with pytest.raises(TokenRevokedError):
        service.decode_token(pair.access_token)
    with pytest.raises(TokenRevokedError):
        await service.refresh_access_token(pair.refresh_token)


@before_or_after
@pytest.mark.parametrize("step", [1, 2, 3])
async def test_revoke_all_faults(store_url: str, step: int, after: bool) -> None:
    service, user, pairs = await _fail_once(
        store_url, step, after, lambda s, u, p: s.revoke_all_user_tokens(u.id), sessions=3
    )
    await service.revoke_all_user_tokens(user.id)
    assert await service.get_user_active_sessions(user.id) == []
    for pair in pairs:
        with pytest.raises(TokenRevokedError):
            service.decode_token(pair.access_token)
