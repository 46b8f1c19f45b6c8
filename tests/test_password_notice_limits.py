"""The notice a new password sends to the account's address, which its registrant typed and
need not have verified: the owner's changes at `/password` spend that inbox's budgets, as
the mails of a change of address do, shared by every instance; past them the change is 429
and nothing is changed or mailed. A reset's notice needs a link, which has budgets of its
own, and an administrator's is the administrator's to make."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import Clock, clock_fixture  # noqa: F401 (a fixture)
from test_app import PASSWORD, assert_problem, bearer, login, register
from test_email_change_limits import PER_INBOX, Fleet

pytestmark = pytest.mark.anyio

NEW_PASSWORDS = [f"Fresh-pass-word-{i}" for i in range(PER_INBOX + 3)]


async def test_the_owners_new_passwords_send_the_inbox_its_budget_of_notices(
    tmp_path: Path, clock: Clock
) -> None:
    fleet = Fleet(tmp_path, clock)
    async with fleet.client(0, "192.0.2.1") as client:
        user = await register(client, "alice")  # alice@example.com, not verified
        tokens = await login(client, "alice")
    current, statuses = PASSWORD, []
    for i, new in enumerate(NEW_PASSWORDS):
        # A change a second: each ends the account's other sessions, and revocations of
        # one user within one tick of the clock share a few milliseconds' keys at most.
        clock.advance(1)
        async with fleet.client(i, f"198.51.100.{i + 1}") as client:
            body = {"current_password": current, "new_password": new}
            answer = await client.post("/auth/password", json=body, headers=bearer(tokens))
        statuses.append(answer.status_code)
        if answer.status_code == 200:
            current, tokens = new, answer.json()
        else:
            assert_problem(answer, 429, "rate_limited")
            assert "recovery" not in answer.headers.get("ratelimit", "")
    assert statuses == [200] * PER_INBOX + [429] * 3
    assert await fleet.mails("password_changed_notice", "alice@example.com") == PER_INBOX
    # Refused, nothing changed: the password is the last one told, and its session lives.
    for service in fleet.services:
        assert await service.authenticate_user("alice", NEW_PASSWORDS[PER_INBOX - 1])
    async with fleet.client(1, "192.0.2.1") as client:
        me = await client.get("/auth/me", headers=bearer(tokens))
    assert me.status_code == 200 and me.json()["id"] == user["id"]
