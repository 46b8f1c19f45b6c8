"""A session opened by a host whose clock runs far ahead (booted ahead, before NTP set it
right) is judged by when the store says it was written: its opening time counts at most
the skew allowance and a second past its object's Last-Modified (`session_times`), at the
refresh, the cap and the sessions page, with no request more.

Hosts share one memory:// store that stamps Last-Modified by a common time the test moves
by hand (`StoreOnSharedTime`); each host reads that time through its own offset.
"""

from __future__ import annotations

import pytest
from support import SharedTime, SkewedClock, StoreOnSharedTime, make_clocked_service, stored_user
from test_app import PASSWORD

from s3auth_asgi import S3AuthService, TokenExpiredError, TokenPair, TokenRevokedError, User
from s3auth_asgi.storage import ObjectStore, Store, keys

pytestmark = pytest.mark.anyio
AHEAD = 3600.0  # an hour
DAY = 86400

REFUSED = {"get": 1, "delete": 1}  # the session read, refused, deleted
REFRESH = {"get": 1, "list": 1, "put": 1}  # session; the cap's LIST; rotation


def host(store: Store, time: SharedTime, offset: float = 0.0, **overrides: int) -> S3AuthService:
    return make_clocked_service(store=store, clock=SkewedClock(time, offset), **overrides)


def shared() -> tuple[SharedTime, StoreOnSharedTime]:
    time = SharedTime()
    return time, StoreOnSharedTime(ObjectStore.from_url("memory://"), lambda: time.now)


async def ended_after_opening_ahead() -> tuple[
    StoreOnSharedTime, S3AuthService, S3AuthService, User, TokenPair
]:
    """A session of alice opened by a host an hour ahead; a minute later by the store's
    clock, every session ended from a host on it: (store, ahead, exact, alice, pair)."""
    time, store = shared()
    ahead, exact = host(store, time, AHEAD), host(store, time)
    alice = await stored_user(exact, "alice")
    opened = await ahead.create_token_pair(alice)
    time.advance(60)
    await exact.end_all_sessions()  # a minute after the login, by the store's clock
    return store, ahead, exact, alice, opened


async def test_a_session_opened_an_hour_ahead_ends_with_every_session() -> None:
    store, ahead, exact, alice, opened = await ended_after_opening_ahead()
    await exact.blacklist.sync()  # fresh: no sync in what is counted
    store.reset_counts()
    with pytest.raises(TokenRevokedError):
        await exact.refresh_access_token(opened.refresh_token)
    assert dict(store.requests) == REFUSED
    # A login after the end works, on either host, at the usual cost.
    for service in (exact, ahead):
        again = await service.create_token_pair(alice)
        store.reset_counts()
        await exact.refresh_access_token(again.refresh_token)
        assert dict(store.requests) == REFRESH


async def test_the_sessions_page_shows_no_session_ended_with_every_session() -> None:
    store, _, exact, alice, _ = await ended_after_opening_ahead()
    await exact.blacklist.sync()
    store.reset_counts()
    assert await exact.get_user_active_sessions(alice.id) == []
    assert dict(store.requests) == {"list": 1, "get": 1}


async def test_a_session_opened_an_hour_ahead_ends_at_its_lifetime_by_the_stores_clock() -> None:
    time, store = shared()
    lifetimes = {"refresh_token_expire_days": 1, "session_absolute_lifetime_days": 1}
    ahead, exact = host(store, time, AHEAD, **lifetimes), host(store, time, **lifetimes)
    alice = await stored_user(exact, "alice")
    opened = await ahead.create_token_pair(alice)
    time.advance(DAY - 60)
    # Within the lifetime: a refresh works, and writes the held opening down.
    rotated = await exact.refresh_access_token(opened.refresh_token)
    assert rotated.refresh_expires_in <= 60 + 10 + 1
    time.advance(60 + 10 + 2)  # past the lifetime and the allowance
    with pytest.raises(TokenExpiredError):
        await exact.refresh_access_token(rotated.refresh_token)


async def test_a_session_opened_an_hour_ahead_ranks_by_the_stores_clock_for_the_cap() -> None:
    time, store = shared()
    ahead, exact = host(store, time, AHEAD), host(store, time, max_sessions_per_user=2)
    alice = await stored_user(exact, "alice")
    first = await ahead.create_token_pair(alice)  # the oldest, by every clock but its own
    time.advance(60)
    second = await exact.create_token_pair(alice)
    time.advance(60)
    third = await exact.create_token_pair(alice)
    await exact.blacklist.sync()  # fresh: no sync in what is counted
    store.reset_counts()
    await exact.refresh_access_token(third.refresh_token)
    # Over the cap: the two others read; the oldest ended (a revocation, a DELETE).
    assert dict(store.requests) == {"get": 3, "list": 1, "put": 2, "delete": 1}
    with pytest.raises(TokenRevokedError):
        await exact.refresh_access_token(first.refresh_token)
    await exact.refresh_access_token(second.refresh_token)


async def test_a_rotation_writes_the_held_opening_down() -> None:
    """A host that has not read the end of every session yet rotates the session after it:
    the object's Last-Modified is then past the cut-off, but the opening time the rotation
    read (and wrote down) is not."""
    time, store = shared()
    ahead, exact, late = host(store, time, AHEAD), host(store, time), host(store, time)
    alice = await stored_user(exact, "alice")
    opened = await ahead.create_token_pair(alice)
    time.advance(30)
    rotated = await exact.refresh_access_token(opened.refresh_token)
    await late.blacklist.sync()  # fresh, so it does not read the cut-off below
    time.advance(5)
    await exact.end_all_sessions()  # past the held opening's bound from the first write
    time.advance(1)
    again = await late.refresh_access_token(rotated.refresh_token)
    with pytest.raises(TokenRevokedError):
        await exact.refresh_access_token(again.refresh_token)


async def test_the_sweep_deletes_a_session_opened_ahead_before_the_end_of_every_session() -> None:
    store, _, exact, alice, _ = await ended_after_opening_ahead()
    await exact.cleanup_expired_tokens()
    assert [info.key async for info in store.list(keys.user_sessions(alice.id))] == []


async def test_a_session_opened_after_every_session_ended_can_be_reauthenticated_and_ended() -> (
    None
):
    """What judges a session read by id (a re-authentication, an ending by id) holds its
    opening time to the store's clock too, and so sees a session opened after the end of
    every session as live."""
    time, store = shared()
    exact = host(store, time)
    alice = await exact.create_user("alice", "alice@example.com", PASSWORD)
    await exact.end_all_sessions()
    await exact.blacklist.sync()
    time.advance(60)
    pair = await exact.create_token_pair(alice)
    session_id = exact.tokens.parse_refresh_token(pair.refresh_token).session_id
    grant = await exact.reauthenticate(alice, session_id, PASSWORD)
    assert grant.access_token
    assert await exact.revoke_session(alice.id, session_id) is True
