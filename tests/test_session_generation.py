"""Session generations: a login that raced an account change keeps nothing.

The race, made deterministic: a login passes its password check on one host and is held
just before it writes its session; another host disables the account (or changes its
password or privileges, or deletes it, or logs it out everywhere) and ends its sessions;
then the login writes its session, which that revocation could not name. The login reads
the record back, finds the change, deletes its session and answers as the login after the
change would (`s3auth_asgi.session_opening`): no token of it is ever issued. A session so
written by a host that does not read the record back (an earlier version) is refused at its
first refresh, at no request more than a refresh costs (`s3auth_asgi.session_generation`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
import pytest
from conftest import make_service
from support import StoreWrapper, late_session
from test_app import PASSWORD as APP_PASSWORD
from test_app import checked_client, register
from test_password_change_faults import RequestLog

from s3auth_asgi import (
    InvalidCredentialsError,
    S3AuthError,
    S3AuthService,
    TokenPair,
    TokenRevokedError,
)
from s3auth_asgi.identifiers import session_generation_counter
from s3auth_asgi.models import Session, User
from s3auth_asgi.session_generation import (
    generation_counter,
    newest_marker,
    next_generation,
    predates,
    sessions_only,
    sweepable,
)
from s3auth_asgi.storage import ObjectInfo, ObjectStore, Store, keys

pytestmark = pytest.mark.anyio
on_backends = pytest.mark.parametrize("store_url", ["memory", "file", "s3"], indirect=True)
PASSWORD = "SecurePass123!"
NEW_PASSWORD = "BrandNewPass456"

# What each change cost before generations: the user GET and PUT (change_password: and
# the caller's new session), then the revocation's LIST, `user` entry and batch DELETE.
# Each then cost one PUT more: the generation marker.
BEFORE = {"get": 1, "put": 2, "list": 1, "delete": 1}
# Each change now ends the sessions before the record's write, and lists them again after
# its marker, for a login that wrote its session meanwhile (`user_records`): one LIST more.
# Here the late session is written after that second listing too.
AFTER = {**BEFORE, "put": 3, "list": 2}
# A change of a user whose sessions a change ended before costs one PUT more: the marker of
# the generation it reads, written if missing (`user_records`), a create that finds it; and
# a batch DELETE more: the sessions are deleted before the record's write, the marker the
# new one supersedes after it (with the sessions, before they were ended first).
AFTER_A_CHANGE = {**AFTER, "put": 4, "delete": 2}
LOGIN = {"get": 3, "put": 1}  # index, user; session; the user read back
# The held login, once let go: its session, the record read back (changed), its DELETE.
LOGIN_REFUSED = {"put": 1, "get": 1, "delete": 1}
# ... and, where the change leaves the login valid, its session opened again.
LOGIN_AGAIN = {"put": 2, "get": 2, "delete": 1}
REFRESH = {"get": 1, "list": 1, "put": 1}  # session; the cap's LIST; rotation
REFUSED = {"get": 1, "list": 1, "put": 1, "delete": 1}  # ... `session` entry; DELETE


class PausedLogin(StoreWrapper):
    """Holds the first session PUT until `release` is set (`reached` says it is held)."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.reached = anyio.Event()
        self.release = anyio.Event()

    async def create(self, key: str, value: Any) -> str:
        if key.startswith(keys.SESSIONS) and not self.reached.is_set():
            self.reached.set()
            await self.release.wait()
        return await super().create(key, value)


