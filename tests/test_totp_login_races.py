"""The login's second step against changes that land between its read of the record and
the write that spends its code: its `mfa_token` must hold on the record the spend is written
over, not only on the one first read, or a login that proved an old password, or a disabled
account's, or the token's second use, opens a session that nothing ends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from support import Clock, RacedUserWrite, make_clocked_service
from test_app import assert_problem, client_for, mounted, register
from test_app_totp import first_step, second_step, turn_on

from s3auth_asgi import S3AuthService
from s3auth_asgi.storage import ObjectStore
from s3auth_asgi.totp import totp

pytestmark = pytest.mark.anyio

Meanwhile = Callable[[S3AuthService, str, str, bytes, Clock], Awaitable[object]]


async def disabled(
    service: S3AuthService, user_id: str, token: str, seed: bytes, clock: Clock
) -> None:
    await service.update_user(user_id, is_active=False)


async def new_password(
    service: S3AuthService, user_id: str, token: str, seed: bytes, clock: Clock
) -> None:
    await service.set_password(user_id, "Newer123!")


async def token_used_again(
    service: S3AuthService, user_id: str, token: str, seed: bytes, clock: Clock
) -> None:
    """The same token with the code of the step before, on another instance: it wins."""
    async with client_for(mounted(service)) as client:
        response = await second_step(client, token, totp(seed, clock()))
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("meanwhile", [disabled, new_password, token_used_again])
async def test_a_change_landing_before_the_code_is_spent_opens_no_session(
    meanwhile: Meanwhile,
) -> None:
    clock = Clock()
    store = ObjectStore.from_url("memory://")
    service = make_clocked_service(clock=clock, store=store)
    async with client_for(mounted(service)) as client:
        alice = await register(client, "alice")
        seed = await turn_on(client, service, "alice")
        token = await first_step(client, "alice")
        clock.advance(30)
        code = totp(seed, clock() + 30)  # the step after the current one, still accepted
        before = len(await service.get_user_active_sessions(alice["id"]))

        async def change() -> None:
            await meanwhile(service, alice["id"], token, seed, clock)

        raced = make_clocked_service(clock=clock, store=RacedUserWrite(store, change))
        async with client_for(mounted(raced)) as other:
            response = await second_step(other, token, code)
        assert_problem(response, 401, "invalid_mfa_token")
        # Only the winner's session is left: a disabling or a new password ended the rest.
        won = meanwhile is token_used_again
        sessions = await service.get_user_active_sessions(alice["id"])
        assert len(sessions) == (before + 1 if won else 0)
        stored = await service.get_user_by_id(alice["id"])
        assert stored is not None
        # The code was not spent: the step kept is the winner's, or the confirming code's.
        assert stored.totp_last_step == int(clock()) // 30 + (0 if won else -1)
