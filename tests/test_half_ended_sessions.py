"""A session whose ending was cut short after its revocation landed and before its DELETE
(a logout by refresh token, the end of a session by id): its object is left, but its
access tokens are refused and no refresh accepts it. It must not count against
`S3AUTH_MAX_SESSIONS_PER_USER`, where it would push the user's live sessions out, nor be
shown on the sessions page; whoever lists it on a host that holds its revocation deletes
it, at no request more than that DELETE.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

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

Ending = Callable[[S3AuthService, TokenPair], Awaitable[object]]


def sid(service: S3AuthService, pair: TokenPair) -> str:
    return str(service.tokens.verify_access_token(pair.access_token)["sid"])


async def _by_refresh_token(service: S3AuthService, pair: TokenPair) -> object:
    return await service.revoke_refresh_token(pair.refresh_token)


async def _by_id(service: S3AuthService, pair: TokenPair) -> object:
    claims = service.tokens.verify_access_token(pair.access_token)
    return await service.revoke_session(str(claims["sub"]), str(claims["sid"]))


async def _half_ended(
    clock: Clock, ending: Ending, before: int, after: int
) -> tuple[ObjectStore, S3AuthService, list[TokenPair], TokenPair]:
    """`before` sessions of alice, then one whose `ending` fails at its DELETE, then
    `after` more, a second apart, through a host whose cap is 2; the store, the host (its
    snapshot synced), the live pairs and the half-ended one."""
    shared = ObjectStore.from_url("memory://")
    failing = FailFirst(shared, "delete", "sessions/", after=False)
    host = make_clocked_service(clock=clock, store=failing, max_sessions_per_user=2)
    user = await stored_user(host)
    pairs = []
    for _ in range(before + 1 + after):
        pairs.append(await host.create_token_pair(user))
        clock.advance(1)
    ended = pairs.pop(before)
    with pytest.raises(StoreUnavailableError):
        await ending(host, ended)
    assert len(await _listed(shared, user.id)) == before + 1 + after  # left behind
    with pytest.raises(TokenRevokedError):  # refused all the same
        host.decode_token(ended.access_token)
    await host.blacklist.sync()
    shared.reset_counts()
    return shared, host, pairs, ended


async def _listed(store: ObjectStore, user_id: str) -> list[str]:
    return [
        keys.id_from_key(i.key)
        for i in sessions_only([i async for i in store.list(keys.user_sessions(user_id))])
    ]


@pytest.mark.parametrize("ending", [_by_refresh_token, _by_id], ids=["logout", "by id"])
async def test_a_half_ended_session_pushes_no_live_one_out_of_the_cap(
    clock: Clock, ending: Ending
) -> None:
    shared, _, (oldest, newest), ended = await _half_ended(clock, ending, 1, 1)
    # Another host, which has synced the revocation, serves the oldest session's refresh.
    other = make_clocked_service(clock=clock, store=shared, max_sessions_per_user=2)
    await other.blacklist.sync()
    shared.reset_counts()
    await other.refresh_access_token(oldest.refresh_token)
    # The session's GET, the LIST, the rotation, and the DELETE of the half-ended one:
    # counted without it, the listing is within the cap, so nothing else is read.
    assert dict(shared.requests) == {"get": 1, "list": 1, "put": 1, "delete": 1}
    user_id = str(other.decode_token(oldest.access_token)["sub"])
    assert sorted(await _listed(shared, user_id)) == sorted(
        [sid(other, oldest), sid(other, newest)]
    )
    shared.reset_counts()
    await other.refresh_access_token(newest.refresh_token)
    assert dict(shared.requests) == {"get": 1, "list": 1, "put": 1}
    with pytest.raises(TokenRevokedError):
        await other.refresh_access_token(ended.refresh_token)


@pytest.mark.parametrize("ending", [_by_refresh_token, _by_id], ids=["logout", "by id"])
async def test_the_sessions_page_neither_shows_nor_keeps_a_half_ended_session(
    clock: Clock, ending: Ending
) -> None:
    shared, host, (live,), ended = await _half_ended(clock, ending, 1, 0)
    user_id = str(host.decode_token(live.access_token)["sub"])
    shown = await host.get_user_active_sessions(user_id, sid(host, live))
    assert [s.id for s in shown] == [sid(host, live)]
    # The LIST, the live session's GET (the page shows what it holds), the DELETE.
    assert dict(shared.requests) == {"list": 1, "get": 1, "delete": 1}
    assert await _listed(shared, user_id) == [sid(host, live)]
    assert sid(host, ended) not in [s.id for s in await host.get_user_active_sessions(user_id)]


async def test_the_sweep_deletes_a_half_ended_session_its_host_holds_revoked(clock: Clock) -> None:
    shared, host, (live,), _ = await _half_ended(clock, _by_refresh_token, 1, 0)
    assert await host.cleanup_expired_tokens() == 1
    # What a sweep costs anyway: no request more to tell which sessions have ended.
    assert dict(shared.requests) == {"list": 5, "get": 1, "delete": 1}
    user_id = str(host.decode_token(live.access_token)["sub"])
    assert await _listed(shared, user_id) == [sid(host, live)]


async def test_an_ending_by_id_cut_short_is_finished_by_the_same_request_again(
    clock: Clock,
) -> None:
    """Not shown any more, but what its caller asked for: the retry ends it, as answered."""
    shared, host, _, ended = await _half_ended(clock, _by_id, 1, 0)
    assert await _by_id(host, ended) is True
    # The session's GET, its revocation written again, the DELETE.
    assert dict(shared.requests) == {"get": 1, "put": 1, "delete": 1}
    assert await _by_id(host, ended) is False
