"""A logout by refresh token and the end of a session by id, cut short by the store.

Whatever the store lets through, an ending never comes undone: either the session goes on
as it was (its DELETE failed; the answer says so, and the same request tried again ends
it) or it has ended for good (its DELETE landed: no refresh of it on any host, whenever).
What an ending that revoked first and then failed at its DELETE left, a session refused
only while its revocation was held, and refreshing again once it lapsed, never arises.
Budgets: 1 GET, 1 DELETE, 1 PUT (the revocation), however long the DELETE took.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from conftest import make_service
from support import (  # noqa: F401 (clock_fixture registers the `clock` fixture)
    Clock,
    StoreWrapper,
    clock_fixture,
    make_clocked_service,
    stored_user,
)
from test_app import PASSWORD, assert_problem, bearer, client_for, login, mounted
from test_faults import FailFirst

from s3auth_asgi import (
    S3AuthService,
    SessionNotFoundError,
    StoreUnavailableError,
    TokenPair,
    TokenRevokedError,
)
from s3auth_asgi.storage import ObjectStore, Store, keys

pytestmark = pytest.mark.anyio

Ending = Callable[[S3AuthService, TokenPair], Awaitable[bool]]


async def _by_refresh_token(service: S3AuthService, pair: TokenPair) -> bool:
    return await service.revoke_refresh_token(pair.refresh_token)


async def _by_id(service: S3AuthService, pair: TokenPair) -> bool:
    names = service.tokens.parse_refresh_token(pair.refresh_token)
    return await service.revoke_session(names.user_id, names.session_id)


each_ending = pytest.mark.parametrize(
    "ending", [_by_refresh_token, _by_id], ids=["logout", "by id"]
)


def past_the_hold(clock: Clock, service: S3AuthService) -> None:
    """Move past the time any host holds a revocation written now, and past the time the
    sweep deletes it (`blacklist`: its end, plus twice the skew allowance)."""
    settings = service.settings
    clock.advance(settings.access_token_accepted_seconds + 2 * settings.revocation_skew_seconds + 1)


async def _one_session(
    clock: Clock, fault: tuple[str, str]
) -> tuple[ObjectStore, S3AuthService, TokenPair]:
    """A session of alice, opened through a host whose store fails the first request
    `fault` names (before it is sent); the shared store, counts reset, the host, the pair."""
    shared = ObjectStore.from_url("memory://")
    host = make_clocked_service(clock=clock, store=FailFirst(shared, *fault, after=False))
    pair = await host.create_token_pair(await stored_user(host))
    await host.blacklist.sync()
    shared.reset_counts()
    return shared, host, pair


async def _synced(clock: Clock, store: Store) -> S3AuthService:
    other = make_clocked_service(clock=clock, store=store)
    await other.blacklist.sync()
    return other


@each_ending
async def test_an_ending_whose_delete_fails_has_ended_nothing(clock: Clock, ending: Ending) -> None:
    shared, host, pair = await _one_session(clock, ("delete", keys.SESSIONS))
    with pytest.raises(StoreUnavailableError):
        await ending(host, pair)
    # Refused nowhere, for no while: the session is as it was, and the answer said so.
    host.decode_token(pair.access_token)
    assert dict(shared.requests) == {"get": 1}  # the session's; no revocation written
    (await _synced(clock, shared)).decode_token(pair.access_token)
    shared.reset_counts()
    # The same request tried again ends it: the refresh token still authenticates it.
    assert await ending(host, pair) is True
    assert dict(shared.requests) == {"get": 1, "delete": 1, "put": 1}
    with pytest.raises(TokenRevokedError):
        (await _synced(clock, shared)).decode_token(pair.access_token)
    # For good: once no host holds the revocation and the sweep has deleted it, the old
    # refresh token still finds nothing to refresh.
    past_the_hold(clock, host)
    await host.cleanup_expired_tokens()
    assert [info async for info in shared.list(keys.REVOCATIONS)] == []
    with pytest.raises(TokenRevokedError):
        await (await _synced(clock, shared)).refresh_access_token(pair.refresh_token)


@each_ending
async def test_an_ending_whose_revocation_fails_after_its_delete_stays_ended(
    clock: Clock, ending: Ending
) -> None:
    shared, host, pair = await _one_session(clock, ("create", keys.REVOCATIONS))
    with pytest.raises(StoreUnavailableError):  # answered 503: the client is told
        await ending(host, pair)
    assert dict(shared.requests) == {"get": 1, "delete": 1}
    other = await _synced(clock, shared)
    with pytest.raises(TokenRevokedError):
        await other.refresh_access_token(pair.refresh_token)
    past_the_hold(clock, host)
    with pytest.raises(TokenRevokedError):
        await (await _synced(clock, shared)).refresh_access_token(pair.refresh_token)
    # Tried again, it finds no session: ended already, as for any token of an ended one
    # (a logout answers 204, an ending by id 404), and writes nothing.
    shared.reset_counts()
    assert await ending(host, pair) is False
    assert dict(shared.requests) == {"get": 1}


class RotatesAfter(StoreWrapper):
    """Before the first conditional write of a session, runs `meanwhile`: a refresh that
    read the session before an ending's DELETE writes its rotation after it."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.meanwhile: Callable[[], Awaitable[object]] | None = None

    async def replace(self, key: str, value: Any, etag: str) -> str:
        if self.meanwhile is not None and key.startswith(keys.SESSIONS):
            meanwhile, self.meanwhile = self.meanwhile, None
            await meanwhile()
        return await self.inner.replace(key, value, etag)


