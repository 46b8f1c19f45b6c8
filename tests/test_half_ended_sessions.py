"""A session whose ending was cut short after its revocation landed and before its DELETE:
its object is left, but its access tokens are refused and no refresh accepts it. The
endings that revoke first leave it (the cap's, here; an account change's, a deletion's),
not a logout nor an ending by id, which delete first (`test_ending_order`). It must not be
counted against `S3AUTH_MAX_SESSIONS_PER_USER`, read, nor shown on the sessions page;
whoever lists it on a host that holds its revocation deletes it, at no request more than
that DELETE.
"""

from __future__ import annotations

import pytest
from support import (  # noqa: F401 (clock_fixture registers the `clock` fixture)
    Clock,
    clock_fixture,
    make_clocked_service,
    stored_user,
)
from test_faults import FailFirst

from s3auth_asgi import S3AuthService, StoreUnavailableError, TokenPair, TokenRevokedError
from s3auth_asgi.session_generation import sessions_only
from s3auth_asgi.storage import ObjectStore, keys

pytestmark = pytest.mark.anyio


def sid(service: S3AuthService, pair: TokenPair) -> str:
    return str(service.tokens.verify_access_token(pair.access_token)["sid"])


async def _half_ended(
    clock: Clock,
) -> tuple[ObjectStore, S3AuthService, list[TokenPair], TokenPair]:
    """Three sessions of alice, a second apart, through a host whose cap is 2; the newest's
    refresh ends the oldest, beyond the cap, and its DELETE fails. The store, the host (its
    snapshot synced), the two live pairs (oldest first) and the half-ended one."""
    shared = ObjectStore.from_url("memory://")
    failing = FailFirst(shared, "delete_many", keys.SESSIONS, after=False)
    host = make_clocked_service(clock=clock, store=failing, max_sessions_per_user=2)
    user = await stored_user(host)
    pairs = []
    for _ in range(3):
        pairs.append(await host.create_token_pair(user))
        clock.advance(1)
    ended, *live = pairs
    with pytest.raises(StoreUnavailableError):
        await host.refresh_access_token(live[-1].refresh_token)
    assert len(await _listed(shared, user.id)) == 3  # left behind
    with pytest.raises(TokenRevokedError):  # refused all the same
        host.decode_token(ended.access_token)
    await host.blacklist.sync()
    shared.reset_counts()
    return shared, host, live, ended


async def _listed(store: ObjectStore, user_id: str) -> list[str]:
    return [
        keys.id_from_key(i.key)
        for i in sessions_only([i async for i in store.list(keys.user_sessions(user_id))])
    ]


async def test_a_half_ended_session_is_neither_counted_nor_read(clock: Clock) -> None:
    shared, _, (older, newer), ended = await _half_ended(clock)
    # Another host, which has synced the revocation, serves the older session's refresh.
    other = make_clocked_service(clock=clock, store=shared, max_sessions_per_user=2)
    await other.blacklist.sync()
    shared.reset_counts()
    await other.refresh_access_token(older.refresh_token)
    # The session's GET, the LIST, the rotation, and the DELETE of the half-ended one:
    # counted without it, the listing is within the cap, so nothing else is read, nor
    # ended again.
    assert dict(shared.requests) == {"get": 1, "list": 1, "put": 1, "delete": 1}
    user_id = str(other.decode_token(older.access_token)["sub"])
    assert sorted(await _listed(shared, user_id)) == sorted([sid(other, older), sid(other, newer)])
    shared.reset_counts()
    await other.refresh_access_token(newer.refresh_token)
    assert dict(shared.requests) == {"get": 1, "list": 1, "put": 1}
    with pytest.raises(TokenRevokedError):
        await other.refresh_access_token(ended.refresh_token)


async def test_the_sessions_page_neither_shows_nor_keeps_a_half_ended_session(
    clock: Clock,
) -> None:
    shared, host, live, ended = await _half_ended(clock)
    user_id = str(host.decode_token(live[0].access_token)["sub"])
    shown = await host.get_user_active_sessions(user_id, sid(host, live[0]))
    assert sorted(s.id for s in shown) == sorted(sid(host, pair) for pair in live)
    # The LIST, the live sessions' GETs (the page shows what they hold), the DELETE.
    assert dict(shared.requests) == {"list": 1, "get": 2, "delete": 1}
    assert sorted(await _listed(shared, user_id)) == sorted(sid(host, pair) for pair in live)
    assert sid(host, ended) not in [s.id for s in await host.get_user_active_sessions(user_id)]


async def test_the_sweep_deletes_a_half_ended_session_its_host_holds_revoked(clock: Clock) -> None:
    shared, host, live, _ = await _half_ended(clock)
    assert await host.cleanup_expired_tokens() == 1
    # What a sweep costs anyway: no request more to tell which sessions have ended.
    assert dict(shared.requests) == {"list": 5, "get": 1, "delete": 1}
    user_id = str(host.decode_token(live[0].access_token)["sub"])
    assert sorted(await _listed(shared, user_id)) == sorted(sid(host, pair) for pair in live)


async def test_a_half_ended_session_is_ended_by_id_as_asked(clock: Clock) -> None:
    """Not shown any more, but what its caller asked for (a page loaded before the cap
    ended it): the ending by id ends it, as answered, as it ends a live one."""
    shared, host, _, ended = await _half_ended(clock)
    names = host.tokens.parse_refresh_token(ended.refresh_token)
    assert await host.revoke_session(names.user_id, names.session_id) is True
    # The session's GET, the DELETE, its revocation written again.
    assert dict(shared.requests) == {"get": 1, "delete": 1, "put": 1}
    assert await host.revoke_session(names.user_id, names.session_id) is False