class Race:
    """Two hosts on one store: `login_host` logs in through `PausedLogin`; `admin` makes
    the change."""

    def __init__(self, store_url: str) -> None:
        self.store = ObjectStore.from_url(store_url)
        self.gate = PausedLogin(self.store)
        self.login_host = make_service(store_url, store=self.gate)
        self.admin = make_service(store_url, store=self.store)

    async def run(
        self, user: User, change: Callable[[S3AuthService], Awaitable[object]]
    ) -> tuple[TokenPair | S3AuthError, dict[str, int], dict[str, int]]:
        """The late login's answer (its pair, or the error it raised), what the change
        cost, and what the login cost once let go."""
        late: list[TokenPair | S3AuthError] = []

        async def log_in() -> None:
            found = await self.login_host.authenticate_user(user.username, PASSWORD)
            assert found is not None  # the password check passed before the change
            try:
                late.append(await self.login_host.create_token_pair(found))
            except S3AuthError as error:
                late.append(error)

        async with anyio.create_task_group() as tg:
            tg.start_soon(log_in)
            await self.gate.reached.wait()
            self.store.reset_counts()
            await change(self.admin)
            cost = dict(self.store.requests)
            self.gate.reset_counts()
            self.gate.release.set()
        return late[0], cost, dict(self.gate.requests)

    async def assert_left_nothing(self, late: TokenPair | S3AuthError, user: User) -> None:
        """The late login was refused as a login after the change is, and left no session
        of the generation it read."""
        assert isinstance(late, InvalidCredentialsError), late
        assert late.code == "invalid_credentials"
        counter = generation_counter(user.session_generation)
        async for info in self.store.list(keys.user_sessions(user.id)):
            if not keys.is_session_marker(info.key):
                assert session_generation_counter(keys.id_from_key(info.key)) > counter

    async def assert_refused(self, late: TokenPair) -> None:
        """A late session that a host of an earlier version opened (`late_session`): its
        access token is named by no revocation, and its first refresh ends it."""
        sid = self.admin.tokens.verify_access_token(late.access_token)["sid"]
        user_id = self.admin.tokens.verify_access_token(late.access_token)["sub"]
        assert await self.store.get(keys.session(user_id, sid), Session) is not None
        await self.admin.ensure_fresh()  # so that decoding starts no background sync
        self.admin.decode_token(late.access_token)
        self.store.reset_counts()
        with pytest.raises(TokenRevokedError) as info:
            await self.admin.refresh_access_token(late.refresh_token)
        assert info.value.code == "token_revoked"
        assert dict(self.store.requests) == REFUSED
        assert await self.store.get(keys.session(user_id, sid), Session) is None
        with pytest.raises(TokenRevokedError):
            self.admin.decode_token(late.access_token)
        with pytest.raises(TokenRevokedError):  # and stays refused
            await self.admin.refresh_access_token(late.refresh_token)

    async def assert_fresh_login_works(self, user: User, password: str = PASSWORD) -> TokenPair:
        await self.admin.ensure_fresh()  # the refresh counted below syncs nothing
        self.store.reset_counts()
        found = await self.admin.authenticate_user(user.username, password)
        assert found is not None
        pair = await self.admin.create_token_pair(found)
        assert dict(self.store.requests) == LOGIN
        self.store.reset_counts()
        pair = await self.admin.refresh_access_token(pair.refresh_token)
        assert dict(self.store.requests) == REFRESH
        return pair


async def _setup(store_url: str) -> tuple[Race, User, TokenPair]:
    race = Race(store_url)
    user = await race.admin.create_user("victim", "victim@example.com", PASSWORD)
    existing = await race.admin.create_token_pair(user)  # ended by the change, as before
    return race, user, existing


async def _markers(store: Store, user_id: str) -> list[str]:
    return [
        g
        async for info in store.list(keys.user_sessions(user_id))
        if (g := keys.marker_generation(info.key)) is not None
    ]


@on_backends
async def test_a_login_racing_a_disable_is_refused(store_url: str) -> None:
    race, user, existing = await _setup(store_url)
    late, cost, login = await race.run(
        user, lambda admin: admin.update_user(user.id, is_active=False)
    )
    assert cost == AFTER
    assert login == LOGIN_REFUSED
    await race.assert_left_nothing(late, user)
    with pytest.raises(TokenRevokedError):
        await race.admin.refresh_access_token(existing.refresh_token)
    assert await race.admin.authenticate_user("victim", PASSWORD) is None
    # Enabling the account again keeps the generation: later logins refresh.
    await race.admin.update_user(user.id, is_active=True)
    await race.assert_fresh_login_works(user)


