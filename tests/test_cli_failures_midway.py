"""The account tools when the store fails part-way through a command, after its change has
landed or in the middle of it: the command says what was done and what is left, and what it
tells the operator to run next finishes the job. The CLI through its main(), on memory://
stores behind a fault-injecting wrapper."""

from __future__ import annotations

import anyio
import pytest
from conftest import make_service
from test_admin_events import AuditFails
from test_admin_rule import _cli_store
from test_cli import Run
from test_cli_beside_instances import _trail
from test_faults import FailFirst

from s3auth_asgi import User
from s3auth_asgi.cli import failures
from s3auth_asgi.storage import Store, keys

PASSWORD = "Correct-Horse-42x"
LOST = "s3auth: warning: the change was made, but the account's audit trail could not be written"


def _run(store: Store, *argv: str, stdin: str = "") -> Run:
    return Run("user", *argv, stdin=stdin, open_store=lambda url: store)


@pytest.mark.parametrize(
    ("argv", "event", "said"),
    [
        (("delete", "bob", "--yes"), "admin_user_delete", "deleted bob (its sessions have ended)"),
        (("disable", "bob"), "admin_user_update", "bob disabled (its sessions have ended)"),
        (("demote", "bob"), "admin_user_update", "bob is not an administrator"),
        (("revoke", "bob"), "admin_user_revoke", "ended 1 session(s) of bob"),
    ],
    ids=["delete", "disable", "demote", "revoke"],
)
def test_a_change_whose_audit_event_was_not_kept_stands_and_says_so(
    monkeypatch: pytest.MonkeyPatch, argv: tuple[str, ...], event: str, said: str
) -> None:
    """As the auth app answers such a request: the change is done, and told done; what
    was not kept is said on stderr. Exit 4 with "try again" would send the operator to run
    a command whose change is made already, which then finds no user to delete (exit 5),
    or nothing to change, and so keeps no event either."""
    store = _cli_store(monkeypatch)
    service = make_service(store=store)

    async def setup() -> User:
        bob = await service.create_user("bob", "bob@example.com", PASSWORD, is_admin=True)
        await service.create_token_pair(bob)
        return bob

    bob = anyio.run(setup)
    run = _run(AuditFails(store), *argv)
    assert run.code == failures.OK, run
    assert run.out.startswith(said), run
    assert run.err == (
        f"{LOST} (store_unavailable): it does not show this {event} of user {bob.id}\n"
    )
    assert _trail(service, bob.id) == []
    found = anyio.run(service.get_user_by_id, bob.id)
    if argv[0] == "delete":
        assert found is None
    elif argv[0] == "disable":
        assert found is not None and not found.is_active
    elif argv[0] == "demote":
        assert found is not None and not found.is_admin
    else:
        assert anyio.run(service.get_user_active_sessions, bob.id) == []


def test_a_user_created_whose_audit_event_was_not_kept_is_told_created(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = _cli_store(monkeypatch)
    argv = ("create", "bob", "--email=bob@example.com", "--password-stdin")
    run = _run(AuditFails(store), *argv, stdin=f"{PASSWORD}\n")
    assert run.code == failures.OK, run
    bob = anyio.run(make_service(store=store).get_user_by_username, "bob")
    assert bob is not None
    assert run.out == f"created user bob <bob@example.com> id={bob.id} in memory:\n"
    assert run.err == (
        f"{LOST} (store_unavailable): it does not show this admin_user_create of user {bob.id}\n"
    )


def test_a_deletion_by_name_cut_short_names_the_id_that_finishes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Once the deletion has closed the record, no name finds the account any more: the
    same command run again says there is no such user. So the failure names the id, by
    which it finishes."""
    store = _cli_store(monkeypatch)
    service = make_service(store=store)
    bob = anyio.run(lambda: service.create_user("bob", "bob@example.com", PASSWORD))
    cut = _run(FailFirst(store, "delete_many", "users/", after=False), "delete", "bob", "--yes")
    assert cut.code == failures.UNAVAILABLE, cut
    assert cut.out == ""
    assert cut.err.startswith("s3auth: injected fault before delete_many"), cut
    assert cut.err.endswith(
        f"; its deletion may have begun, after which no name finds the account: "
        f"`s3auth user delete {bob.id}` finishes it\n"
    ), cut
    closed = anyio.run(store.get, keys.user(bob.id), User)
    assert closed is not None and closed.value.deleting
    assert _run(store, "delete", "bob", "--yes").code == failures.NOT_FOUND
    finished = _run(store, "delete", bob.id)
    assert finished.code == failures.OK, finished
    assert anyio.run(store.get, keys.user(bob.id), User) is None
    assert _trail(service, bob.id) == [("admin_user_delete", "cli")]
    assert anyio.run(lambda: service.create_user("bob", "bob@example.com", PASSWORD))


def test_a_deletion_that_failed_before_it_began_is_told_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The command cannot tell whether its close landed: the same advice, and the id
    deletes the account as its name would have."""
    store = _cli_store(monkeypatch)
    service = make_service(store=store)
    bob = anyio.run(lambda: service.create_user("bob", "bob@example.com", PASSWORD))
    cut = _run(FailFirst(store, "replace", "users/", after=False), "delete", "bob", "--yes")
    assert cut.code == failures.UNAVAILABLE, cut
    assert cut.err.endswith(f"`s3auth user delete {bob.id}` finishes it\n"), cut
    assert anyio.run(service.get_user_by_id, bob.id) is not None
    assert _run(store, "delete", bob.id).code == failures.OK
    assert anyio.run(service.get_user_by_id, bob.id) is None
