"""The account's trail keeps a login refused by its failure budget, once per time the budget
is spent: the wrong password whose charge leaves no room writes, beside its failure, the
refusal that the attempts after it meet (`login`, `refused`, `rate_limited`). The refused
attempts themselves write nothing, so a flood against an account costs the store no more
writes than the failures the budget admits, twice over at most; and a name that is nobody's
has the same written into its decoy trail, at the same cost."""

from __future__ import annotations

from typing import Any

import pytest
from test_app import PASSWORD, register
from test_login_notices import WRONG, Setup, post_login

from s3auth_asgi.app import DEFAULT_AUTH_LIMITS
from s3auth_asgi.storage import keys

pytestmark = pytest.mark.anyio

FLOOD = 30
BUDGET = DEFAULT_AUTH_LIMITS["login_account"]


def requests(log: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Each store request as its kind and the first segment of its key."""
    return [(kind, key.split("/", 1)[0]) for kind, key in log if kind != "answered"]


def trail_writes(log: list[tuple[str, str]]) -> int:
    return sum(1 for kind, key in log if kind == "create" and key.startswith(keys.AUDIT))


async def spend_and_flood(setup: Setup, name: str) -> list[list[tuple[str, str]]]:
    """The store requests of: the wrong passwords that spend the budget, a flood it refuses,
    and, once it admits one more, that one and another flood."""
    phases = []
    async with setup.client() as client:
        await register(client, "alice")
        for wrong, refused in ((BUDGET.max_requests, FLOOD), (1, FLOOD)):
            setup.log.clear()
            statuses = [(await post_login(client, name, WRONG)).status_code for _ in range(wrong)]
            assert statuses == [401] * wrong
            phases.append(list(setup.log))
            setup.log.clear()
            statuses = [(await post_login(client, name, WRONG)).status_code for _ in range(FLOOD)]
            assert statuses == [429] * refused
            phases.append(list(setup.log))
            setup.clock.advance(BUDGET.emission_interval)
    return phases


async def test_a_spent_budget_is_kept_once_and_a_flood_it_refuses_writes_nothing() -> None:
    setup = Setup(mailer=False)
    spending, flood, again, second_flood = await spend_and_flood(setup, "alice")
    # Each failure is kept, and the one that spent the budget keeps the refusal too.
    assert trail_writes(spending) == BUDGET.max_requests + 1
    assert trail_writes(again) == 2
    # Refused from the account's budget: the index and the budget read once, then the index
    # alone (the process remembers the refusal); no write of any kind.
    for refused in (flood, second_flood):
        assert requests(refused) == [("get", "index"), ("get", "ratelimit")] + [
            ("get", "index")
        ] * (FLOOD - 1)
    alice = await setup.service.get_user_by_username("alice")
    assert alice is not None
    trail, _ = await setup.service.audit.page(alice.id, limit=20)
    told = [(e.event.name, e.event.outcome, e.event.reason) for e in trail]
    failure = ("login", "failure", "invalid_credentials")
    refusal = ("login", "refused", "rate_limited")
    assert sorted(told, key=str) == sorted(
        [refusal] * 2 + [failure] * (BUDGET.max_requests + 1) + [("register", "success", None)],
        key=str,
    )
    # Stamped just after the failure that spent the budget, from where that one came.
    latest = trail[0].event
    spender = next(e.event for e in trail if e.event.at < latest.at and e.event.name == "login")
    assert (latest.name, latest.outcome) == ("login", "refused")
    assert latest.at == pytest.approx(spender.at + 0.001)
    assert (latest.client, latest.user_agent) == (spender.client, spender.user_agent)


async def test_a_name_that_is_nobodys_costs_what_an_account_does() -> None:
    seen: list[Any] = []
    for name in ("alice", "nobody"):
        setup = Setup(mailer=False)
        phases = await spend_and_flood(setup, name)
        seen.append([requests(phase) for phase in phases])
        audit = [
            key
            for phase in phases
            for kind, key in phase
            if kind == "create" and key.startswith(keys.AUDIT)
        ]
        assert len({key.rsplit("/", 1)[0] for key in audit}) == 1  # one trail: the name's
    assert seen[0] == seen[1]
    # Per wrong password 4 GET (index, two budgets, the user or its decoy) and 3 writes (two
    # budgets, the trail), and the one that spends the budget 1 write more; per refusal the
    # index, and once the budget.
    assert [len(phase) for phase in seen[0]] == [36, FLOOD + 1, 8, FLOOD + 1]
    assert [trail_writes(phase) for phase in phases] == [
        BUDGET.max_requests + 1,
        0,
        2,
        0,
    ]


async def test_a_budget_spent_by_wrong_current_passwords_is_kept_too() -> None:
    setup = Setup(mailer=False, new_device_notices=False)
    async with setup.client() as client:
        alice = await register(client, "alice")
        tokens = (await post_login(client, "alice", PASSWORD)).json()
        change = {"current_password": WRONG, "new_password": "Brand-new-pass-7"}
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        statuses = [
            (await client.post("/auth/password", json=change, headers=auth)).status_code
            for _ in range(BUDGET.max_requests + 3)
        ]
        assert statuses == [403] * BUDGET.max_requests + [429] * 3
    trail, _ = await setup.service.audit.page(alice["id"])
    told = [(e.event.name, e.event.outcome, e.event.reason) for e in trail]
    assert told[0] == ("login", "refused", "rate_limited")
    assert told.count(("password_change", "failure", "wrong_password")) == BUDGET.max_requests
    assert told.count(("login", "refused", "rate_limited")) == 1
