"""When and how the user last authenticated, in every access token (RFC 9068 §2.2.1,
RFC 8176): `auth_time` set by the login that opened the session (its second step, where the
second factor is on), kept through refreshes; `amr`, the methods; a session stored before
either existed falls back to its creation, without `amr`. Verifiers take tokens with and
without the claims, typed strictly where present."""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec
import pytest
from forged_tokens import SETTINGS, forge
from forged_tokens import claims as forged_claims
from support import Clock, make_clocked_service
from test_app import PASSWORD, bearer, client_for, login, mounted, register
from test_app_totp import first_step, second_step, turn_on

from s3auth_asgi import InvalidTokenError, S3AuthService, S3ValidationError
from s3auth_asgi.keys.ring import hmac_entry
from s3auth_asgi.storage import keys
from s3auth_asgi.tokens import TokenCodec
from s3auth_asgi.totp import totp

pytestmark = pytest.mark.anyio


def session_key(service: S3AuthService, tokens: dict[str, Any]) -> str:
    names = service.tokens.parse_refresh_token(tokens["refresh_token"])
    return keys.session(names.user_id, names.session_id)


async def test_a_login_stamps_auth_time_and_pwd_which_a_refresh_keeps() -> None:
    clock = Clock()
    service = make_clocked_service(clock=clock)
    async with client_for(mounted(service)) as client:
        await register(client, "alice")
        clock.advance(5)
        logged_in_at = int(clock())
        tokens = await login(client, "alice")
        claims = service.verify_access_token(tokens["access_token"])
        assert (claims["auth_time"], claims["amr"]) == (logged_in_at, ["pwd"])
        clock.advance(600)
        await service.ensure_fresh()  # the revocations' sync is not the refresh's
        service.store.reset_counts()
        response = await client.post(
            "/auth/refresh", data={"refresh_token": tokens["refresh_token"]}
        )
        assert response.status_code == 200, response.text
        refreshed = service.verify_access_token(response.json()["access_token"])
        assert refreshed["iat"] == logged_in_at + 600
        assert (refreshed["auth_time"], refreshed["amr"]) == (logged_in_at, ["pwd"])
        # Nothing read for it: the session carries it (GET, LIST, conditional PUT).
        assert service.store.requests == {"get": 1, "list": 1, "put": 1}


async def test_the_second_step_stamps_its_own_time_and_otp(tmp_path: Any) -> None:
    clock = Clock()
    service = make_clocked_service(clock=clock)
    async with client_for(mounted(service)) as client:
        await register(client, "alice")
        seed = await turn_on(client, service, "alice")
        token = await first_step(client, "alice")
        clock.advance(40)  # the code typed a while after the password
        response = await second_step(client, token, totp(seed, clock()))
        assert response.status_code == 200, response.text
        claims = service.verify_access_token(response.json()["access_token"])
        assert (claims["auth_time"], claims["amr"]) == (int(clock()), ["pwd", "otp"])


async def test_a_session_stored_before_the_claims_falls_back_to_its_creation() -> None:
    clock = Clock()
    service = make_clocked_service(clock=clock)
    async with client_for(mounted(service)) as client:
        await register(client, "alice")
        tokens = await login(client, "alice")
        key = session_key(service, tokens)
        found = await service.store.get(key, dict)
        assert found is not None
        old = {k: v for k, v in found.value.items() if k not in ("auth_time", "amr")}
        old["created_at"] -= 100  # opened before: its creation is what the token says
        await service.store.replace(key, old, found.etag)
        clock.advance(60)
        response = await client.post(
            "/auth/refresh", data={"refresh_token": tokens["refresh_token"]}
        )
        assert response.status_code == 200, response.text
        claims = service.verify_access_token(response.json()["access_token"])
        assert claims["auth_time"] == old["created_at"] and "amr" not in claims


class Issue(NamedTuple):
    """A moment from the token's `iat`: `seconds` and `leeways` later."""

    seconds: int
    leeways: int = 0


@pytest.mark.parametrize(
    ("changes", "accepted"),
    [
        ({}, True),  # issued before the claims existed
        ({"auth_time": Issue(-100)}, True),
        ({"amr": ["pwd"]}, True),
        ({"auth_time": Issue(0), "amr": ["pwd", "otp"]}, True),
        ({"auth_time": Issue(0, 1)}, True),  # a login host's clock ahead of the issuer's
        ({"auth_time": Issue(1, 1)}, False),  # after the token's issue
        ({"auth_time": True}, False),
        ({"auth_time": 1.5}, False),
        ({"auth_time": "1800000000"}, False),
        ({"auth_time": None}, False),
        ({"auth_time": -1}, False),
        ({"amr": "pwd"}, False),
        ({"amr": []}, False),
        ({"amr": ["pwd", 5]}, False),
        ({"amr": [""]}, False),
        ({"amr": None}, False),
    ],
)
def test_verifiers_take_the_claims_absent_or_strictly_typed(
    changes: dict[str, Any], accepted: bool
) -> None:
    codec = TokenCodec(SETTINGS)
    claims = forged_claims()
    for name, value in changes.items():
        if isinstance(value, Issue):
            value = claims["iat"] + value.seconds + value.leeways * SETTINGS.leeway_seconds
        claims[name] = value
    token = forge({"alg": "HS256", "typ": "at+jwt", "kid": hmac_entry(SETTINGS).kid}, claims)
    if accepted:
        assert codec.verify_access_token(token)["sub"] == claims["sub"]
    else:
        with pytest.raises(InvalidTokenError, match=r"auth_time|amr"):
            codec.verify_access_token(token)


async def test_a_password_change_opens_a_session_authenticated_then() -> None:
    clock = Clock()
    service = make_clocked_service(clock=clock)
    async with client_for(mounted(service)) as client:
        await register(client, "alice")
        tokens = await login(client, "alice")
        clock.advance(300)
        response = await client.post(
            "/auth/password",
            json={"current_password": PASSWORD, "new_password": "Other123!x"},
            headers=bearer(tokens),
        )
        assert response.status_code == 200, response.text
        claims = service.verify_access_token(response.json()["access_token"])
        assert (claims["auth_time"], claims["amr"]) == (int(clock()), ["pwd"])


def test_a_session_object_without_the_fields_decodes() -> None:
    from s3auth_asgi.models import Session

    old = msgspec.json.encode(
        {"id": "s", "user_id": "u", "secret": "x", "created_at": 7, "last_used_at": 7,
         "expires_at": 9, "username": "alice"}
    )  # fmt: skip
    session = msgspec.json.decode(old, type=Session)
    assert session.auth_time == 0 and session.amr == []


async def test_a_host_names_the_methods_of_a_session_it_opens() -> None:
    service = make_clocked_service()
    user = await service.create_user("alice", "alice@example.com", PASSWORD)
    pair = await service.create_token_pair(user, amr=("hwk", "pin"))
    assert service.verify_access_token(pair.access_token)["amr"] == ["hwk", "pin"]
    pair = await service.create_token_pair(user, amr=())
    claims = service.verify_access_token(pair.access_token)
    assert "amr" not in claims and type(claims["auth_time"]) is int
    service.store.reset_counts()
    for wrong in (("password",), ("pwd", "pwd"), "pwd"):
        with pytest.raises(S3ValidationError, match="amr"):
            await service.create_token_pair(user, amr=wrong)
    assert service.store.requests == {}  # refused before anything is written
