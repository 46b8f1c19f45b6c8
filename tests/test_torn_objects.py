"""Objects a crash left torn (empty, or cut short) on a `file://` store.

A create is synced to disk before its name appears, as a replace is, so a power loss
leaves an object whole or absent. An object torn all the same (written before that, or
damaged since) holds no name for ever: an index entry that cannot be read, of a name its
user's record holds, is that user's to let go (by a deletion or a change of address), and a
user record that cannot be read can be deleted, leaving its entries to be taken over once
abandoned. While a record may hold a name, the name stays taken.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support import Clock, make_clocked_service

from s3auth_asgi import EmailTakenError, S3AuthService, TokenRevokedError, UsernameTakenError
from s3auth_asgi.identifiers import fold
from s3auth_asgi.storage import ObjectStore, keys

pytestmark = pytest.mark.anyio
PASSWORD = "Correct-Horse-42x"


def torn(root: Path, key: str) -> None:
    (root / key).write_bytes(b"")


async def test_a_file_store_syncs_what_it_creates_before_it_appears(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    sync = os.fsync

    def recording_sync(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        sync(fd)

    monkeypatch.setattr(os, "fsync", recording_sync)
    root = tmp_path / "store"
    store = ObjectStore.from_url(f"file://{root}")
    etag = await store.create("users/a.json", {"v": 1})
    created = (root / "users/a.json").stat().st_ino
    await store.replace("users/a.json", {"v": 2}, etag)
    replaced = (root / "users/a.json").stat().st_ino
    assert synced == [created, replaced]


def file_service(tmp_path: Path, clock: Clock) -> tuple[S3AuthService, Path]:
    root = tmp_path / "store"
    return make_clocked_service(f"file://{root}", clock=clock), root


async def test_a_torn_username_entry_stays_taken_while_its_user_lives_and_goes_with_it(
    tmp_path: Path,
) -> None:
    clock = Clock()
    service, root = file_service(tmp_path, clock)
    alice = await service.create_user("alice", "alice@example.com", PASSWORD)
    torn(root, keys.username_index(fold("alice")))
    clock.advance(service.settings.name_reservation_seconds * 10)
    # Whose entry it was cannot be read: alice's record may hold the name, so it is hers.
    with pytest.raises(UsernameTakenError):
        await service.create_user("alice", "other@example.com", PASSWORD)
    assert await service.authenticate_user("alice@example.com", PASSWORD) is not None
    service.store.reset_counts()
    assert await service.delete_user(alice.id) is True
    # As for any user: the closing marker, closing the record, ending its sessions, 1 GET
    # and 1 PUT per name, and their batch DELETE.
    assert dict(service.store.requests) == {"get": 4, "put": 6, "list": 1, "delete": 2}
    again = await service.create_user("alice", "other@example.com", PASSWORD)
    assert await service.authenticate_user("alice", PASSWORD) == again


async def test_a_change_of_address_lets_go_of_its_torn_old_entry(tmp_path: Path) -> None:
    clock = Clock()
    service, root = file_service(tmp_path, clock)
    alice = await service.create_user("alice", "alice@example.com", PASSWORD)
    torn(root, keys.email_index(fold("alice@example.com")))
    await service.update_user(alice.id, email="alice@example.org")
    bob = await service.create_user("bob", "alice@example.com", PASSWORD)
    assert await service.authenticate_user("alice@example.com", PASSWORD) == bob


async def test_a_torn_user_record_can_be_deleted_and_its_names_are_then_abandoned(
    tmp_path: Path,
) -> None:
    clock = Clock()
    service, root = file_service(tmp_path, clock)
    bob = await service.create_user("bob", "bob@example.com", PASSWORD)
    pair = await service.create_token_pair(bob)
    torn(root, keys.user(bob.id))
    # Which names it holds cannot be read: while it is there, it holds them, however old
    # their entries are.
    clock.advance(service.settings.name_reservation_seconds + 1)
    with pytest.raises(UsernameTakenError):
        await service.create_user("bob", "robert@example.com", PASSWORD)
    with pytest.raises(EmailTakenError):
        await service.create_user("robert", "bob@example.com", PASSWORD)
    service.store.reset_counts()
    assert await service.delete_user(bob.id) is True
    # The record's GET, the closing marker, the LIST of its sessions, the revocation, the
    # batch DELETE (the record with them) and the deletion's marker: no name to release
    # that it could read.
    assert dict(service.store.requests) == {"get": 1, "list": 1, "put": 3, "delete": 1}
    assert not (root / keys.user(bob.id)).exists()
    with pytest.raises(TokenRevokedError):
        service.decode_token(pair.access_token)
    with pytest.raises(TokenRevokedError):
        await service.refresh_access_token(pair.refresh_token)
    # Its entries name a user that is gone, written a reservation's time ago: abandoned.
    robert = await service.create_user("bob", "bob@example.com", PASSWORD)
    assert await service.authenticate_user("bob", PASSWORD) == robert
    assert await service.delete_user(bob.id) is False  # gone
    users, _ = await service.list_users()
    assert [user.id for user in users] == [robert.id]


async def test_an_entry_naming_what_no_id_can_be_is_taken_over(tmp_path: Path) -> None:
    """A hand edit left an entry naming no id (nor anything a key may hold): no record can
    hold its name, so once abandoned it is taken over like any other, not read as a key."""
    clock = Clock()
    service, root = file_service(tmp_path, clock)
    (root / "index/username").mkdir(parents=True)
    (root / keys.username_index("kim")).write_bytes(b'{"user_id": "../../etc/passwd"}')
    clock.advance(service.settings.name_reservation_seconds + 1)
    service.store.reset_counts()
    kim = await service.create_user("kim", "kim@example.com", PASSWORD)
    # The failed create, the entry's GET and its replace; then the other 2 names, the record.
    assert dict(service.store.requests) == {"put": 5, "get": 1}
    assert await service.authenticate_user("kim", PASSWORD) == kim


async def test_a_torn_end_of_every_session_is_replaced_by_the_next_one(tmp_path: Path) -> None:
    """A cut-off that cannot be read fails each read of it (a sync, the sweep, the sessions
    page), and deleting it would lift the ending: the next end of every session replaces it
    on its version, as it replaces a readable one, ending what it ended and what came since."""
    clock = Clock()
    service, root = file_service(tmp_path, clock)
    alice = await service.create_user("alice", "alice@example.com", PASSWORD)
    await service.end_all_sessions()
    clock.advance(1)
    opened = await service.create_token_pair(alice)
    torn(root, keys.SESSIONS_NOT_BEFORE)
    clock.advance(1)
    service.store.reset_counts()
    await service.end_all_sessions()
    assert dict(service.store.requests) == {"get": 2, "put": 1}  # as over a readable one
    assert (root / keys.SESSIONS_NOT_BEFORE).read_bytes()
    with pytest.raises(TokenRevokedError):
        service.decode_token(opened.access_token)
    assert await service.cleanup_expired_tokens() == 1  # the session it ended
    assert await service.get_user_active_sessions(alice.id) == []
