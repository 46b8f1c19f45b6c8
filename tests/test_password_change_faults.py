"""A new password (by a reset link, by its owner, by an administrator) whose change fails at
any store request, before the request is sent or after it landed (its answer lost), on
file://, with other instances on the same store.

Either the old password still holds, and the same request tried again makes the change;
or the new one does, and no earlier session is left: on an instance that never saw the
change made, its access tokens and its refresh token are refused at once, not only when
the access token expires. A change that has landed gives nothing for a retry to finish.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from conftest import make_service
from support import RacedUserWrite, StoreWrapper
from test_app import bearer, client_for, login, mounted
from test_faults import FailFirst, FaultyStore

from s3auth_asgi import (
    InvalidCredentialsError,
    S3AuthError,
    S3AuthService,
    StoreUnavailableError,
    TokenPair,
    TokenRevokedError,
    User,
)
from s3auth_asgi.account_tokens import InvalidAccountTokenError
from s3auth_asgi.storage import ObjectInfo, ObjectStore, Store, Versioned, keys

pytestmark = pytest.mark.anyio
T = TypeVar("T")
PASSWORD = "SecurePass123!"
NEW_PASSWORD = "Brand-new-pass-7"

# service, the user, a reset link issued for it
Change = Callable[[S3AuthService, User, str], Awaitable[object]]


async def by_link(service: S3AuthService, user: User, link: str) -> object:
    return await service.reset_password(link, NEW_PASSWORD)


async def by_owner(service: S3AuthService, user: User, link: str) -> object:
    return await service.change_password(user.id, PASSWORD, NEW_PASSWORD)


async def by_admin(service: S3AuthService, user: User, link: str) -> object:
    return await service.set_password(user.id, NEW_PASSWORD)


# Each change's requests, in order, for a user with one session (and no earlier change):
# the sessions are ended before the record is written, so a failure up to the record's
# write leaves the old password (and the sessions perhaps ended); then the new
# generation's marker, and a second listing for a login that wrote its session meanwhile.
ENDED_FIRST = [
    "list sessions",
    "create revocation",
    "delete_many sessions",
    "replace user",
    "create marker",
    "list sessions",
]
# The owner's own change ends its own access token with the others, so that a retry over
# HTTP is refused from the revocation on: it logs out everywhere first (a new generation
# and its marker, then the sessions ended), so that a failure from there leaves the old
# password and every session refused at refresh for good; then the password, with another
# generation and its marker, and a listing for a login that wrote its session meanwhile
# (the first generation's marker, superseded, deleted).
RENEWED_FIRST = ["replace user", "create marker", *ENDED_FIRST, "delete_many marker"]
REQUESTS: dict[str, list[str]] = {
    "reset": ["get token", "get user", *ENDED_FIRST, "delete_many token"],
    # And the caller's new session, the record read back (`session_opening`).
    "change": ["get user", *RENEWED_FIRST, "create sessions", "get user"],
    "set": ["get user", *ENDED_FIRST],
}
# Before, each made the record's write first: reset 7 (get 2, put 3, list 1, delete 1),
# change 7 (get 1, put 4, list 1, delete 1), set 6 (get 1, put 3, list 1, delete 1). The
# sessions' listing after the write is now a second one, and a reset's token goes in a
# batch DELETE of its own. The owner's change then cost what `set` does and its new session
# (put 4, delete 1); it now writes the record and a marker once more, deletes the
# superseded marker, and reads the record back once its new session is written.
COUNTS = {
    "reset": {"get": 2, "put": 3, "list": 2, "delete": 2},
    "change": {"get": 2, "put": 6, "list": 2, "delete": 2},
    "set": {"get": 1, "put": 3, "list": 2, "delete": 1},
}
# name: (change, what its retry meets once the change has landed; None: it succeeds again)
CHANGES: dict[str, tuple[Change, type[S3AuthError] | None]] = {
    "reset": (by_link, InvalidAccountTokenError),  # the link is spent
    "change": (by_owner, InvalidCredentialsError),  # the current password is the new one
    "set": (by_admin, None),
}
STEPS = [
    pytest.param(name, step, after, id=f"{name}-{step}-{'after' if after else 'before'}")
    for name, requests in REQUESTS.items()
    for step in range(1, len(requests) + 1)
    for after in (False, True)
]


def _kind(key: str) -> str:
    if key == keys.SESSIONS_NOT_BEFORE:
        return "not-before"
    if keys.is_session_marker(key):
        return "marker"
    kind = key.split("/")[0]
    return {"users": "user", "revocations": "revocation", "account-tokens": "token"}.get(kind, kind)


class RequestLog(StoreWrapper):
    """Records each request and the kind of object it is for, as `kind` names it."""

    def __init__(self, inner: Store, kind: Callable[[str], str] = _kind) -> None:
        super().__init__(inner)
        self.kind = kind
        self.log: list[str] = []

    async def get(self, key: str, type_: type[T]) -> Versioned[T] | None:
        self.log.append(f"get {self.kind(key)}")
        return await super().get(key, type_)

    async def create(self, key: str, value: Any) -> str:
        self.log.append(f"create {self.kind(key)}")
        return await super().create(key, value)

    async def replace(self, key: str, value: Any, etag: str) -> str:
        self.log.append(f"replace {self.kind(key)}")
        return await super().replace(key, value, etag)

    async def delete_many(self, keys: Iterable[str]) -> int:
        batch = list(keys)
        self.log.append(f"delete_many {' '.join(sorted({self.kind(k) for k in batch}))}")
        return await super().delete_many(batch)

    def list(self, prefix: str, offset: str | None = None) -> AsyncIterator[ObjectInfo]:
        self.log.append(f"list {self.kind(prefix)}")
        return super().list(prefix, offset)


async def _victim(url: str) -> tuple[User, TokenPair, str]:
    """The user, the thief's session (logged in with the old password) and a reset link."""
    service = make_service(url)
    user = await service.create_user("victim", "victim@example.com", PASSWORD)
    thief = await service.create_token_pair(user)
    link = await service.account_tokens.issue("password-reset", user)
    return user, thief, link


