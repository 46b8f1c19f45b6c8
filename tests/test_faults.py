"""Fault injection: every store call of create_user, refresh, revoke and revoke-all fails
in turn, before the request reaches the store or after (the write happened, the answer was
lost). After each, the invariants hold: no user that logs in half-made, no name reserved
forever, no session lost or duplicated.

Each service checks its store's conditional writes before injection starts, as its start
would (`check_store`): on a remote store the check is the first write's otherwise, and the
faults meant for the operation's calls would land in the check's (test_store_check.py's).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

import msgspec
import pytest
from conftest import make_service, make_settings
from support import RacedUserWrite, StoreWrapper, late_session

from s3auth_asgi import (
    EmailTakenError,
    S3AuthService,
    StoreUnavailableError,
    TokenPair,
    TokenRevokedError,
    User,
    UsernameTakenError,
    UserNotFoundError,
)
from s3auth_asgi.account_tokens import InvalidAccountTokenError
from s3auth_asgi.session_generation import next_generation
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
    await service.check_store()
    faulty.calls, faulty.fail_at, faulty.after = 0, step, after
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
    await service.check_store()
    # The username index is written, then "lost".
    faulty.calls, faulty.fail_at, faulty.after = 0, 1, True
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
# user GET, old index GET, new index, user PUT, old index released
@pytest.mark.parametrize("step", [1, 2, 3, 4, 5])
async def test_email_change_faults(store_url: str, step: int, after: bool) -> None:
    now = [time.time()]
    faulty = FaultyStore(ObjectStore.from_url(store_url))
    service = S3AuthService(make_settings(store_url), store=faulty, clock=lambda: now[0])
    user = await service.create_user("mover", "old@example.com", PASSWORD)
    faulty.calls, faulty.fail_at, faulty.after = 0, step, after
    if step < 5:
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
    await service.blacklist.sync()  # fresh: the calls counted are the operation's own
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
@pytest.mark.parametrize("step", [1, 2, 3])  # the session GET, its DELETE, the revocation
async def test_revoke_faults(store_url: str, step: int, after: bool) -> None:
    service, user, (pair,) = await _fail_once(
        store_url, step, after, lambda s, u, p: s.revoke_refresh_token(p[0].refresh_token)
    )
    # The DELETE comes first (step 2): before it lands, the logout has ended nothing, and
    # a retry ends the session; once it has, the session has ended for good, and a retry
    # finds none (answered as for any token of an ended one).
    deleted = step == 3 or (after and step == 2)
    assert await service.revoke_refresh_token(pair.refresh_token) is not deleted
    assert await service.get_user_active_sessions(user.id) == []
    with pytest.raises(TokenRevokedError):
        await service.refresh_access_token(pair.refresh_token)
    await service.blacklist.sync()
    if deleted and (step, after) != (3, True):
        # Cut short between the DELETE and the revocation: nothing left to refresh, and
        # its access tokens live out their lifetime.
        service.decode_token(pair.access_token)
    else:
        with pytest.raises(TokenRevokedError):
            service.decode_token(pair.access_token)


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


class FailFirst(StoreWrapper):
    """The first request `name` whose key contains `part` fails, before it is sent or after
    it landed (its answer lost)."""

    def __init__(self, inner: Store, name: str, part: str, *, after: bool) -> None:
        super().__init__(inner)
        self.target: tuple[str, str] | None = (name, part)
        self.after = after

    async def _maybe_fail(self, name: str, key: str, run: Callable[[], Awaitable[R]]) -> R:
        if self.target is None or self.target[0] != name or self.target[1] not in key:
            return await run()
        self.target = None
        if not self.after:
            raise StoreUnavailableError(f"injected fault before {name}")
        await run()
        raise StoreUnavailableError(f"injected fault after {name}")

    async def create(self, key: str, value: Any) -> str:
        return await self._maybe_fail("create", key, lambda: self.inner.create(key, value))

    async def replace(self, key: str, value: Any, etag: str) -> str:
        return await self._maybe_fail("replace", key, lambda: self.inner.replace(key, value, etag))

    async def delete_many(self, keys: Iterable[str]) -> int:
        batch = list(keys)
        return await self._maybe_fail(
            "delete_many", " ".join(batch), lambda: self.inner.delete_many(batch)
        )

    async def delete(self, key: str) -> None:
        await self._maybe_fail("delete", key, lambda: self.inner.delete(key))


# Where a change that ends sessions can fail half-way: its marker's write, or the answer of
# its user-record write (landed, then lost).
HALF_DONE = pytest.mark.parametrize(
    ("name", "part", "after"),
    [("create", "~generation.", False), ("replace", "users/", True)],
    ids=["marker lost", "answer lost"],
)


async def _half_done(
    name: str, part: str, after: bool, change: Callable[[S3AuthService, User], Awaitable[Any]]
) -> tuple[S3AuthService, S3AuthService, TokenPair, Any]:
    """A user with a session (the thief's), then `change` failing half-way once; returns the
    failing service, a healthy one on the same store, the thief's pair and the user."""
    shared = ObjectStore.from_url("memory://")
    healthy = make_service(store=shared)
    user = await healthy.create_user("victim", "victim@example.com", PASSWORD)
    thief = await healthy.create_token_pair(user)
    failing = make_service(store=FailFirst(shared, name, part, after=after))
    with pytest.raises(StoreUnavailableError):
        await change(failing, user)
    return failing, healthy, thief, user


@HALF_DONE
async def test_an_account_change_that_failed_half_way_ends_the_sessions_on_retry(
    name: str, part: str, after: bool
) -> None:
    failing, healthy, thief, user = await _half_done(
        name, part, after, lambda s, u: s.update_user(u.id, is_active=False, is_admin=False)
    )
    await failing.update_user(user.id, is_active=False, is_admin=False)  # the retry
    # Its access token is refused before any refresh, on an instance that made no change:
    # the sessions were ended before the record's write.
    other = make_service(store=healthy.store)
    await other.ensure_fresh()
    with pytest.raises(TokenRevokedError):
        other.decode_token(thief.access_token)
    with pytest.raises(TokenRevokedError):
        await healthy.refresh_access_token(thief.refresh_token)


@HALF_DONE
async def test_a_password_reset_that_failed_half_way_ends_the_sessions_on_retry(
    name: str, part: str, after: bool
) -> None:
    tokens: list[str] = []

    async def reset(service: S3AuthService, user: User) -> None:
        tokens.append(await service.account_tokens.issue("password-reset", user))
        await service.reset_password(tokens[0], "Brand-new-pass-7")

    failing, healthy, thief, _ = await _half_done(name, part, after, reset)
    # The reset landed both ways, so the owner's second try finds the link spent; reading
    # the account for it finishes ending the sessions.
    with pytest.raises(InvalidAccountTokenError):
        await failing.reset_password(tokens[0], "Brand-new-pass-7")
    with pytest.raises(TokenRevokedError):
        await healthy.refresh_access_token(thief.refresh_token)


async def test_a_change_that_lost_a_race_writes_the_marker_of_the_record_it_read_again() -> None:
    """A disabling whose host stopped after its record's write, before its marker's, lands
    between another change's read and write: that change's conflict has it read the record
    again, and that read, as every read of a record for a change, writes the marker."""
    shared = ObjectStore.from_url("memory://")
    healthy = make_service(store=shared)
    user = await healthy.create_user("victim", "victim@example.com", PASSWORD)
    thief = await healthy.create_token_pair(user)
    disabled: list[str] = []

    async def disabled_half_way() -> None:
        found = await shared.get(keys.user(user.id), User)
        assert found is not None
        generation = next_generation(found.value.session_generation)
        record = msgspec.structs.replace(
            found.value, is_active=False, session_generation=generation
        )
        await shared.replace(keys.user(user.id), record, found.etag)
        disabled.append(generation)

    other = make_service(store=RacedUserWrite(shared, disabled_half_way))
    await other.update_user(user.id, full_name="Victim")
    assert await shared.get(keys.generation_marker(user.id, disabled[0]), dict) is not None
    with pytest.raises(TokenRevokedError):
        await healthy.refresh_access_token(thief.refresh_token)


async def test_a_deletion_whose_answer_was_lost_is_finished_by_its_retry() -> None:
    failing, healthy, _, user = await _half_done(
        "delete_many", "users/", True, lambda s, u: s.delete_user(u.id)
    )
    # A login that read the user before the deletion writes its session after it, on a
    # host that does not read the record back (`late_session`).
    late = await late_session(healthy, user)
    assert await failing.delete_user(user.id) is False  # the retry: no user any more
    with pytest.raises(TokenRevokedError):
        await healthy.refresh_access_token(late.refresh_token)
    assert await failing.delete_user("0" * 32) is False  # nobody's: nothing to finish


@pytest.mark.parametrize(
    "name", ["replace", "delete_many"], ids=["closing answer lost", "delete failed"]
)
async def test_a_deletion_that_failed_with_the_record_closed_is_finished_by_its_retry(
    name: str,
) -> None:
    failing, healthy, _, user = await _half_done(
        name, "users/", name == "replace", lambda s, u: s.delete_user(u.id)
    )
    # The record is closed and still there: no change applies to it, and it holds its
    # names until the deletion lets them go.
    with pytest.raises(UserNotFoundError):
        await healthy.update_user(user.id, email="elsewhere@example.com")
    with pytest.raises(EmailTakenError):
        await healthy.create_user("other", "victim@example.com", PASSWORD)
    # Nor does it log anyone in: the account is on its way out.
    assert await healthy.authenticate_user("victim", PASSWORD) is None
    failing.store.reset_counts()
    assert await failing.delete_user(user.id) is True  # the retry, which closes nothing
    # The record GET, a closing marker of its own; LIST, revocation, batch DELETE, the
    # `deleted` marker; a GET and a PUT per name, and their batch DELETE.
    assert dict(failing.store.requests) == {"get": 4, "put": 6, "list": 1, "delete": 2}
    assert await healthy.get_user_by_id(user.id) is None
    assert await healthy.create_user("victim", "victim@example.com", PASSWORD)
