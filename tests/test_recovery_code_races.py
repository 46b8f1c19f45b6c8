"""New recovery codes asked for twice at once (a double-click, two tabs, two instances):
each answer's codes must be the ones kept, or the owner keeps ten codes that never work."""

from __future__ import annotations

import pytest
from support import Clock, RacedUserWrite, make_clocked_service
from test_app import PASSWORD, assert_problem, bearer, client_for, mounted, register
from test_app_totp import first_step, login_with, second_step, turn_on

from s3auth_asgi.storage import ObjectStore

pytestmark = pytest.mark.anyio


async def test_codes_made_over_other_new_codes_are_refused_not_answered() -> None:
    clock = Clock()
    store = ObjectStore.from_url("memory://")
    service = make_clocked_service(clock=clock, store=store)
    async with client_for(mounted(service)) as client:
        alice = await register(client, "alice")
        seed = await turn_on(client, service, "alice")
        tokens = await login_with(client, service, await first_step(client, "alice"), seed, clock)
        won: list[str] = []

        async def other_request() -> None:
            won.extend(await service.new_recovery_codes(alice["id"]))

        raced = make_clocked_service(clock=clock, store=RacedUserWrite(store, other_request))
        async with client_for(mounted(raced)) as other:
            response = await other.post(
                "/auth/me/totp/recovery-codes",
                json={"current_password": PASSWORD},
                headers=bearer(tokens),
            )
        # Its codes were never kept: no answer shows them.
        assert_problem(response, 409, "conflict")
        # The codes answered are the ones that work.
        answer = await second_step(client, await first_step(client, "alice"), won[0])
        assert answer.status_code == 200, answer.text
