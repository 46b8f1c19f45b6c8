"""Session lifetimes and the per-user cap (OWASP ASVS 5.0 V7.3.1 inactivity timeout,
V7.3.2 absolute lifetime, V7.1.2 concurrent sessions and what happens at the limit, V7.4.1
an ended session is unusable everywhere).

- Idle lifetime (`S3AUTH_REFRESH_TOKEN_EXPIRE_DAYS`): a session not refreshed for that long
  ends. Absolute lifetime (`S3AUTH_SESSION_ABSOLUTE_LIFETIME_DAYS`): however often it is
  refreshed, a session ends that long after the login, and no refresh token outlives it.
- Cap (`S3AUTH_MAX_SESSIONS_PER_USER`): only the newest `cap` live sessions of a user can
  refresh. The cap is enforced at refresh time, which keeps a login's store requests as
  they were; a refresh lists the user's sessions (one LIST) and ends, everywhere, those
  beyond the newest `cap`.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import anyio
import msgspec
import pytest
from conftest import SECRET, make_settings
from support import (  # noqa: F401 (clock_fixture registers the `clock` fixture)
    Clock,
    SharedTime,
    StoreClock,
    clock_fixture,
    late_session,
    login,
    make_clocked_service,
    skewed_host,
    stored_user,
)
from test_middleware_blacklist import until_synced

from s3auth_asgi import (
    ConfigurationError,
    S3AuthService,
    S3AuthSettings,
    TokenExpiredError,
    TokenPair,
    TokenRevokedError,
)
from s3auth_asgi.identifiers import new_session_id
from s3auth_asgi.models import Session, User
from s3auth_asgi.session_cap import beyond_cap, listed_as_expired
from s3auth_asgi.storage import ObjectInfo, ObjectStore, Store, keys

pytestmark = pytest.mark.anyio
DAY = 86400
PASSWORD = "Correct-Horse-42x"


def sid(service: S3AuthService, pair: TokenPair) -> str:
    return str(service.tokens.verify_access_token(pair.access_token)["sid"])


# The absolute lifetime ----------------------------------------------------------------------


async def test_refreshing_every_six_days_ends_at_the_absolute_lifetime(clock: Clock) -> None:
    service = make_clocked_service(clock=clock)
    started = int(clock())
    _, pair = await login(service)
    absolute = started + 30 * DAY
    assert pair.refresh_expires_in == 7 * DAY
    for _ in range(4):  # days 6, 12, 18, 24: each within the idle lifetime of the last
        clock.advance(6 * DAY)
        pair = await service.refresh_access_token(pair.refresh_token)
        now = int(clock())
        assert pair.refresh_expires_in == min(7 * DAY, absolute - now)
    clock.advance(6 * DAY - 60)  # a minute before day 30: still live, a minute left
    pair = await service.refresh_access_token(pair.refresh_token)
    assert pair.refresh_expires_in == 60
    clock.advance(60)
    with pytest.raises(TokenExpiredError) as info:
        await service.refresh_access_token(pair.refresh_token)
    assert info.value.code == "token_expired"
    with pytest.raises(TokenRevokedError):  # the session is gone, not merely refused
        await service.refresh_access_token(pair.refresh_token)


async def test_no_refresh_token_outlives_the_absolute_expiry(clock: Clock) -> None:
    service = make_clocked_service(
        clock=clock, refresh_token_expire_days=7, session_absolute_lifetime_days=10
    )
    user, pair = await login(service)
    absolute = int(clock()) + 10 * DAY
    (info,) = await service.get_user_active_sessions(user.id)
    assert info.absolute_expires_at == absolute and info.expires_at == int(clock()) + 7 * DAY
    for _ in range(14):
        clock.advance(DAY * 0.8)
        try:
            pair = await service.refresh_access_token(pair.refresh_token)
        except TokenExpiredError:
            break
        now = int(clock())
        assert now + pair.refresh_expires_in <= absolute
        (info,) = await service.get_user_active_sessions(user.id)
        assert info.expires_at == now + pair.refresh_expires_in <= info.absolute_expires_at
        stored = await service.store.get(keys.session(user.id, info.id), Session)
        assert stored is not None and stored.value.expires_at <= absolute
    assert int(clock()) >= absolute


async def test_no_access_token_outlives_the_session_so_logging_out_ends_them_all(
    clock: Clock,
) -> None:
    """A refresh a minute before the absolute expiry: its access token expires with the
    session. Once the session has ended (and its object is gone), nothing names that token
    any more: no logout, however thorough, could revoke it, so it must not outlive it."""
    service = make_clocked_service(clock=clock)
    user, pair = await login(service)
    for days in (6, 6, 6, 6, 6 - 60 / DAY):  # the last a minute before the 30th day
        clock.advance(days * DAY)
        pair = await service.refresh_access_token(pair.refresh_token)
    assert pair.expires_in == 60 == pair.refresh_expires_in
    claims = service.tokens.verify_access_token(pair.access_token)
    assert claims["exp"] == int(clock()) + 60
    clock.advance(60)
    with pytest.raises(TokenExpiredError):  # the session ends, and its object goes
        await service.refresh_access_token(pair.refresh_token)
    assert await service.revoke_all_user_tokens(user.id) == 0  # nothing left to name
    clock.advance(service.settings.leeway_seconds + 1)
    with pytest.raises(TokenExpiredError):
        service.decode_token(pair.access_token)


async def test_the_idle_lifetime_still_applies(clock: Clock) -> None:
    service = make_clocked_service(clock=clock)
    user, pair = await login(service)
    clock.advance(3 * DAY)
    pair = await service.refresh_access_token(pair.refresh_token)
    clock.advance(7 * DAY)  # unused for the idle lifetime, well before the absolute one
    with pytest.raises(TokenExpiredError):
        await service.refresh_access_token(pair.refresh_token)
    assert await service.get_user_active_sessions(user.id) == []


async def test_a_shorter_absolute_lifetime_applies_to_existing_sessions(clock: Clock) -> None:
    store = ObjectStore.from_url("memory://")
    before = make_clocked_service(clock=clock, store=store)
    _, pair = await login(before)
    clock.advance(6 * DAY)
    pair = await before.refresh_access_token(pair.refresh_token)
    clock.advance(6 * DAY)
    after = make_clocked_service(
        clock=clock, store=store, refresh_token_expire_days=7, session_absolute_lifetime_days=10
    )
    with pytest.raises(TokenExpiredError):
        await after.refresh_access_token(pair.refresh_token)


async def test_sessions_written_before_the_absolute_lifetime_keep_working(clock: Clock) -> None:
    """An object of the old shape, without `absolute_expires_at`: its absolute expiry is its
    creation plus the lifetime, and the first rotation writes it down."""
    service = make_clocked_service(clock=clock)
    user = await stored_user(service)
    now = int(clock())
    created = now - 29 * DAY
    session_id = new_session_id(created * 1000)
    secret = "old-secret-0123456789abcdef"
    old_shape = {
        "id": session_id,
        "user_id": user.id,
        "secret": secret,
        "generation": 3,
        "rotated_at": now - DAY,
        "created_at": created,
        "last_used_at": now - DAY,
        "expires_at": now + 6 * DAY,
        "username": user.username,
        "is_admin": False,
        "scopes": [],
    }
    key = keys.session(user.id, session_id)
    await service.store.create(key, old_shape)
    (info,) = await service.get_user_active_sessions(user.id)
    assert info.absolute_expires_at == created + 30 * DAY
    token = service.tokens.make_refresh_token(user.id, session_id, 3, secret)
    pair = await service.refresh_access_token(token)
    assert pair.refresh_expires_in == DAY  # what is left of its 30 days, not 7 more
    stored = await service.store.get(key, Session)
    assert stored is not None and stored.value.absolute_expires_at == created + 30 * DAY
    clock.advance(DAY)
    with pytest.raises(TokenExpiredError):
        await service.refresh_access_token(pair.refresh_token)


async def test_cleanup_deletes_sessions_past_their_absolute_lifetime(clock: Clock) -> None:
    """From the listing alone: the id says when the session was created."""
    service = make_clocked_service(clock=clock)
    user, live = await login(service)
    now = int(clock())
    created = now - 31 * DAY
    session_id = new_session_id(created * 1000)
    rotated_yesterday = Session(  # as the code before the absolute lifetime left it
        id=session_id,
        user_id=user.id,
        secret="old-secret-0123456789abcdef",
        created_at=created,
        last_used_at=now - DAY,
        expires_at=now + 6 * DAY,
        username=user.username,
    )
    await service.store.create(keys.session(user.id, session_id), rotated_yesterday)
    service.store.reset_counts()
    assert await service.cleanup_expired_tokens() == 1
    # A LIST each of sessions, revocations, mailed tokens, events and rate-limit objects;
    # the GET of the end of every session.
    assert dict(service.store.requests) == {"list": 5, "get": 1, "delete": 1}
    (info,) = await service.get_user_active_sessions(user.id)
    assert info.id == sid(service, live)


# The cap ----------------------------------------------------------------------------------


async def logins(service: S3AuthService, user: User, clock: Clock, n: int) -> list[TokenPair]:
    """`n` sessions, one a second apart (a session id begins with its creation time)."""
    pairs = []
    for _ in range(n):
        pairs.append(await service.create_token_pair(user))
        clock.advance(1)
    return pairs


async def test_the_login_beyond_the_cap_ends_the_oldest_session(clock: Clock) -> None:
    store = ObjectStore.from_url("memory://")
    service = make_clocked_service(clock=clock, store=store, max_sessions_per_user=3)
    elsewhere = make_clocked_service(clock=clock, store=store, max_sessions_per_user=3)
    user = await stored_user(service)
    pairs = await logins(service, user, clock, 3)
    store.reset_counts()
    pairs += await logins(service, user, clock, 1)
    # A login costs what it does under the cap: its session, and the user record read back.
    assert dict(store.requests) == {"put": 1, "get": 1}
    await elsewhere.blacklist.sync()
    await service.blacklist.sync()  # no refresh counted below waits for a sync
    oldest, *rest = pairs
    # The oldest session can no longer refresh: trying ends it, its access tokens included.
    store.reset_counts()
    with pytest.raises(TokenRevokedError) as info:
        await service.refresh_access_token(oldest.refresh_token)
    assert info.value.code == "token_revoked"
    # The LIST shows more sessions than the cap: the three others are read, to tell which
    # can still be used.
    assert dict(store.requests) == {"get": 4, "list": 1, "put": 1, "delete": 1}
    with pytest.raises(TokenRevokedError):
        service.decode_token(oldest.access_token)
    elsewhere.decode_token(oldest.access_token)  # until its snapshot syncs
    await elsewhere.ensure_fresh(strict=True)  # a sync that began after the refresh
    with pytest.raises(TokenRevokedError):
        elsewhere.decode_token(oldest.access_token)
    # The refused token above started a sync of this instance's own in the background:
    # let it finish, so that none of its requests lands among the refreshes counted below.
    await until_synced(service)
    # The others keep working; a refresh within the cap costs one LIST more than before.
    for pair in rest:
        elsewhere.decode_token(pair.access_token)
        store.reset_counts()
        await service.refresh_access_token(pair.refresh_token)
        assert dict(store.requests) == {"get": 1, "list": 1, "put": 1}
    assert [s.id for s in await service.get_user_active_sessions(user.id)] == [
        sid(service, p) for p in reversed(rest)
    ]


async def test_a_refresh_within_the_cap_ends_the_sessions_beyond_it(clock: Clock) -> None:
    """The newest session's refresh ends every session beyond the cap at once (one
    revocation entry naming them, one batch DELETE), without waiting for them to refresh."""
    store = ObjectStore.from_url("memory://")
    service = make_clocked_service(clock=clock, store=store, max_sessions_per_user=2)
    reader = make_clocked_service(clock=clock, store=store, max_sessions_per_user=2)
    user = await stored_user(service)
    pairs = await logins(service, user, clock, 5)
    await reader.blacklist.sync()
    await service.blacklist.sync()
    store.reset_counts()
    await service.refresh_access_token(pairs[-1].refresh_token)
    # The session, the LIST, the four others (more than the cap: each read to tell which
    # can still be used), the revocation entry, the rotation, the DELETE.
    assert dict(store.requests) == {"get": 5, "list": 1, "put": 2, "delete": 1}
    assert len([i async for i in store.list(keys.user_sessions(user.id))]) == 2
    await reader.blacklist.sync()
    for pair in pairs[:3]:
        with pytest.raises(TokenRevokedError):
            reader.decode_token(pair.access_token)
        with pytest.raises(TokenRevokedError):
            await reader.refresh_access_token(pair.refresh_token)
    for pair in pairs[3:]:
        reader.decode_token(pair.access_token)
    await reader.refresh_access_token(pairs[3].refresh_token)
    store.reset_counts()  # the previous token within the grace window lists nothing
    await reader.refresh_access_token(pairs[3].refresh_token)
    assert dict(store.requests) == {"get": 1}


async def test_the_sessions_page_shows_and_keeps_the_newest_within_the_cap(clock: Clock) -> None:
    service = make_clocked_service(clock=clock, max_sessions_per_user=3)
    user = await stored_user(service)
    pairs = await logins(service, user, clock, 4)
    listed = await service.get_user_active_sessions(user.id)
    assert [s.id for s in listed] == [sid(service, p) for p in reversed(pairs[1:])]
    with pytest.raises(TokenRevokedError):  # listing it ended the session beyond the cap
        service.decode_token(pairs[0].access_token)


async def test_idle_expired_sessions_do_not_count_against_the_cap(clock: Clock) -> None:
    """Newer sessions that were abandoned push no live session out once they have expired.
    Whether a listed session has expired is decided from the listing (its Last-Modified,
    its id's creation time), as the clean-up decides, plus the skew allowance."""
    store = ObjectStore.from_url("memory://")
    lenient = make_clocked_service(clock=clock, store=store)
    strict = make_clocked_service(clock=clock, store=store, max_sessions_per_user=2)
    user = await stored_user(lenient)
    # `clock` starts at the real time, which is what the memory store stamps objects with:
    # their Last-Modified is when the test began, whatever `clock` says later.
    kept = await lenient.create_token_pair(user)
    clock.advance(1)
    await logins(lenient, user, clock, 3)  # abandoned: never refreshed
    clock.advance(4 * DAY)
    kept = await lenient.refresh_access_token(kept.refresh_token)
    clock.advance(4 * DAY)  # the abandoned ones have been idle for more than 7 days
    kept = await strict.refresh_access_token(kept.refresh_token)
    assert [s.id for s in await strict.get_user_active_sessions(user.id)] == [sid(strict, kept)]


async def test_the_cap_holds_across_instances_and_races(store_url: str) -> None:
    """Logins and refreshes through four service instances on one store. Once the logins
    have finished, exactly the newest `cap` sessions can refresh. While a login races a
    refresh, the refresh may not yet see it: the documented slack is one more successful
    refresh per session listed before that login landed; its next refresh fails."""
    cap = 3
    clock = Clock()
    shared = ObjectStore.from_url(store_url) if store_url == "memory://" else None
    services = [
        make_clocked_service(store_url, clock=clock, store=shared, max_sessions_per_user=cap)
        for _ in range(4)
    ]
    user = await stored_user(services[0])
    pairs: list[TokenPair] = []

    async def log_in(i: int) -> None:
        pairs.append(await services[i % 4].create_token_pair(user))

    async with anyio.create_task_group() as tasks:
        for i in range(8):
            tasks.start_soon(log_in, i)
    newest = sorted(pairs, key=lambda p: sid(services[0], p))[-cap:]

    refreshed: dict[str, TokenPair] = {}
    refused: list[str] = []

    async def refresh(i: int, pair: TokenPair) -> None:
        try:
            refreshed[sid(services[0], pair)] = await services[i % 4].refresh_access_token(
                pair.refresh_token
            )
        except TokenRevokedError:
            refused.append(sid(services[0], pair))

    async with anyio.create_task_group() as tasks:
        for i, pair in enumerate(pairs):
            tasks.start_soon(refresh, i, pair)
    assert sorted(refreshed) == sorted(sid(services[0], p) for p in newest)
    assert len(refused) == len(pairs) - cap

    # A race: two more logins while the current sessions refresh.
    clock.advance(1)
    current = list(refreshed.values())
    refreshed.clear()
    refused.clear()
    late: list[TokenPair] = []

    async def late_login(i: int) -> None:
        late.append(await services[i].create_token_pair(user))

    async with anyio.create_task_group() as tasks:
        for i, pair in enumerate(current):
            tasks.start_soon(refresh, i, pair)
        for i in range(2):
            tasks.start_soon(late_login, i)
    assert len(refreshed) + len(refused) == cap  # each either refreshed or was refused

    # Once the race is over, the newest `cap` sessions, and only they, refresh.
    survivors = [*refreshed.values(), *late]
    clock.advance(1)
    answers: dict[str, bool] = {}
    for i, pair in enumerate(survivors):
        try:
            await services[i % 4].refresh_access_token(pair.refresh_token)
            answers[sid(services[0], pair)] = True
        except TokenRevokedError:
            answers[sid(services[0], pair)] = False
    every = sorted({sid(services[0], p) for p in [*pairs, *late]})
    assert {s for s, ok in answers.items() if ok} == set(every[-cap:])
    listed = [i async for i in services[0].store.list(keys.user_sessions(user.id))]
    assert len(listed) == cap


# What the cap counts: the sessions that can still be used ---------------------------------


async def late_login_among_others(clock: Clock) -> tuple[S3AuthService, User, list[TokenPair]]:
    """Three sessions of one account, a second apart, under a cap of two: the oldest and
    the newest opened after a change of the account that ended its sessions, and between
    them one whose login read the account before that change and wrote its session after
    (`session_generation`), which no refresh accepts."""
    service = make_clocked_service(clock=clock, max_sessions_per_user=2)
    created = await service.create_user("alice", "alice@example.com", PASSWORD)
    stale = await service.authenticate_user("alice", PASSWORD)  # the late login's read
    assert stale is not None
    await service.update_user(created.id, scopes=["reports"])  # ends the account's sessions
    current = await service.get_user_by_id(created.id)
    assert current is not None
    pairs = []
    for user in (current, stale, current):
        # The late one as a host of an earlier version opens it: this one would find the
        # change, and open none.
        opened = service.create_token_pair(user) if user is current else late_session(service, user)
        pairs.append(await opened)
        clock.advance(1)
    await service.blacklist.sync()  # fresh: what is counted is the session's
    service.store.reset_counts()
    return service, created, pairs


async def test_a_late_login_does_not_count_against_the_cap(clock: Clock) -> None:
    service, user, (oldest, late, newest) = await late_login_among_others(clock)
    store = service.store
    oldest = await service.refresh_access_token(oldest.refresh_token)
    # More sessions listed than the cap: the other two are read, and the late one, which
    # cannot refresh, is ended (its `session` entry, a DELETE) instead of the oldest.
    assert dict(store.requests) == {"get": 3, "list": 1, "put": 2, "delete": 1}
    await service.ensure_fresh()  # so that decoding starts no background sync
    with pytest.raises(TokenRevokedError):
        service.decode_token(late.access_token)
    with pytest.raises(TokenRevokedError):
        await service.refresh_access_token(late.refresh_token)
    store.reset_counts()  # within the cap again: nothing more is read
    newest = await service.refresh_access_token(newest.refresh_token)
    assert dict(store.requests) == {"get": 1, "list": 1, "put": 1}
    shown = await service.get_user_active_sessions(user.id)
    assert [s.id for s in shown] == [sid(service, newest), sid(service, oldest)]


async def test_the_sessions_page_neither_shows_nor_counts_a_late_login(clock: Clock) -> None:
    service, user, (oldest, late, newest) = await late_login_among_others(clock)
    shown = await service.get_user_active_sessions(user.id)
    assert [s.id for s in shown] == [sid(service, newest), sid(service, oldest)]
    # Each session read; the late one ended: its `session` entry, a DELETE.
    assert dict(service.store.requests) == {"list": 1, "get": 3, "put": 1, "delete": 1}
    with pytest.raises(TokenRevokedError):
        service.decode_token(late.access_token)
    await service.refresh_access_token(oldest.refresh_token)


async def test_a_late_login_within_the_cap_is_not_shown(clock: Clock) -> None:
    service, user, (oldest, late, newest) = await late_login_among_others(clock)
    await service.revoke_refresh_token(newest.refresh_token)
    service.store.reset_counts()
    shown = await service.get_user_active_sessions(user.id)
    assert [s.id for s in shown] == [sid(service, oldest)]
    assert dict(service.store.requests) == {"list": 1, "get": 2}  # nothing ended
    with pytest.raises(TokenRevokedError):  # its own refresh ends it
        await service.refresh_access_token(late.refresh_token)


async def test_a_session_past_its_written_expiry_does_not_count_after_a_longer_idle_lifetime() -> (
    None
):
    """A lengthened idle lifetime applies from a session's next refresh: one that expired
    under the old setting stays expired, though its listing, judged by today's, looks
    live. It must not push a session that can refresh out of the cap."""
    time = SharedTime()
    store = StoreClock(ObjectStore.from_url("memory://"), lambda: time.now)
    before = skewed_host(store, time, 0.0, refresh_token_expire_days=1, max_sessions_per_user=2)
    user = await stored_user(before)
    kept = await before.create_token_pair(user)
    time.advance(1)
    lapsed = await before.create_token_pair(user)  # never refreshed
    time.advance(DAY // 2)
    kept = await before.refresh_access_token(kept.refresh_token)
    time.advance(DAY * 7 // 10)  # the lapsed one has expired; the kept one has not
    after = skewed_host(store, time, 0.0, refresh_token_expire_days=7, max_sessions_per_user=2)
    newest = await after.create_token_pair(user)
    await after.blacklist.sync()
    store.reset_counts()
    kept = await after.refresh_access_token(kept.refresh_token)
    # The lapsed session, read as three are listed, is ended rather than the kept one.
    assert dict(store.requests) == {"get": 3, "list": 1, "put": 2, "delete": 1}
    assert await listed(store, keys.user_sessions(user.id)) == sorted(
        keys.session(user.id, sid(after, p)) for p in (kept, newest)
    )
    with pytest.raises(TokenRevokedError):
        await after.refresh_access_token(lapsed.refresh_token)
    shown = await after.get_user_active_sessions(user.id)
    assert [s.id for s in shown] == [sid(after, newest), sid(after, kept)]


async def listed(store: Store, prefix: str) -> list[str]:
    return [info.key async for info in store.list(prefix)]


# Settings ---------------------------------------------------------------------------------


def test_the_lifetimes_and_the_cap_are_read_from_the_environment() -> None:
    settings = S3AuthSettings.from_env(
        {
            "S3AUTH_SECRET_KEY": SECRET,
            "S3AUTH_REFRESH_TOKEN_EXPIRE_DAYS": "3",
            "S3AUTH_SESSION_ABSOLUTE_LIFETIME_DAYS": "14",
            "S3AUTH_MAX_SESSIONS_PER_USER": "5",
        }
    )
    assert settings.refresh_token_seconds == 3 * DAY
    assert settings.session_absolute_seconds == 14 * DAY
    assert settings.max_sessions_per_user == 5
    defaults = S3AuthSettings(secret_key=SECRET)
    assert (defaults.session_absolute_lifetime_days, defaults.max_sessions_per_user) == (30, 100)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"S3AUTH_SESSION_ABSOLUTE_LIFETIME_DAYS": "0"}, "S3AUTH_SESSION_ABSOLUTE_LIFETIME_DAYS"),
        ({"S3AUTH_SESSION_ABSOLUTE_LIFETIME_DAYS": "6"}, "S3AUTH_SESSION_ABSOLUTE_LIFETIME_DAYS"),
        ({"S3AUTH_REFRESH_TOKEN_EXPIRE_DAYS": "31"}, "S3AUTH_REFRESH_TOKEN_EXPIRE_DAYS"),
        ({"S3AUTH_MAX_SESSIONS_PER_USER": "0"}, "S3AUTH_MAX_SESSIONS_PER_USER"),
        ({"S3AUTH_MAX_SESSIONS_PER_USER": "many"}, "S3AUTH_MAX_SESSIONS_PER_USER"),
    ],
)
def test_bad_lifetimes_and_caps_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        S3AuthSettings.from_env({"S3AUTH_SECRET_KEY": SECRET, **env})


