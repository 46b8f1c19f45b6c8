"""A deletion cut short after it closed the user record (`user_records`): the record is
still there, marked as being deleted. Every reader takes it for gone, as every writer and
login does; what deletes a user by its id finishes the deletion. Against memory:// and
file:// stores, the deletion stopped by a real store failure; the CLI through its main()."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from conftest import make_service
from support import late_session
from test_admin_rule import _cli_store
from test_app import assert_problem, bearer, client_for, login, mounted
from test_cli import Run
from test_cli_beside_instances import _trail
from test_faults import FailFirst
from test_torn_objects import torn

from s3auth_asgi import StoreUnavailableError, TokenRevokedError, User
from s3auth_asgi.cli import failures
from s3auth_asgi.storage import ObjectStore, keys

PASSWORD = "Correct-Horse-42x"

# Where a deletion stops with the record closed: the answer of the closing write lost, or
# the batch DELETE (of the sessions and the record) failing before it is sent.
CUT_SHORT = pytest.mark.parametrize(
    ("name", "after"), [("replace", True), ("delete_many", False)], ids=["closed", "not-deleted"]
)


@pytest.fixture(params=["memory", "file"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"file://{tmp_path / 'store'}"


async def cut_short(store: ObjectStore, user: User, name: str, after: bool) -> None:
    """`user`'s deletion, stopped by a store failure with the record closed and left."""
    failing = make_service(store=FailFirst(store, name, "users/", after=after))
    with pytest.raises(StoreUnavailableError):
        await failing.delete_user(user.id)
    found = await store.get(keys.user(user.id), User)
    assert found is not None and found.value.deleting


@pytest.mark.anyio
@CUT_SHORT
async def test_the_service_reads_a_closed_record_as_gone_and_its_deletion_finishes_it(
    url: str, name: str, after: bool
) -> None:
    store = ObjectStore.from_url(url)
    service = make_service(store=store)
    bob = await service.create_user("bob", "bob@example.com", PASSWORD)
    vic = await service.create_user("vic", "vic@example.com", PASSWORD)
    pair = await service.create_token_pair(vic)
    await cut_short(store, vic, name, after)
    store.reset_counts()
    assert await service.get_user_by_id(vic.id) is None
    assert dict(store.requests) == {"get": 1}  # its budget: the record's GET
    store.reset_counts()
    users, cursor = await service.list_users()
    assert ([user.id for user in users], cursor) == ([bob.id], None)
    assert dict(store.requests) == {"list": 1, "get": 2}  # 1 LIST and 1 GET per user
    assert await service.list_users(search="vic") == ([], None)
    # As by name: the account is on its way out.
    assert await service.get_user_by_username("vic") is None
    assert await service.get_user_by_email("vic@example.com") is None
    # Deleting it by its id finishes the deletion: its sessions end, its names are free.
    store.reset_counts()
    assert await service.delete_user(vic.id) is True
    # The record's GET, its closing marker (closed already: no closing PUT); LIST,
    # revocation, batch DELETE, `deleted` marker; a GET and a PUT per name, and their batch
    # DELETE.
    assert dict(store.requests) == {"get": 4, "put": 6, "list": 1, "delete": 2}
    assert await store.get(keys.user(vic.id), User) is None
    with pytest.raises(TokenRevokedError):
        await service.refresh_access_token(pair.refresh_token)
    assert await service.create_user("vic", "vic@example.com", PASSWORD)


