"""An account tool whose change landed but whose store failed before the command could say
so: the command exits 4 and says to run it again. The run again finds the change made, and
its trail keeps the change all the same: the command cannot tell its own earlier attempt
that landed from nothing to do, and an administrator's grant or disabling missing from the
account's trail is the one the owner most needs to see."""

from __future__ import annotations

import anyio
import pytest
from conftest import make_service
from test_admin_rule import _cli_store
from test_cli import Run
from test_cli_beside_instances import _trail
from test_faults import FailFirst

from s3auth_asgi.cli import failures

PASSWORD = "Correct-Horse-42x"


@pytest.mark.parametrize(
    ("argv", "admin", "active"),
    [
        (("promote", "bob"), False, True),
        (("demote", "bob"), True, True),
        (("disable", "bob"), False, True),
        (("enable", "bob"), False, False),
    ],
    ids=["promote", "demote", "disable", "enable"],
)
def test_a_change_whose_answer_was_lost_is_kept_in_the_trail_by_its_retry(
    monkeypatch: pytest.MonkeyPatch, argv: tuple[str, ...], admin: bool, active: bool
) -> None:
    store = _cli_store(monkeypatch)
    service = make_service(store=store)

    async def setup() -> str:
        bob = await service.create_user("bob", "bob@example.com", PASSWORD, is_admin=admin)
        if not active:
            await service.update_user(bob.id, is_active=False)
        return bob.id

    bob = anyio.run(setup)
    lost = FailFirst(store, "replace", "users/", after=True)
    cut = Run("user", *argv, open_store=lambda url: lost)
    assert cut.code == failures.UNAVAILABLE, cut
    assert cut.err.startswith("s3auth: injected fault after replace"), cut
    retried = Run("user", *argv, open_store=lambda url: store)
    assert retried.code == failures.OK, retried
    assert _trail(service, bob) == [("admin_user_update", "cli")]
