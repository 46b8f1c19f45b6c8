"""A refresh, and a listing of a user's sessions, judge a session by this process's
revocation snapshot (an ending that was interrupted between its revocation and its DELETE,
the end of every session): the snapshot is brought within its bound first, as for a bearer
token. A process that serves refreshes and nothing that verifies an access token, or that
lists sessions and nothing else (the command line), must not judge by a snapshot of any
age, or none: what was ended before twice `S3AUTH_REVOCATION_SYNC_SECONDS` ago is refused,
and not listed, on every host.

Hosts share one memory:// store and one clock moved by hand.
"""

from __future__ import annotations

import anyio
import pytest
from conftest import make_service
from support import SharedTime, login, skewed_host, stored_user
from test_admin_rule import _cli_store
from test_cli import Run

from s3auth_asgi import TokenRevokedError
from s3auth_asgi.cli import failures
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


async def test_a_process_that_never_synced_lists_no_session_ended_everywhere() -> None:
    time = SharedTime()
    store = ObjectStore.from_url("memory://")
    operator = skewed_host(store, time, 0.0)
    user, _ = await login(operator)
    time.advance(1)
    await operator.end_all_sessions()
    time.advance(1)
    again = await operator.create_token_pair(user)
    listing = skewed_host(store, time, 0.0)  # a process started since, as a command is
    store.reset_counts()
    shown = await listing.get_user_active_sessions(user.id)
    assert [s.id for s in shown] == [listing.decode_token(again.access_token)["sid"]]
    # Its first sync (the revocations' LIST, the cut-off's GET), then the sessions' LIST,
    # the GET of the one shown, and the DELETE of the one the cut-off ended (not read).
    assert dict(store.requests) == {"list": 2, "get": 2, "delete": 1}
    assert len([i async for i in store.list(keys.user_sessions(user.id))]) == 1


def test_the_command_lists_no_session_ended_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    store = _cli_store(monkeypatch)
    service = make_service(store=store)

    async def log_in() -> None:
        user = await service.create_user("alice", "alice@example.com", "Correct-Horse-42x")
        await service.create_token_pair(user)

    anyio.run(log_in)
    assert Run("sessions", "end-all", "--yes", open_store=lambda url: store).code == failures.OK
    listed = Run("user", "sessions", "alice", open_store=lambda url: store)
    assert (listed.code, listed.out.splitlines()[-1]) == (failures.OK, "0 session(s)"), listed