@pytest.mark.anyio
@CUT_SHORT
async def test_the_admin_api_shows_a_closed_record_as_gone_and_its_delete_finishes_it(
    name: str, after: bool
) -> None:
    store = ObjectStore.from_url("memory://")
    service = make_service(store=store)
    root = await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    vic = await service.create_user("vic", "vic@example.com", PASSWORD)
    await cut_short(store, vic, name, after)
    async with client_for(mounted(service)) as client:
        admin = bearer(await login(client, "root", PASSWORD))
        await service.ensure_fresh()  # the revocation list synced: its LIST is no answer's
        listed = await client.get("/auth/admin/users", headers=admin)
        assert listed.status_code == 200, listed.text
        assert [user["id"] for user in listed.json()["users"]] == [root.id]
        searched = await client.get("/auth/admin/users?search=vic", headers=admin)
        assert searched.json() == {"users": [], "next_cursor": None}
        store.reset_counts()
        shown = await client.get(f"/auth/admin/users/{vic.id}", headers=admin)
        assert_problem(shown, 404, "user_not_found")
        assert dict(store.requests) == {"get": 2}  # the caller's record, then the user's
        for path in (f"/auth/admin/users/{vic.id}/sessions", f"/auth/admin/users/{vic.id}/events"):
            assert_problem(await client.get(path, headers=admin), 404, "user_not_found")
        ended = await client.post(f"/auth/admin/users/{vic.id}/revoke", headers=admin)
        assert_problem(ended, 404, "user_not_found")
        deleted = await client.delete(f"/auth/admin/users/{vic.id}", headers=admin)
        assert deleted.status_code == 204, deleted.text
        assert await store.get(keys.user(vic.id), User) is None
        again = await client.delete(f"/auth/admin/users/{vic.id}", headers=admin)
        assert_problem(again, 404, "user_not_found")
    assert await service.create_user("vic", "vic@example.com", PASSWORD)


@CUT_SHORT
def test_the_cli_lists_no_closed_record_and_its_delete_by_id_finishes_it(
    monkeypatch: pytest.MonkeyPatch, name: str, after: bool
) -> None:
    store = _cli_store(monkeypatch)
    service = make_service(store=store)
    bob = anyio.run(lambda: service.create_user("bob", "bob@example.com", PASSWORD))
    vic = anyio.run(lambda: service.create_user("vic", "vic@example.com", PASSWORD))
    anyio.run(cut_short, store, vic, name, after)

    def run(*argv: str) -> Run:
        return Run("user", *argv, open_store=lambda url: store)

    listed = run("list")
    assert listed.code == failures.OK, listed
    assert bob.id in listed.out and vic.id not in listed.out and "1 user(s)" in listed.out
    # By a name it is nobody's; by the id that `s3auth doctor` names, its deletion finishes.
    by_name = run("delete", "vic", "--yes")
    assert by_name.code == failures.NOT_FOUND, by_name
    for others in (("sessions", vic.id), ("disable", vic.id)):
        assert run(*others).code == failures.NOT_FOUND
    deleted = run("delete", vic.id)
    assert deleted.code == failures.OK, deleted
    assert deleted.out == (
        f"deleted user {vic.id} (finishing a deletion cut short; its sessions have ended)\n"
    )
    assert anyio.run(store.get, keys.user(vic.id), User) is None
    assert _trail(service, vic.id) == [("admin_user_delete", "cli")]
    assert anyio.run(lambda: service.create_user("vic", "vic@example.com", PASSWORD))
    gone = run("delete", vic.id)
    assert (gone.code, gone.err) == (
        failures.NOT_FOUND,
        f"s3auth: no user '{vic.id}' (give an id, a username or an email)\n",
    )


