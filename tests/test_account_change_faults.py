"""A disabling or a demotion whose change fails at any store request, before the request is
sent or after it landed (its answer lost), on file://, with other instances on the same
store.

Either the record is unchanged, and the same request tried again makes the change; or the
change holds, and no earlier session is left: on an instance that never saw the change
made, its access tokens (of a disabled account, or carrying the old privileges) and its
refresh token are refused at once, not only when the access token expires. A change of the
account that ends no session makes no request more than it did.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from conftest import make_service, make_settings
from support import RacedUserWrite
from test_faults import FailFirst, FaultyStore
from test_password_change_faults import ENDED_FIRST, RequestLog
from test_password_change_faults import _assert_thief_is_out as _assert_out
from test_session_generation import _markers

from s3auth_asgi import (
    ConflictError,
    EmailTakenError,
    S3AuthService,
    StoreUnavailableError,
    TokenPair,
    User,
)
from s3auth_asgi.storage import ObjectStore

pytestmark = pytest.mark.anyio
PASSWORD = "SecurePass123!"
RESERVATION = 120

Change = Callable[[S3AuthService, User], Awaitable[User]]


async def disable(service: S3AuthService, user: User) -> User:
    return await service.update_user(user.id, is_active=False)


async def demote(service: S3AuthService, user: User) -> User:
    return await service.update_user(user.id, is_admin=False, scopes=[])


def disabled(user: User) -> bool:
    return not user.is_active


def demoted(user: User) -> bool:
    return not user.is_admin and user.scopes == []


# name: (change, whether a record shows it made)
CHANGES: dict[str, tuple[Change, Callable[[User], bool]]] = {
    "disable": (disable, disabled),
    "demote": (demote, demoted),
}
# Either change's requests, in order, for a user with one session (and no earlier change):
# the sessions are ended before the record is written, as for a new password.
REQUESTS = ["get user", *ENDED_FIRST]
# Before, the record's write came first: get 1, put 3, list 1, delete 1. One LIST more.
COUNTS = {"get": 1, "put": 3, "list": 2, "delete": 1}
STEPS = [
    pytest.param(name, step, after, id=f"{name}-{step}-{'after' if after else 'before'}")
    for name in CHANGES
    for step in range(1, len(REQUESTS) + 1)
    for after in (False, True)
]


async def _victim(url: str) -> tuple[User, TokenPair]:
    """An administrator with a scope of its own, and a session of it (the thief's)."""
    service = make_service(url)
    user = await service.create_user(
        "victim", "victim@example.com", PASSWORD, is_admin=True, scopes=["reports"]
    )
    return user, await service.create_token_pair(user)


async def _made(url: str, name: str, user: User) -> bool:
    found = await make_service(url).get_user_by_id(user.id)
    assert found is not None
    return CHANGES[name][1](found)


@pytest.mark.parametrize("name", CHANGES)
async def test_the_requests_of_an_account_change_in_order(tmp_path: Path, name: str) -> None:
    url = f"file://{tmp_path / 'store'}"
    user, thief = await _victim(url)
    logged = RequestLog(ObjectStore.from_url(url))
    logged.reset_counts()
    await CHANGES[name][0](make_service(url, store=logged), user)
    assert logged.log == REQUESTS
    assert dict(logged.requests) == COUNTS
    assert await _made(url, name, user)
    await _assert_out(url, thief)


@pytest.mark.parametrize(("name", "step", "after"), STEPS)
async def test_an_account_change_failing_at_any_request(
    tmp_path: Path, name: str, step: int, after: bool
) -> None:
    url = f"file://{tmp_path / 'store'}"
    user, thief = await _victim(url)
    change, _ = CHANGES[name]
    faulty = FaultyStore(ObjectStore.from_url(url))
    failing = make_service(url, store=faulty)
    faulty.fail_at, faulty.after = step, after
    with pytest.raises(StoreUnavailableError):
        await change(failing, user)
    if await _made(url, name, user):
        await _assert_out(url, thief)
    await change(failing, user)  # the retry: makes the change, or finds it made
    assert await _made(url, name, user)
    await _assert_out(url, thief)
    # Nothing is left that refuses a later session of the account.
    owner = make_service(url)
    if name == "disable":
        assert await owner.authenticate_user("victim", PASSWORD) is None
        await owner.update_user(user.id, is_active=True)
    found = await owner.authenticate_user("victim", PASSWORD)
    assert found is not None
    pair = await owner.refresh_access_token((await owner.create_token_pair(found)).refresh_token)
    claims = owner.decode_token(pair.access_token)
    assert (claims["adm"], claims["scope"]) == (
        (True, "admin reports") if name == "disable" else (False, "")
    )


@pytest.mark.parametrize("name", CHANGES)
async def test_a_login_landing_mid_change_is_ended(tmp_path: Path, name: str) -> None:
    # The login read the record as it was, and writes its session after the change has
    # ended the sessions, just before the record's write: the second listing names it.
    url = f"file://{tmp_path / 'store'}"
    user, thief = await _victim(url)
    racing = make_service(url)
    found = await racing.authenticate_user("victim", PASSWORD)
    assert found is not None
    late: list[TokenPair] = []

    async def log_in() -> None:
        late.append(await racing.create_token_pair(found))

    raced = RacedUserWrite(ObjectStore.from_url(url), log_in)
    await CHANGES[name][0](make_service(url, store=raced), user)
    assert raced.meanwhile is None  # the race happened
    await _assert_out(url, thief)
    await _assert_out(url, late[0])


async def test_the_retry_of_a_disabling_that_landed_ends_the_sessions_it_finds(
    tmp_path: Path,
) -> None:
    # A login that read the account while it was active writes its session after the
    # disabling's first listing, and the disabling fails at its marker. The retry finds the
    # record disabled already; a disabled account has no session to keep, so it ends the
    # one its listing shows.
    url = f"file://{tmp_path / 'store'}"
    user, thief = await _victim(url)
    racing = make_service(url)
    found = await racing.authenticate_user("victim", PASSWORD)
    assert found is not None
    late: list[TokenPair] = []

    async def log_in() -> None:
        late.append(await racing.create_token_pair(found))

    faulty = FailFirst(
        RacedUserWrite(ObjectStore.from_url(url), log_in), "create", "~generation.", after=False
    )
    with pytest.raises(StoreUnavailableError):
        await disable(make_service(url, store=faulty), user)
    assert late and await _made(url, "disable", user)
    await _assert_out(url, thief)
    logged = RequestLog(ObjectStore.from_url(url))
    logged.reset_counts()
    await disable(make_service(url, store=logged), user)
    await _assert_out(url, late[0])
    # The read writes the marker the failure left out; the record's generation stays.
    assert logged.log == [
        "get user",
        "create marker",
        "list sessions",
        "create revocation",
        "delete_many sessions",
        "replace user",
        "list sessions",
    ]


async def test_a_change_that_ends_no_session_costs_what_it_did(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    user, thief = await _victim(url)
    logged = RequestLog(ObjectStore.from_url(url))
    service = make_service(url, store=logged)
    for changes in (
        {"full_name": "Victim"},
        # Privileges asked for as they are: the record's read decides that none change.
        {"is_admin": True, "scopes": ["reports"]},
        {"is_active": True},
    ):
        logged.reset_counts()
        logged.log.clear()
        updated = await service.update_user(user.id, **changes)
        assert logged.log == ["get user", "replace user"], changes
        assert dict(logged.requests) == {"get": 1, "put": 1}
        assert updated.session_generation == user.session_generation
    await service.ensure_fresh()
    assert service.decode_token(thief.access_token)["adm"] is True
    await service.refresh_access_token(thief.refresh_token)
    # Of a record with a generation: the read writes its marker if it is missing.
    await demote(service, user)
    logged.reset_counts()
    logged.log.clear()
    await service.update_user(user.id, full_name="Still the victim")
    assert logged.log == ["get user", "create marker", "replace user"]
    assert dict(logged.requests) == {"get": 1, "put": 2}


async def test_a_change_refused_on_the_record_read_ends_nothing(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    user, thief = await _victim(url)
    logged = RequestLog(ObjectStore.from_url(url))
    with pytest.raises(ConflictError):
        await make_service(url, store=logged).update_user(
            user.id, is_active=False, expect={"full_name": "Someone else"}
        )
    assert logged.log == ["get user"]
    other = make_service(url)
    await other.ensure_fresh()
    other.decode_token(thief.access_token)
    await other.refresh_access_token(thief.refresh_token)


async def test_a_change_that_a_concurrent_one_makes_end_sessions_is_refused(
    tmp_path: Path,
) -> None:
    # Decided on the record read: its scopes as they are, so no session to end. Another
    # administrator's change of them lands before the write, over which the same scopes
    # would be a change of privileges whose sessions were not ended first: refused, to be
    # tried again, and nothing of it written.
    url = f"file://{tmp_path / 'store'}"
    user, _ = await _victim(url)
    other = make_service(url)
    raced = RacedUserWrite(
        ObjectStore.from_url(url), lambda: other.update_user(user.id, scopes=["audit"])
    )
    with pytest.raises(ConflictError):
        await make_service(url, store=raced).update_user(
            user.id, scopes=["reports"], full_name="Mine"
        )
    assert raced.meanwhile is None  # the race happened
    now = await other.get_user_by_id(user.id)
    assert now is not None and (now.scopes, now.full_name) == (["audit"], user.full_name)
    changed = await other.update_user(user.id, scopes=["reports"], full_name="Mine")
    assert changed.scopes == ["reports"]


async def test_a_disabling_to_a_new_address_settles_the_names_before_the_last_listing(
    tmp_path: Path,
) -> None:
    url = f"file://{tmp_path / 'store'}"
    user, thief = await _victim(url)
    logged = RequestLog(ObjectStore.from_url(url))
    logged.reset_counts()
    changed = await make_service(url, store=logged).update_user(
        user.id, email="moved@example.com", is_active=False
    )
    # The old address's entry read and the new one's claimed, the sessions ended, the
    # record written, the old entry released (retired, then deleted); then the marker and
    # the second listing.
    assert logged.log == [
        "get user",
        "get index",
        "create index",
        *ENDED_FIRST[:4],
        "replace index",
        "delete_many index",
        *ENDED_FIRST[4:],
    ]
    assert dict(logged.requests) == {"get": 2, "put": 5, "list": 2, "delete": 2}
    assert (changed.email, changed.is_active) == ("moved@example.com", False)
    await _assert_out(url, thief)
    other = make_service(url)
    assert (await other.get_user_by_email("moved@example.com")) == changed
    assert await other.create_user("heir", "victim@example.com", PASSWORD)


async def test_a_disabling_whose_new_address_was_taken_over_is_undone(tmp_path: Path) -> None:
    # The record's write is slow: the new address's claim looks abandoned, and another
    # account takes it over before the write lands. The change is put back and refused;
    # the sessions it ended before the write stay ended, and the owner logs in again.
    url = f"file://{tmp_path / 'store'}"
    user, thief = await _victim(url)
    now = [time.time()]
    settings = make_settings(url, name_reservation_seconds=RESERVATION)
    taker = S3AuthService(settings, clock=lambda: now[0])
    won: list[User] = []

    async def meanwhile() -> None:
        now[0] += RESERVATION + 1
        won.append(await taker.create_user("win", "moved@example.com", PASSWORD))

    raced = RacedUserWrite(ObjectStore.from_url(url), meanwhile)
    changing = S3AuthService(settings, store=raced, clock=lambda: now[0])
    with pytest.raises(EmailTakenError):
        await changing.update_user(user.id, email="moved@example.com", is_active=False)
    assert raced.meanwhile is None  # the race happened
    other = make_service(url)
    found = await other.get_user_by_email("moved@example.com")
    assert found is not None and found.id == won[0].id
    await _assert_out(url, thief)
    back = await other.authenticate_user("victim@example.com", PASSWORD)
    assert back is not None and (back.email, back.is_active) == ("victim@example.com", True)
    # A session of the account as it is now refreshes: the record's generation is the one
    # the change wrote, whose marker the undoing read wrote, so the sessions it ended
    # before the write stay ended.
    pair = await other.refresh_access_token((await other.create_token_pair(back)).refresh_token)
    await other.ensure_fresh()
    assert other.decode_token(pair.access_token)["adm"] is True
    assert back.session_generation != user.session_generation
    assert await _markers(ObjectStore.from_url(url), user.id) == [back.session_generation]
