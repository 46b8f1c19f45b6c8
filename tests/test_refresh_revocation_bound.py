"""A refresh judges its session by this process's revocation snapshot (an ending that was
interrupted between its revocation and its DELETE, the end of every session): the snapshot
is brought within its bound first, as for a bearer token. A process that serves refreshes
and nothing that verifies an access token must not judge by a snapshot of any age: what
was ended before twice `S3AUTH_REVOCATION_SYNC_SECONDS` ago is refused, on every host.

Hosts share one memory:// store and one clock moved by hand.
"""

from __future__ import annotations

import pytest
from support import SharedTime, skewed_host, stored_user

from s3auth_asgi import TokenRevokedError
from s3auth_asgi.storage import ObjectStore, keys

pytestmark = pytest.mark.anyio

SYNC = {"list": 1, "get": 1}  # the revocations' LIST; the cut-off's GET
REFRESH = {"get": 1, "list": 1, "put": 1}  # session; the cap's LIST; rotation


async def test_every_session_ended_is_refused_at_a_refresh_on_a_host_past_the_bound() -> None:
    time = SharedTime()
    store = ObjectStore.from_url("memory://")
    operator, refreshing = skewed_host(store, time, 0.0), skewed_host(store, time, 0.0)
    user = await stored_user(operator)
    await refreshing.blacklist.sync()
    pair = await refreshing.create_token_pair(user)
    time.advance(1)
    await operator.end_all_sessions()
    time.advance(2 * refreshing.settings.revocation_sync_seconds)
    store.reset_counts()
    with pytest.raises(TokenRevokedError):
        await refreshing.refresh_access_token(pair.refresh_token)
    # The sync the overdue snapshot waits for, then the session read, refused, deleted.
    assert dict(store.requests) == {"list": 1, "get": 2, "delete": 1}


async def test_an_interrupted_ending_is_refused_at_a_refresh_on_a_host_past_the_bound() -> None:
    """The ending's revocation landed and its DELETE failed: the session is there, and the
    refresh that finds it revoked finishes the ending."""
    time = SharedTime()
    store = ObjectStore.from_url("memory://")
    ending, refreshing = skewed_host(store, time, 0.0), skewed_host(store, time, 0.0)
    user = await stored_user(ending)
    pair = await refreshing.create_token_pair(user)
    await refreshing.blacklist.sync()
    session_id = refreshing.tokens.parse_refresh_token(pair.refresh_token).session_id
    await ending.blacklist.revoke_session(session_id)
    time.advance(2 * refreshing.settings.revocation_sync_seconds)
    with pytest.raises(TokenRevokedError):
        await refreshing.refresh_access_token(pair.refresh_token)
    assert await store.get(keys.session(user.id, session_id), dict) is None


async def test_a_refresh_on_a_fresh_snapshot_costs_no_sync() -> None:
    time = SharedTime()
    store = ObjectStore.from_url("memory://")
    service = skewed_host(store, time, 0.0)
    user = await stored_user(service)
    pair = await service.create_token_pair(user)
    await service.blacklist.sync()
    store.reset_counts()
    await service.refresh_access_token(pair.refresh_token)
    assert dict(store.requests) == REFRESH