@on_backends
@pytest.mark.parametrize("change", ["is_admin", "scopes"])
async def test_a_login_racing_a_privilege_change_gets_the_new_privileges(
    store_url: str, change: str
) -> None:
    race, user, _ = await _setup(store_url)
    changes: dict[str, Any] = {"is_admin": True} if change == "is_admin" else {"scopes": ["x"]}
    late, cost, login = await race.run(user, lambda admin: admin.update_user(user.id, **changes))
    assert cost == AFTER
    # The login holds on the new record: opened again from it, as if it came after.
    assert login == LOGIN_AGAIN
    assert isinstance(late, TokenPair)
    await race.admin.ensure_fresh()
    claims = race.admin.decode_token(late.access_token)
    assert claims["adm"] is True if change == "is_admin" else claims["scope"] == "x"
    race.store.reset_counts()
    await race.admin.refresh_access_token(late.refresh_token)
    assert dict(race.store.requests) == REFRESH
    changed = await _user(race.admin, user.id)
    assert await _sessions(race.store, user.id) == [generation_counter(changed.session_generation)]


@on_backends
async def test_a_login_racing_a_password_reset_is_refused(store_url: str) -> None:
    race, user, _ = await _setup(store_url)
    late, cost, login = await race.run(
        user, lambda admin: admin.set_password(user.id, NEW_PASSWORD)
    )
    assert cost == AFTER
    assert login == LOGIN_REFUSED
    await race.assert_left_nothing(late, user)
    assert await race.admin.authenticate_user("victim", PASSWORD) is None
    await race.assert_fresh_login_works(user, NEW_PASSWORD)


@on_backends
async def test_a_login_racing_a_password_change_is_refused(store_url: str) -> None:
    race, user, _ = await _setup(store_url)
    mine: list[TokenPair] = []

    async def change(admin: S3AuthService) -> None:
        mine.append(await admin.change_password(user.id, PASSWORD, NEW_PASSWORD))

    late, cost, login = await race.run(user, change)
    # The caller's new session and its record read back; and the owner's change logs out
    # everywhere before it writes the password (`password_changes`): a record write and a
    # marker more, and the first marker, superseded by the second, deleted.
    assert cost == {**AFTER, "get": 2, "put": 6, "delete": 2}
    assert login == LOGIN_REFUSED
    await race.assert_left_nothing(late, user)
    # The session change_password opened for its caller is of the new generation.
    await race.admin.ensure_fresh()
    race.store.reset_counts()
    await race.admin.refresh_access_token(mine[0].refresh_token)
    assert dict(race.store.requests) == REFRESH
    await race.assert_fresh_login_works(user, NEW_PASSWORD)


@on_backends
async def test_a_login_racing_a_deletion_is_refused(store_url: str) -> None:
    race, user, _ = await _setup(store_url)
    late, cost, login = await race.run(user, lambda admin: admin.delete_user(user.id))
    # The `deleted` marker is written after the batch DELETE: before it, a GET of the user,
    # the closing marker and the PUT closing the record; after it, a GET and a PUT
    # releasing each of the three names, and their batch DELETE.
    assert cost == {"get": 4, "put": 7, "list": 1, "delete": 2}
    assert login == LOGIN_REFUSED
    assert await race.admin.get_user_by_id(user.id) is None
    await race.assert_left_nothing(late, user)
    assert await _markers(race.store, user.id) == [keys.DELETED_GENERATION]


