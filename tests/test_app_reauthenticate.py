"""`POST /reauthenticate`: the caller gives the current password again (and a code, where
the second factor is on) and gets a new access token of the same session, authenticated
now; the session keeps the time, so that its refreshes do too. Wrong passwords and codes
are charged as at login."""

from __future__ import annotations

from typing import Any

import pytest
from support import Clock, make_clocked_service
from test_app import PASSWORD, assert_problem, bearer, checked_client, login, register
from test_app_totp import turn_on

from s3auth_asgi.totp import totp

pytestmark = pytest.mark.anyio

PATH = "/auth/reauthenticate"


async def refreshed(client: Any, tokens: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/auth/refresh", data={"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_a_reauthentication_renews_auth_time_which_later_refreshes_keep() -> None:
    clock = Clock()
    service = make_clocked_service(clock=clock)
    async with checked_client(service) as client:
        await register(client, "alice")
        tokens = await login(client, "alice")
        logged_in = service.verify_access_token(tokens["access_token"])
        clock.advance(1000)
        await service.ensure_fresh()  # the revocations read again, as they are due
        service.store.reset_counts()
        response = await client.post(
            PATH, json={"current_password": PASSWORD}, headers=bearer(tokens)
        )
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        # The account's GET (the password), the session's GET and its conditional PUT,
        # and the event's PUT in the account's trail.
        assert service.store.requests == {"get": 2, "put": 2}
        body = response.json()
        assert "refresh_token" not in body and body["token_type"] == "bearer"
        renewed = service.verify_access_token(body["access_token"])
        assert renewed["sid"] == logged_in["sid"] and renewed["jti"] != logged_in["jti"]
        assert (renewed["auth_time"], renewed["amr"]) == (int(clock()), ["pwd"])
        assert logged_in["auth_time"] == int(clock()) - 1000
        # The session's refresh token is the one it had, and its refreshes keep the time.
        clock.advance(60)
        again = service.verify_access_token((await refreshed(client, tokens))["access_token"])
        assert again["auth_time"] == int(clock()) - 60
        # The earlier access token still works: nothing else changed.
        me = await client.get("/auth/me", headers=bearer(tokens))
        assert me.status_code == 200


async def test_wrong_passwords_are_charged_as_at_login() -> None:
    clock = Clock()
    service = make_clocked_service(clock=clock, rate_limits="login_account=3/600")
    async with checked_client(service, rate_limit=True) as client:
        await register(client, "alice")
        tokens = await login(client, "alice")
        statuses = []
        for _ in range(4):
            wrong = await client.post(
                PATH, json={"current_password": "Wrong123!"}, headers=bearer(tokens)
            )
            statuses.append(wrong.status_code)
        assert statuses == [403, 403, 403, 429]
        assert_problem(wrong, 429, "rate_limited")
        # The budget is the login's: the right password is refused at login now too.
        response = await client.post(
            "/auth/login", data={"username": "alice", "password": PASSWORD}
        )
        assert_problem(response, 429, "rate_limited")


async def test_with_the_second_factor_on_a_code_is_needed_and_said() -> None:
    clock = Clock()
    service = make_clocked_service(clock=clock, rate_limits="login_account=5/600")
    async with checked_client(service, rate_limit=True) as client:
        await register(client, "alice")
        seed = await turn_on(client, service, "alice")
        tokens = await login_with_code(client, seed, clock)
        headers = bearer(tokens)
        service.store.reset_counts()
        missing = await client.post(PATH, json={"current_password": "Wrong123!"}, headers=headers)
        # Asked for before the password is checked: nothing is learnt of it, nor charged.
        assert_problem(missing, 422, "validation_error")
        assert "code" in missing.json()["detail"]
        wrong = await client.post(
            PATH, json={"current_password": PASSWORD, "code": "000000"}, headers=headers
        )
        assert_problem(wrong, 403, "wrong_totp_code")
        clock.advance(30)
        right = await client.post(
            PATH, json={"current_password": PASSWORD, "code": totp(seed, clock())}, headers=headers
        )
        assert right.status_code == 200, right.text
        claims = service.verify_access_token(right.json()["access_token"])
        assert (claims["auth_time"], claims["amr"]) == (int(clock()), ["pwd", "otp"])
        # The code is spent.
        spent = await client.post(
            PATH, json={"current_password": PASSWORD, "code": totp(seed, clock())}, headers=headers
        )
        assert_problem(spent, 403, "wrong_totp_code")


async def login_with_code(client: Any, seed: bytes, clock: Clock) -> dict[str, Any]:
    first = await client.post("/auth/login", data={"username": "alice", "password": PASSWORD})
    clock.advance(30)
    response = await client.post(
        "/auth/login/totp",
        data={"mfa_token": first.json()["mfa_token"], "code": totp(seed, clock())},
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_an_ended_session_is_not_renewed() -> None:
    service = make_clocked_service()
    async with checked_client(service) as client:
        await register(client, "alice")
        tokens = await login(client, "alice")
        other = await login(client, "alice")
        # Its object gone, as a logout on a host that has not synced the revocation leaves it.
        names = service.tokens.parse_refresh_token(tokens["refresh_token"])
        from s3auth_asgi.storage import keys

        await service.store.delete(keys.session(names.user_id, names.session_id))
        response = await client.post(
            PATH, json={"current_password": PASSWORD}, headers=bearer(tokens)
        )
        assert_problem(response, 401, "token_revoked")
        ok = await client.post(PATH, json={"current_password": PASSWORD}, headers=bearer(other))
        assert ok.status_code == 200, ok.text