def test_the_cli_deletes_a_record_that_cannot_be_read_by_its_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `s3auth doctor` says of a torn record: `s3auth user delete ID` deletes it."""
    _cli_store(monkeypatch)
    root = tmp_path / "store"
    store = ObjectStore.from_url(f"file://{root}")
    service = make_service(store=store)
    bob = anyio.run(lambda: service.create_user("bob", "bob@example.com", PASSWORD))
    torn(root, keys.user(bob.id))
    deleted = Run("user", "delete", bob.id, open_store=lambda url: store)
    assert deleted.code == failures.OK, deleted
    assert deleted.out == (
        f"deleted user {bob.id} (its record could not be read; its sessions have ended)\n"
    )
    assert not (root / keys.user(bob.id)).exists()


@pytest.mark.anyio
@CUT_SHORT
async def test_no_session_of_an_account_a_deletion_closed_refreshes(
    url: str, name: str, after: bool
) -> None:
    """Cut short with the record closed, the deletion has left sessions whose refresh
    tokens nobody revoked (or whose revocation lapses): an instance that holds no
    revocation refuses them all the same, and ends them, their access tokens too."""
    store = ObjectStore.from_url(url)
    service = make_service(store=store)
    vic = await service.create_user("vic", "vic@example.com", PASSWORD)
    first, second = [await service.create_token_pair(vic) for _ in range(2)]
    # Another instance on the store, whose snapshot, fresh, holds no revocation of them.
    other_store = store if url == "memory://" else ObjectStore.from_url(url)
    other = make_service(store=other_store)
    await other.blacklist.sync()
    await cut_short(store, vic, name, after)
    other_store.reset_counts()
    with pytest.raises(TokenRevokedError):
        await other.refresh_access_token(first.refresh_token)
    # Its session, the listing (the closing marker in it), the record; then the sessions
    # listed are ended: one revocation naming them, one batch DELETE.
    assert dict(other_store.requests) == {"get": 2, "list": 1, "put": 1, "delete": 1}
    with pytest.raises(TokenRevokedError):
        await other.refresh_access_token(second.refresh_token)
    synced = make_service(store=ObjectStore.from_url(url) if url != "memory://" else store)
    await synced.ensure_fresh()
    for pair in (first, second):
        with pytest.raises(TokenRevokedError):
            synced.decode_token(pair.access_token)
    # Finished by its deletion again, as before.
    assert await service.delete_user(vic.id) is True
    assert await store.get(keys.user(vic.id), User) is None


@pytest.mark.anyio
async def test_a_deletion_cut_short_before_its_close_leaves_the_sessions_refreshing(
    url: str,
) -> None:
    """Its closing marker written, its close not: the account is as it was, and its
    sessions refresh, each at a GET of the record more, until a deletion finishes."""
    store = ObjectStore.from_url(url)
    service = make_service(store=store)
    vic = await service.create_user("vic", "vic@example.com", PASSWORD)
    pair = await service.create_token_pair(vic)
    failing = make_service(store=FailFirst(store, "replace", "users/", after=False))
    with pytest.raises(StoreUnavailableError):
        await failing.delete_user(vic.id)
    other = make_service(store=store if url == "memory://" else ObjectStore.from_url(url))
    await other.blacklist.sync()
    other.store.reset_counts()
    pair = await other.refresh_access_token(pair.refresh_token)
    assert dict(other.store.requests) == {"get": 2, "list": 1, "put": 1}
    assert await other.get_user_by_id(vic.id) == vic
    found = await other.authenticate_user("vic", PASSWORD)
    assert found is not None
    assert await other.refresh_access_token((await other.create_token_pair(found)).refresh_token)
    assert await service.delete_user(vic.id) is True
    with pytest.raises(TokenRevokedError):
        await other.refresh_access_token(pair.refresh_token)


@pytest.mark.anyio
async def test_a_late_session_of_a_deletion_cut_short_before_its_marker_refreshes_not(
    url: str,
) -> None:
    """The deletion's record and sessions gone, its `~generation.deleted` marker not
    written: a session a host of an earlier version wrote from the record as it read it
    before (no read back) is refused at its first refresh all the same."""
    store = ObjectStore.from_url(url)
    service = make_service(store=store)
    vic = await service.create_user("vic", "vic@example.com", PASSWORD)
    failing = make_service(store=FailFirst(store, "create", "~generation.", after=False))
    with pytest.raises(StoreUnavailableError):
        await failing.delete_user(vic.id)
    assert await store.get(keys.user(vic.id), User) is None
    late = await late_session(service, vic)
    other = make_service(store=store)
    await other.blacklist.sync()
    store.reset_counts()
    with pytest.raises(TokenRevokedError):
        await other.refresh_access_token(late.refresh_token)
    assert dict(store.requests) == {"get": 2, "list": 1, "put": 1, "delete": 1}