@on_backends
async def test_a_login_racing_a_logout_everywhere_opens_a_session_of_the_new_generation(
    store_url: str,
) -> None:
    race, user, existing = await _setup(store_url)
    late, _, login = await race.run(user, lambda admin: admin.revoke_all_user_tokens(user.id))
    assert login == LOGIN_AGAIN
    assert isinstance(late, TokenPair)
    with pytest.raises(TokenRevokedError):
        await race.admin.refresh_access_token(existing.refresh_token)
    await race.admin.refresh_access_token(late.refresh_token)
    renewed = await _user(race.admin, user.id)
    assert await _sessions(race.store, user.id) == [generation_counter(renewed.session_generation)]


@on_backends
@pytest.mark.parametrize("change", ["disable", "delete"])
async def test_a_late_session_of_a_host_that_does_not_read_back_cannot_refresh(
    store_url: str, change: str
) -> None:
    # A fleet being upgraded: a host of an earlier version writes the late session and
    # answers its pair; the generation marker refuses it at its first refresh.
    race, user, _ = await _setup(store_url)
    found = await race.admin.authenticate_user("victim", PASSWORD)
    assert found is not None
    if change == "disable":
        await race.admin.update_user(user.id, is_active=False)
    else:
        await race.admin.delete_user(user.id)
    await race.assert_refused(await late_session(race.admin, found))


@on_backends
async def test_a_later_change_replaces_the_marker(store_url: str) -> None:
    service = make_service(store_url)
    user = await service.create_user("twice", "twice@example.com", PASSWORD)
    await service.set_password(user.id, NEW_PASSWORD)
    first = await _markers(service.store, user.id)
    assert len(first) == 1
    await service.create_token_pair(await _user(service, user.id))
    service.store.reset_counts()
    await service.update_user(user.id, is_admin=True)
    # The superseded marker is deleted once its successor is written, after the sessions.
    assert dict(service.store.requests) == AFTER_A_CHANGE
    second = await _markers(service.store, user.id)
    assert len(second) == 1 and second[0] > first[0]
    assert second[0] == (await _user(service, user.id)).session_generation
    # Without sessions, the superseded marker costs the DELETE alone, after the second LIST.
    service.store.reset_counts()
    await service.update_user(user.id, is_active=False)
    assert dict(service.store.requests) == {"get": 1, "put": 3, "list": 2, "delete": 1}
    assert len(await _markers(service.store, user.id)) == 1


async def _sessions(store: Store, user_id: str) -> list[int]:
    """The generation counter of each session of the user, by its id."""
    return [
        session_generation_counter(keys.id_from_key(info.key))
        async for info in store.list(keys.user_sessions(user_id))
        if not keys.is_session_marker(info.key)
    ]


async def _user(service: S3AuthService, user_id: str) -> User:
    found = await service.get_user_by_id(user_id)
    assert found is not None
    return found


@on_backends
async def test_logout_everywhere_writes_a_generation(store_url: str) -> None:
    service = make_service(store_url)
    user = await service.create_user("every", "every@example.com", PASSWORD)
    await service.set_password(user.id, NEW_PASSWORD)
    marker = await _markers(service.store, user.id)
    before = await _user(service, user.id)
    pairs = [await service.create_token_pair(before) for _ in range(3)]
    service.store.reset_counts()
    assert await service.revoke_all_user_tokens(user.id) == 3  # the marker is no session
    # The record's GET, its marker's create (there already), its PUT, the new marker, the
    # LIST, the revocation, and one DELETE for the sessions and the superseded marker.
    assert dict(service.store.requests) == {"get": 1, "list": 1, "put": 4, "delete": 1}
    after = await _user(service, user.id)
    assert after.session_generation > before.session_generation
    assert await _markers(service.store, user.id) == [after.session_generation] != marker
    # A login that read the record before the logout and wrote its session after its
    # listing, on a host that does not read the record back, is refused at its first
    # refresh, as after any change ending the sessions.
    late = await late_session(service, before)
    for pair in [*pairs, late]:
        with pytest.raises(TokenRevokedError):
            await service.refresh_access_token(pair.refresh_token)
    await service.refresh_access_token((await service.create_token_pair(after)).refresh_token)
    # One that reads it back opens its session from the new record.
    opened = await service.create_token_pair(before)
    await service.refresh_access_token(opened.refresh_token)