async def _assert_thief_is_out(url: str, thief: TokenPair) -> None:
    """Refused on an instance that made no change, once it has synced."""
    other = make_service(url)
    await other.ensure_fresh()
    with pytest.raises(TokenRevokedError):
        other.decode_token(thief.access_token)
    with pytest.raises(TokenRevokedError):
        await other.refresh_access_token(thief.refresh_token)


async def _password_in_effect(url: str) -> str:
    other = make_service(url)
    old = await other.authenticate_user("victim", PASSWORD)
    new = await other.authenticate_user("victim", NEW_PASSWORD)
    assert (old is None) != (new is None)
    return PASSWORD if old is not None else NEW_PASSWORD


@pytest.mark.parametrize("name", REQUESTS)
async def test_the_requests_of_a_password_change_in_order(tmp_path: Path, name: str) -> None:
    url = f"file://{tmp_path / 'store'}"
    user, thief, link = await _victim(url)
    logged = RequestLog(ObjectStore.from_url(url))
    service = make_service(url, store=logged)
    logged.reset_counts()
    await CHANGES[name][0](service, user, link)
    assert logged.log == REQUESTS[name]
    assert dict(logged.requests) == COUNTS[name]
    await _assert_thief_is_out(url, thief)


@pytest.mark.parametrize(("name", "step", "after"), STEPS)
async def test_a_password_change_failing_at_any_request(
    tmp_path: Path, name: str, step: int, after: bool
) -> None:
    url = f"file://{tmp_path / 'store'}"
    user, thief, link = await _victim(url)
    change, refused_again = CHANGES[name]
    faulty = FaultyStore(ObjectStore.from_url(url))
    failing = make_service(url, store=faulty)
    faulty.fail_at, faulty.after = step, after
    with pytest.raises(StoreUnavailableError):
        await change(failing, user, link)
    if await _password_in_effect(url) == NEW_PASSWORD:
        await _assert_thief_is_out(url, thief)
        if refused_again is not None:
            with pytest.raises(refused_again):
                await change(failing, user, link)
        else:
            await change(failing, user, link)
    else:
        await change(failing, user, link)  # the old password: the retry makes the change
    assert await _password_in_effect(url) == NEW_PASSWORD
    await _assert_thief_is_out(url, thief)
    # Nothing is left that refuses the owner's own login afterwards.
    owner = make_service(url)
    found = await owner.authenticate_user("victim", NEW_PASSWORD)
    assert found is not None
    pair = await owner.create_token_pair(found)
    await owner.refresh_access_token(pair.refresh_token)