def test_session_objects_without_the_absolute_expiry_decode() -> None:
    encoded = msgspec.json.encode(
        {
            "id": "0" * 32,
            "user_id": "1" * 32,
            "secret": "x",
            "created_at": 1,
            "last_used_at": 1,
            "expires_at": 2,
            "username": "alice",
        }
    )
    session = msgspec.json.decode(encoded, type=Session)
    assert session.absolute_expires_at == 0  # unknown: the reader applies the setting
    assert session.absolute_expiry(30 * DAY) == 1 + 30 * DAY


def test_the_cap_does_not_count_a_session_that_may_have_expired() -> None:
    # The sweep keeps a session while it may still refresh (the skew allowance towards
    # live); the cap must not let such a session push a live one out (towards expired).
    settings = make_settings(max_sessions_per_user=2)
    now = 1_800_000_000.0

    def listed(created: float, written: float) -> ObjectInfo:
        key = keys.session("u" * 32, new_session_id(int(created * 1000)))
        return ObjectInfo(key, dt.datetime.fromtimestamp(written, dt.UTC), 100)

    idle = settings.refresh_token_seconds
    lapsed = listed(now - idle - 100, now - idle - 5)  # idle expiry passed 5 s ago
    older, newer = listed(now - 50, now - 1), listed(now - 10, now - 1)
    assert not listed_as_expired(lapsed, settings, now)  # the sweep keeps it, within skew
    assert beyond_cap([lapsed, older, newer], settings, now) == []  # and it pushes none out
    third = listed(now - 5, now - 1)
    assert beyond_cap([lapsed, older, newer, third], settings, now) == [older.key]


async def test_logging_out_everywhere_counts_the_sessions_it_ended(tmp_path: Path) -> None:
    """A session idle past its lifetime that the sweep has not deleted yet was ended
    already: logging out everywhere deletes it, and does not count it."""
    service = make_clocked_service(f"file://{tmp_path}", clock=time.time)
    user = await stored_user(service)
    await service.create_token_pair(user)
    (abandoned,), _ = await service.store.list_page(keys.user_sessions(user.id), None, 9)
    idle = service.settings.refresh_token_seconds + service.settings.revocation_skew_seconds
    written = time.time() - idle - 60
    os.utime(tmp_path / abandoned.key, (written, written))
    await service.create_token_pair(user)
    assert await service.revoke_all_user_tokens(user.id) == 1
    listed = [i async for i in service.store.list(keys.user_sessions(user.id))]
    assert [i for i in listed if not keys.is_session_marker(i.key)] == []