@on_backends
async def test_the_cap_and_the_sessions_page_ignore_markers(store_url: str) -> None:
    service = make_service(store_url, max_sessions_per_user=3)
    user = await service.create_user("capped", "capped@example.com", PASSWORD)
    await service.update_user(user.id, scopes=["a"])
    assert len(await _markers(service.store, user.id)) == 1
    current = await _user(service, user.id)
    pairs = [await service.create_token_pair(current) for _ in range(3)]
    sessions = await service.get_user_active_sessions(user.id)
    assert len(sessions) == 3
    # Three sessions and a marker: the oldest session is within the cap of three.
    await service.refresh_access_token(pairs[0].refresh_token)
    assert len(await service.get_user_active_sessions(user.id)) == 3


@on_backends
async def test_old_records_keep_working_without_a_marker(store_url: str) -> None:
    service = make_service(store_url)
    created = await service.create_user("old", "old@example.com", PASSWORD)
    await _strip(service.store, keys.user(created.id), "session_generation")
    user = await service.authenticate_user("old", PASSWORD)
    assert user is not None and user.session_generation == ""
    pair = await service.create_token_pair(user)
    sid = service.decode_token(pair.access_token)["sid"]
    await _strip(service.store, keys.session(user.id, sid), "user_generation")
    pair = await service.refresh_access_token(pair.refresh_token)
    pair = await service.refresh_access_token(pair.refresh_token)
    # Once a change has written a marker, a session without the field is older than it.
    await service.update_user(user.id, is_admin=True)
    stale = await late_session(service, user)  # the record read before the change
    sid = service.decode_token(stale.access_token)["sid"]
    await _strip(service.store, keys.session(user.id, sid), "user_generation")
    with pytest.raises(TokenRevokedError):
        await service.refresh_access_token(stale.refresh_token)


async def _strip(store: Store, key: str, field: str) -> None:
    found = await store.get(key, dict[str, Any])
    if found is None:
        return
    value = dict(found.value)
    value.pop(field, None)
    await store.replace(key, value, found.etag)
    assert field not in msgspec.json.decode(await _raw(store, key))


async def _raw(store: Store, key: str) -> bytes:
    found = await store.get(key, msgspec.Raw)
    assert found is not None
    return bytes(found.value)


@on_backends
async def test_a_session_opened_from_a_public_user_is_not_checked(store_url: str) -> None:
    service = make_service(store_url)
    user = await service.create_user("public", "public@example.com", PASSWORD)
    await service.set_password(user.id, NEW_PASSWORD)
    pair = await service.create_token_pair(user.public())  # no generation to compare
    await service.refresh_access_token(pair.refresh_token)


@on_backends
async def test_the_sweep_keeps_markers_for_the_absolute_lifetime(store_url: str) -> None:
    service = make_service(store_url)
    user = await service.create_user("swept", "swept@example.com", PASSWORD)
    await service.set_password(user.id, NEW_PASSWORD)
    assert await service.cleanup_expired_tokens() == 0  # a marker is not an expired session
    assert len(await _markers(service.store, user.id)) == 1
    settings = service.settings
    skipped = settings.session_absolute_seconds + settings.revocation_skew_seconds + 60
    later = S3AuthService(settings, store=service.store, clock=lambda: service.clock() + skipped)
    assert await later.cleanup_expired_tokens() >= 1
    assert await _markers(service.store, user.id) == []


# The order of generations, without a store ------------------------------------------

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _listed(*generations: str) -> list[ObjectInfo]:
    return [ObjectInfo(keys.generation_marker("u" * 32, g), NOW, 20) for g in generations]