@each_ending
async def test_a_refresh_that_read_the_session_before_the_delete_issues_nothing(
    clock: Clock, ending: Ending
) -> None:
    shared = ObjectStore.from_url("memory://")
    host = make_clocked_service(clock=clock, store=shared)
    pair = await host.create_token_pair(await stored_user(host))
    late = RotatesAfter(shared)
    other = make_clocked_service(clock=clock, store=late)
    await other.blacklist.sync()
    answered: list[bool] = []

    async def end() -> None:
        shared.reset_counts()
        answered.append(await ending(host, pair))
        assert dict(shared.requests) == {"get": 1, "delete": 1, "put": 1}

    late.meanwhile = end
    with pytest.raises(TokenRevokedError):  # its If-Match found nothing, nor its GET again
        await other.refresh_access_token(pair.refresh_token)
    assert answered == [True]
    with pytest.raises(TokenRevokedError):
        (await _synced(clock, shared)).decode_token(pair.access_token)


Http = Callable[[httpx.AsyncClient, dict[str, Any], dict[str, Any]], Awaitable[httpx.Response]]


async def _logout(client: httpx.AsyncClient, ended: dict[str, Any], _: Any) -> httpx.Response:
    return await client.post("/auth/logout", json={"refresh_token": ended["refresh_token"]})


async def _sessions_page(
    client: httpx.AsyncClient, ended: dict[str, Any], caller: dict[str, Any]
) -> httpx.Response:
    return await client.delete(f"/auth/sessions/{ended['sid']}", headers=bearer(caller))


@pytest.mark.parametrize(
    ("fault", "retried"),
    [(("delete", keys.SESSIONS), True), (("create", keys.REVOCATIONS), False)],
    ids=["delete failed", "revocation failed"],
)
@pytest.mark.parametrize(
    ("http", "not_there"), [(_logout, 204), (_sessions_page, 404)], ids=["logout", "by id"]
)
async def test_over_http_an_ending_cut_short_is_503_and_its_retry_answers_what_it_left(
    fault: tuple[str, str], retried: bool, http: Http, not_there: int
) -> None:
    shared = ObjectStore.from_url("memory://")
    service = make_service(store=FailFirst(shared, *fault, after=False))
    await service.create_user("alice", "alice@example.com", PASSWORD)
    async with client_for(mounted(service)) as client:
        caller, ended = await login(client, "alice"), await login(client, "alice")
        ended["sid"] = service.tokens.parse_refresh_token(ended["refresh_token"]).session_id
        assert_problem(await http(client, ended, caller), 503, "store_unavailable")
        again = await http(client, ended, caller)
        # Ended by the retry; or ended already, the session gone: answered as for any
        # token of an ended session (a logout), or any id of one (an ending by id).
        assert again.status_code == (204 if retried else not_there), again.text
        if not_there == 404 and not retried:
            assert_problem(again, 404, "session_not_found")
    with pytest.raises(TokenRevokedError):
        await make_service(store=shared).refresh_access_token(ended["refresh_token"])


async def test_an_ending_by_id_tells_a_malformed_id_from_an_unknown_one(clock: Clock) -> None:
    """An id that is not one is SessionNotFoundError (404), asking the store nothing; a
    well-formed id of no session is False (1 GET); each as the docstring says."""
    service = make_clocked_service(clock=clock)
    user = await stored_user(service)
    service.store.reset_counts()
    for user_id, session_id in ((user.id, "not-an-id"), ("../x", "a" * 32)):
        with pytest.raises(SessionNotFoundError):
            await service.revoke_session(user_id, session_id)
        with pytest.raises(SessionNotFoundError):
            await service.revoke_own_session(user_id, session_id)
    assert sum(service.store.requests.values()) == 0
    assert await service.revoke_session(user.id, "a" * 32) is False
    assert dict(service.store.requests) == {"get": 1}
    for method in (S3AuthService.revoke_session, S3AuthService.revoke_own_session):
        assert "SessionNotFoundError" in (method.__doc__ or ""), method.__name__
