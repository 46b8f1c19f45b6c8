"""Ending, by id, a session that can no longer be used (idle, past its absolute expiry, or
ended by a reused refresh token) but whose object the sweep has not deleted yet: the
sessions page does not show it, so ending it answers as for any session that is not there,
whether the caller names one of its own or an administrator names it."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import pytest
from support import (  # noqa: F401 (clock_fixture registers the `clock` fixture)
    Clock,
    StoreOnSharedTime,
    clock_fixture,
    make_clocked_service,
)
from support import login as support_login
from test_app import PASSWORD, assert_problem, bearer, checked_client, login, register

from s3auth_asgi import S3AuthService, TokenRevokedError
from s3auth_asgi.identifiers import new_session_id
from s3auth_asgi.models import Session
from s3auth_asgi.storage import ObjectStore, keys

pytestmark = pytest.mark.anyio
DAY = 86400


async def session_ids(client: httpx.AsyncClient, tokens: dict[str, Any]) -> dict[str, str]:
    listed = (await client.get("/auth/sessions", headers=bearer(tokens))).json()["sessions"]
    return {s["device_info"]: s["id"] for s in listed}


async def stored(service: S3AuthService, user_id: str) -> list[str]:
    return [info.key async for info in service.store.list(keys.user_sessions(user_id))]


async def idle_phone(
    client: httpx.AsyncClient, clock: Clock
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Alice's phone session, idle past its lifetime, and her laptop's, live: the laptop's
    tokens, her record and the phone session's id."""
    user = await register(client, "alice")
    await login(client, "alice", user_agent="phone")
    clock.advance(6 * DAY)
    laptop = await login(client, "alice", user_agent="laptop")
    phone_id = (await session_ids(client, laptop))["phone"]
    clock.advance(DAY + 60)  # the phone's idle lifetime is over; the laptop's is not
    refreshed = await client.post(
        "/auth/refresh",
        data={"grant_type": "refresh_token", "refresh_token": laptop["refresh_token"]},
    )
    assert refreshed.status_code == 200, refreshed.text
    return refreshed.json(), user, phone_id


async def test_ending_an_idle_session_of_ones_own_is_a_404(clock: Clock) -> None:
    service = make_clocked_service(clock=clock)
    async with checked_client(service) as client:
        laptop, user, phone_id = await idle_phone(client, clock)
        listed = await session_ids(client, laptop)
        assert list(listed) == ["laptop"]
        laptop_key = keys.session(user["id"], listed["laptop"])
        assert await stored(service, user["id"]) == sorted(
            [laptop_key, keys.session(user["id"], phone_id)]
        )
        service.store.reset_counts()
        unknown = await client.delete(
            f"/auth/sessions/{new_session_id(int(clock() * 1000))}", headers=bearer(laptop)
        )
        assert_problem(unknown, 404, "session_not_found")
        as_unknown = dict(service.store.requests)
        service.store.reset_counts()
        answer = await client.delete(f"/auth/sessions/{phone_id}", headers=bearer(laptop))
        assert_problem(answer, 404, "session_not_found")
        assert answer.content == unknown.content
        # As for a session that is not there, and its object deleted on the way (as a
        # refresh of it would): no revocation, as no access token outlives its session.
        assert service.store.requests == {**as_unknown, "delete": 1}
        assert await stored(service, user["id"]) == [laptop_key]


async def test_an_administrator_ending_an_idle_session_gets_a_404(clock: Clock) -> None:
    service = make_clocked_service(clock=clock)
    async with checked_client(service) as client:
        _, user, phone_id = await idle_phone(client, clock)
        await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
        root = await login(client, "root")
        path = f"/auth/admin/users/{user['id']}/sessions/{phone_id}"
        assert_problem(await client.delete(path, headers=bearer(root)), 404, "session_not_found")
        listed = await client.get(f"/auth/admin/users/{user['id']}/sessions", headers=bearer(root))
        assert [s["device_info"] for s in listed.json()["sessions"]] == ["laptop"]


async def test_ending_a_session_past_its_absolute_lifetime_is_a_404(clock: Clock) -> None:
    # Last-Modified by the test's clock: a login on day 24 is not one from a host 24 days
    # ahead of the store (`session_times`).
    store = StoreOnSharedTime(ObjectStore.from_url("memory://"), clock)
    service = make_clocked_service(clock=clock, store=store)
    async with checked_client(service) as client:
        await register(client, "alice")
        phone = await login(client, "alice", user_agent="phone")
        for _ in range(4):  # refreshed every six days: never idle, 24 days old
            clock.advance(6 * DAY)
            phone = (
                await client.post(
                    "/auth/refresh",
                    data={"grant_type": "refresh_token", "refresh_token": phone["refresh_token"]},
                )
            ).json()
        laptop = await login(client, "alice", user_agent="laptop")
        phone_id = (await session_ids(client, laptop))["phone"]
        clock.advance(6 * DAY + 60)  # day 30 is past: the phone's absolute lifetime is over
        laptop = (
            await client.post(
                "/auth/refresh",
                data={"grant_type": "refresh_token", "refresh_token": laptop["refresh_token"]},
            )
        ).json()
        assert list(await session_ids(client, laptop)) == ["laptop"]
        answer = await client.delete(f"/auth/sessions/{phone_id}", headers=bearer(laptop))
        assert_problem(answer, 404, "session_not_found")


async def test_ending_a_session_a_reuse_ended_finishes_that_ending(clock: Clock) -> None:
    """A reuse marks the session, then revokes its tokens and deletes it; a failure after
    the mark leaves it there, unusable and unlisted. Ending it by id is not a 204 for a
    session that could be used, but it finishes what that ending left undone."""
    service = make_clocked_service(clock=clock)
    user, pair = await support_login(service)
    sid = str(service.tokens.verify_access_token(pair.access_token)["sid"])
    key = keys.session(user.id, sid)
    found = await service.store.get(key, Session)
    assert found is not None
    await service.store.replace(key, msgspec.structs.replace(found.value, reused_at=1), found.etag)
    assert await service.get_user_active_sessions(user.id) == []
    service.store.reset_counts()
    assert await service.revoke_session(user.id, sid) is False
    assert service.store.requests == {"get": 1, "put": 1, "delete": 1}
    assert await stored(service, user.id) == []
    with pytest.raises(TokenRevokedError):
        service.decode_token(pair.access_token)
