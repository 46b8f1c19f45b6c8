"""A logout everywhere (or a new password) that fails once its revocation has landed and
before its sessions are deleted: the caller's access token is refused from then on, so its
retry over HTTP is a 401 and finishes nothing. The sessions the revocation names must not
go on all the same: their refresh is refused, and deletes what the failure left; and long
after, once no host holds the revocation, what the ending wrote before it refuses them.

A logout by the session's own access token fails at its DELETE: the retry with that token
finishes it, and the session never refreshes again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from conftest import make_service, make_settings
from support import SharedTime, skewed_host
from test_app import PASSWORD, assert_problem, bearer, client_for, login, mounted
from test_faults import FailFirst

from s3auth_asgi import S3AuthService, TokenRevokedError
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
    await failing.create_user("alice", "alice@example.com", PASSWORD)
    async with client_for(mounted(failing)) as client:
        mine = await login(client, "alice")
        thief = await login(client, "alice")
        first = await client.post("/auth/logout-all", headers=bearer(mine))
        assert_problem(first, 503, "store_unavailable")
    behind = await _past_every_revocation(time, shared)
    await _both_refused(behind, shared, thief, mine)
    # A login after the logout is of the new generation, and refreshes.
    async with client_for(mounted(behind)) as client:
        fresh = await login(client, "alice")
    await behind.refresh_access_token(fresh["refresh_token"])


async def _past_every_revocation(time: SharedTime, shared: ObjectStore) -> S3AuthService:
    """Time moved past the end of every revocation written so far and twice the skew
    allowance, the sweep run by a host whose clock is ahead (it deletes one entry); a host
    whose clock is behind, synced, its requests counted from now."""
    skew = make_settings().revocation_skew_seconds
    time.advance(make_settings().access_token_accepted_seconds + 2 * skew + 1)
    assert await skewed_host(shared, time, skew).blacklist.cleanup() == 1
    assert [info async for info in shared.list(keys.REVOCATIONS)] == []
    behind = skewed_host(shared, time, -skew)
    await behind.ensure_fresh()
    shared.reset_counts()
    return behind


async def _both_refused(
    behind: S3AuthService, shared: ObjectStore, thief: dict[str, Any], mine: dict[str, Any]
) -> None:
    """The thief's session and the caller's, which the interrupted ending named, are
    refused at refresh by `behind`, the first at the cost of ending it."""
    with pytest.raises(TokenRevokedError):
        await behind.refresh_access_token(thief["refresh_token"])
    # The session GET, the LIST that shows the newer generation, and its ending.
    assert dict(shared.requests) == {"get": 1, "list": 1, "put": 1, "delete": 1}
    with pytest.raises(TokenRevokedError):
        await behind.refresh_access_token(mine["refresh_token"])


Logout = Callable[[httpx.AsyncClient, dict[str, Any], dict[str, str]], Awaitable[httpx.Response]]


async def _by_logout(
    client: httpx.AsyncClient, tokens: dict[str, Any], _: dict[str, str]
) -> httpx.Response:
    return await client.post("/auth/logout", headers=bearer(tokens))


async def _by_session_id(
    client: httpx.AsyncClient, tokens: dict[str, Any], ids: dict[str, str]
) -> httpx.Response:
    return await client.delete(f"/auth/sessions/{ids['sid']}", headers=bearer(tokens))


async def _by_admin_path(
    client: httpx.AsyncClient, tokens: dict[str, Any], ids: dict[str, str]
) -> httpx.Response:
    path = f"/auth/admin/users/{ids['sub']}/sessions/{ids['sid']}"
    return await client.delete(path, headers=bearer(tokens))


@pytest.mark.parametrize("after", [False, True], ids=["delete failed", "delete answer lost"])
@pytest.mark.parametrize(
    "logout",
    [_by_logout, _by_session_id, _by_admin_path],
    ids=["POST logout", "DELETE own session", "admin ends own session"],
)
async def test_a_logout_by_access_token_interrupted_at_its_delete_never_refreshes(
    logout: Logout, after: bool
) -> None:
    time = SharedTime()
    shared = ObjectStore.from_url("memory://")
    failing = skewed_host(FailFirst(shared, "delete", "sessions/", after=after), time, 0)
    await failing.create_user("alice", "alice@example.com", PASSWORD, is_admin=True)
    async with client_for(mounted(failing)) as client:
        mine = await login(client, "alice")
        ids = failing.decode_token(mine["access_token"])
        first = await logout(client, mine, ids)
        assert_problem(first, 503, "store_unavailable")
        again = await logout(client, mine, ids)
    behind = await _past_every_revocation(time, shared)
    # A copy of the refresh token, long after.
    with pytest.raises(TokenRevokedError):
        await behind.refresh_access_token(mine["refresh_token"])
    assert dict(shared.requests) == {"get": 1}  # the session is gone
    # The retry, with the access token the first try left accepted, finished the logout.
    assert again.status_code == 204, again.text


async def test_a_session_an_interrupted_password_change_left_never_refreshes_again() -> None:
    """The user's own new password, failing at the DELETE of the sessions it ends: the old
    password holds, the caller's access token is refused, and the sessions are refused at
    refresh long after every host has let the revocation go."""
    time = SharedTime()
    shared = ObjectStore.from_url("memory://")
    failing = skewed_host(FailFirst(shared, "delete_many", "sessions/", after=False), time, 0)
    await failing.create_user("alice", "alice@example.com", PASSWORD)
    body = {"current_password": PASSWORD, "new_password": "Brand-new-pass-7"}
    async with client_for(mounted(failing)) as client:
        mine = await login(client, "alice")
        thief = await login(client, "alice")
        first = await client.post("/auth/password", json=body, headers=bearer(mine))
        assert_problem(first, 503, "store_unavailable")
        again = await client.post("/auth/password", json=body, headers=bearer(mine))
        assert_problem(again, 401, "token_revoked")
    behind = await _past_every_revocation(time, shared)
    await _both_refused(behind, shared, thief, mine)
    # The change did not happen: its owner logs in with the old password, and tries again.
    async with client_for(mounted(behind)) as client:
        fresh = await login(client, "alice")
        done = await client.post("/auth/password", json=body, headers=bearer(fresh))
        assert done.status_code == 200, done.text
    await behind.refresh_access_token(done.json()["refresh_token"])


@pytest.mark.parametrize("retried", [False, True], ids=["no retry", "retried"])
@pytest.mark.parametrize("after", [False, True], ids=["before", "answer lost"])
@pytest.mark.parametrize(
    ("request_name", "part"),
    [("replace", "sessions/"), ("create", "revocations/"), ("delete", "sessions/")],
    ids=["session write", "revocation", "session delete"],
)
async def test_a_reuse_interrupted_anywhere_ends_the_session_for_good(
    request_name: str, part: str, after: bool, retried: bool
) -> None:
    """A spent refresh token presented again ends its session (the thief's current token
    with it), whichever of the ending's requests fails and whether or not anybody tries
    again (but when the first write fails before it lands, which ends nothing): long after
    every host has let the revocation go, the current token is refused. The token presented
    is answered `refresh_token_reused`, or a 503 and then that."""
    time = SharedTime()
    shared = ObjectStore.from_url("memory://")
    faulty = FailFirst(shared, request_name, part, after=after)
    faulty.target = None  # armed for the reuse only
    failing = skewed_host(faulty, time, 0)
    await failing.create_user("alice", "alice@example.com", PASSWORD)
    async with client_for(mounted(failing)) as client:
        spent = (await login(client, "alice"))["refresh_token"]
        current = spent
        for _ in range(2):  # two rotations by the thief: `spent` is past any grace
            rotated = await client.post("/auth/refresh", json={"refresh_token": current})
            assert rotated.status_code == 200, rotated.text
            current = rotated.json()["refresh_token"]
        faulty.target = (request_name, part)
        answers = [await client.post("/auth/refresh", json={"refresh_token": spent})]
        if answers[0].status_code == 503 and retried:  # its holder tries again
            answers.append(await client.post("/auth/refresh", json={"refresh_token": spent}))
    # Time past every revocation written, swept by a host ahead; a host behind refreshes.
    skew = failing.settings.revocation_skew_seconds
    time.advance(failing.settings.access_token_accepted_seconds + 2 * skew + 1)
    await skewed_host(shared, time, skew).blacklist.cleanup()
    assert [info async for info in shared.list(keys.REVOCATIONS)] == []
    behind = skewed_host(shared, time, -skew)
    await behind.ensure_fresh()
    if request_name == "replace" and not after and not retried:
        # Its first write never landed: nothing was ended, as for any request failing so.
        await behind.refresh_access_token(current)
        return
    with pytest.raises(TokenRevokedError):
        await behind.refresh_access_token(current)
    if answers[0].status_code == 503:
        assert_problem(answers[0], 503, "store_unavailable")
    if retried or answers[0].status_code != 503:
        assert_problem(answers[-1], 401, "refresh_token_reused")