async def test_generations_rank_by_counter_whatever_order_their_markers_land_in() -> None:
    first = next_generation("")
    second = next_generation(first)
    third = next_generation(second)
    assert first[:8] == "00000001" and third[:8] == "00000003" and len(third) == 32
    # Two concurrent changes: the record holds the later one, whose marker may land first.
    assert newest_marker(_listed(third, second)) == third
    assert newest_marker(_listed(second, keys.DELETED_GENERATION, third)) == "deleted"
    assert newest_marker([]) is None
    assert predates("", first) and predates(second, third) and not predates(third, third)
    # A session opened after a change whose marker is not written yet is not refused.
    assert not predates(third, second)
    assert predates(third, keys.DELETED_GENERATION)
    assert not predates("", None)


async def test_the_sweep_tells_markers_from_sessions() -> None:
    settings = make_service().settings
    closing = ObjectInfo(keys.closing_marker("u" * 32), NOW, 20)
    assert keys.is_session_marker(closing.key) and sessions_only([closing]) == []
    for marker in (_listed(next_generation(""))[0], closing):
        assert not sweepable(marker, settings, NOW.timestamp() + 86400)
        later = NOW.timestamp() + settings.session_absolute_seconds + 86400
        assert sweepable(marker, settings, later)


# Over HTTP: two instances of the auth app on one store ------------------------------------


async def test_a_login_racing_a_disabling_is_answered_as_a_login_after_it(tmp_path: Path) -> None:
    """The login route answers the raced login as it answers a login to the disabled
    account: the same problem and headers, the failure charged; no session left."""
    url = f"file://{tmp_path / 'store'}"
    gate = PausedLogin(ObjectStore.from_url(url))
    admin = make_service(url)
    async with checked_client(make_service(url, store=gate), rate_limit=True) as client:
        user = await register(client, "alice")
        body = {"username": "alice", "password": APP_PASSWORD}
        answers: list[httpx.Response] = []

        async def log_in() -> None:
            answers.append(await client.post("/auth/login", json=body))

        async with anyio.create_task_group() as tg:
            tg.start_soon(log_in)
            await gate.reached.wait()
            await admin.update_user(user["id"], is_active=False)
            gate.release.set()
        raced = answers[0]
        after = await client.post("/auth/login", json=body)
    for answer in (raced, after):
        assert answer.status_code == 401, answer.text
        assert answer.json()["code"] == "invalid_credentials"
    assert sorted(raced.headers.keys()) == sorted(after.headers.keys())
    # The raced failure was charged: the one after it shows one attempt fewer left.
    left = [re.search(r'"login";r=(\d+)', a.headers["ratelimit"]) for a in (raced, after)]
    assert left[0] and left[1] and int(left[1][1]) == int(left[0][1]) - 1
    assert await _sessions(admin.store, user["id"]) == []


class LogoutEverywhereAfterEachSession(StoreWrapper):
    """After every session this store writes, `other` logs the user out everywhere."""

    def __init__(self, inner: Store, other: S3AuthService, user_id: str) -> None:
        super().__init__(inner)
        self.other, self.user_id = other, user_id

    async def create(self, key: str, value: Any) -> str:
        written = await super().create(key, value)
        if key.startswith(keys.user_sessions(self.user_id)):
            await self.other.revoke_all_user_tokens(self.user_id)
        return written


async def test_a_login_that_loses_every_attempt_is_refused_and_leaves_nothing() -> None:
    store = ObjectStore.from_url("memory://")
    other = make_service(store=store)
    user = await other.create_user("busy", "busy@example.com", PASSWORD)
    found = await other.authenticate_user("busy", PASSWORD)
    assert found is not None
    logged = RequestLog(store)
    login_host = make_service(store=LogoutEverywhereAfterEachSession(logged, other, user.id))
    with pytest.raises(InvalidCredentialsError):
        await login_host.create_token_pair(found)
    # Three attempts, each a session, the record read back (changed), the session deleted.
    assert logged.log == ["create sessions", "get user", "delete_many sessions"] * 3
    assert await _sessions(store, user.id) == []
