"""A logout everywhere (or a new password) that fails once its revocation has landed and
before its sessions are deleted: the caller's access token is refused from then on, so its
retry over HTTP is a 401 and finishes nothing. The sessions the revocation names must not
go on all the same: their refresh is refused, and deletes what the failure left.
"""

from __future__ import annotations

import pytest
from conftest import make_service
from support import SharedTime, skewed_host
from test_app import PASSWORD, assert_problem, bearer, client_for, login, mounted
from test_faults import FailFirst

from s3auth_asgi import TokenRevokedError
from s3auth_asgi.session_generation import sessions_only
from s3auth_asgi.storage import ObjectStore, keys

pytestmark = pytest.mark.anyio


async def _interrupted(path: str, body: dict[str, str] | None = None) -> tuple[ObjectStore, str]:
    """alice's thief's session, then alice's `path` failing at its batch DELETE of the
    sessions, and her retry; the store and the thief's refresh token."""
    shared = ObjectStore.from_url("memory://")
    healthy = make_service(store=shared)
    alice = await healthy.create_user("alice", "alice@example.com", PASSWORD)
    failing = make_service(store=FailFirst(shared, "delete_many", "sessions/", after=False))
    async with client_for(mounted(failing)) as client:
        mine = await login(client, "alice")
        thief = await login(client, "alice")
        first = await client.post(path, json=body, headers=bearer(mine))
        assert_problem(first, 503, "store_unavailable")
        again = await client.post(path, json=body, headers=bearer(mine))
        assert_problem(again, 401, "token_revoked")  # the retry cannot finish it
    assert len(sessions_only([i async for i in shared.list(keys.user_sessions(alice.id))])) == 2
    return shared, thief["refresh_token"]


@pytest.mark.parametrize(
    ("path", "body"),
    [("/auth/logout-all", None), ("/auth/password", {"current_password": PASSWORD})],
    ids=["logout everywhere", "new password"],
)
async def test_a_session_an_interrupted_ending_revoked_does_not_refresh(
    path: str, body: dict[str, str] | None
) -> None:
    if body is not None:
        body = {**body, "new_password": "Brand-new-pass-7"}
    shared, thief = await _interrupted(path, body)
    other = make_service(store=shared)
    await other.ensure_fresh()
    shared.reset_counts()
    with pytest.raises(TokenRevokedError):
        await other.refresh_access_token(thief)
    # The session GET and the DELETE that finishes the ending.
    assert dict(shared.requests) == {"get": 1, "delete": 1}
    # Only the caller's own session is left, for its own refresh to end.
    assert len(sessions_only([i async for i in shared.list(keys.SESSIONS)])) == 1
    with pytest.raises(TokenRevokedError):
        await other.refresh_access_token(thief)


async def test_a_session_an_interrupted_logout_everywhere_left_never_refreshes_again() -> None:
    """Past the revocation's end, on every clock, and after the sweep has deleted it: the
    hosts hold it no more, so only what the logout wrote before its revocation can tell."""
    time = SharedTime()
    shared = ObjectStore.from_url("memory://")
    failing = skewed_host(FailFirst(shared, "delete_many", "sessions/", after=False), time, 0)
    skew = failing.settings.revocation_skew_seconds
    await failing.create_user("alice", "alice@example.com", PASSWORD)
    async with client_for(mounted(failing)) as client:
        mine = await login(client, "alice")
        thief = await login(client, "alice")
        first = await client.post("/auth/logout-all", headers=bearer(mine))
        assert_problem(first, 503, "store_unavailable")
    # The sweeper's clock is ahead (it sweeps first), the refreshing host's behind.
    time.advance(failing.settings.access_token_accepted_seconds + 2 * skew + 1)
    sweeper = skewed_host(shared, time, skew)
    assert await sweeper.blacklist.cleanup() == 1
    assert [info async for info in shared.list(keys.REVOCATIONS)] == []
    behind = skewed_host(shared, time, -skew)
    await behind.ensure_fresh()
    shared.reset_counts()
    with pytest.raises(TokenRevokedError):
        await behind.refresh_access_token(thief["refresh_token"])
    # The session GET, the LIST that shows the newer generation, and its ending.
    assert dict(shared.requests) == {"get": 1, "list": 1, "put": 1, "delete": 1}
    with pytest.raises(TokenRevokedError):
        await behind.refresh_access_token(mine["refresh_token"])
    # A login after the logout is of the new generation, and refreshes.
    async with client_for(mounted(behind)) as client:
        fresh = await login(client, "alice")
    await behind.refresh_access_token(fresh["refresh_token"])