@pytest.mark.parametrize("name", REQUESTS)
async def test_a_login_with_the_old_password_landing_mid_change_is_ended(
    tmp_path: Path, name: str
) -> None:
    # The login checked the old password before the change, and writes its session just
    # before the change's first write of the record: a listing after a write names it (the
    # second for a reset or an administrator's change, which end the sessions before).
    url = f"file://{tmp_path / 'store'}"
    user, thief, link = await _victim(url)
    racing = make_service(url)
    found = await racing.authenticate_user("victim", PASSWORD)
    assert found is not None
    late: list[TokenPair] = []

    async def log_in() -> None:
        late.append(await racing.create_token_pair(found))

    raced = RacedUserWrite(ObjectStore.from_url(url), log_in)
    await CHANGES[name][0](make_service(url, store=raced), user, link)
    assert raced.meanwhile is None  # the race happened
    await _assert_thief_is_out(url, thief)
    await _assert_thief_is_out(url, late[0])


async def test_a_reset_whose_revocation_failed_is_a_503_and_its_retry_works() -> None:
    # Over HTTP, as the owner and the thief see it; each worker with its own snapshot.
    shared = ObjectStore.from_url("memory://")
    healthy = make_service(store=shared)
    user = await healthy.create_user("victim", "victim@example.com", PASSWORD)
    async with client_for(mounted(healthy)) as client:
        thief = await login(client, "victim", PASSWORD)
    link = await healthy.account_tokens.issue("password-reset", user)
    failing = make_service(store=FailFirst(shared, "create", "revocations/", after=False))
    body = {"token": link, "new_password": NEW_PASSWORD}
    async with client_for(mounted(failing)) as client:
        first = await client.post("/auth/password/reset", json=body)
        assert first.status_code == 503, first.text
        assert await healthy.authenticate_user("victim", PASSWORD) is not None
        retry = await client.post("/auth/password/reset", json=body)
        assert retry.status_code == 204, retry.text
    assert await healthy.authenticate_user("victim", NEW_PASSWORD) is not None
    async with client_for(mounted(make_service(store=shared))) as client:
        me = await client.get("/auth/me", headers=bearer(thief))
        assert me.status_code == 401, me.text


async def test_what_a_failure_after_the_write_can_leave(tmp_path: Path) -> None:
    # The change fails at its second listing, after a login with the old password wrote
    # its session between the first listing and the record's write: the one session such a
    # failure can leave. Its refresh is refused (the marker is there), which ends its
    # access token too; until then that token is accepted, at most for its lifetime.
    url = f"file://{tmp_path / 'store'}"
    user, thief, link = await _victim(url)
    racing = make_service(url)
    found = await racing.authenticate_user("victim", PASSWORD)
    assert found is not None
    late: list[TokenPair] = []

    async def log_in() -> None:
        late.append(await racing.create_token_pair(found))

    faulty = FaultyStore(RacedUserWrite(ObjectStore.from_url(url), log_in))
    faulty.fail_at = REQUESTS["set"].index("list sessions", 2) + 1
    with pytest.raises(StoreUnavailableError):
        await by_admin(make_service(url, store=faulty), user, link)
    assert await _password_in_effect(url) == NEW_PASSWORD
    await _assert_thief_is_out(url, thief)
    other = make_service(url)
    await other.ensure_fresh()
    assert other.decode_token(late[0].access_token)["sub"] == user.id
    with pytest.raises(TokenRevokedError):
        await other.refresh_access_token(late[0].refresh_token)
    with pytest.raises(TokenRevokedError):
        other.decode_token(late[0].access_token)
