"""What `s3auth` prints of a record's text on a terminal: a username, an email or an id read
from the store may hold what an earlier version or other software wrote there, and none of
it may reach the terminal as an escape, a bell, a carriage return or a bidirectional
override. Every table, message, finding and error writes such a character as its escape,
as `keys list` and `user sessions` do; JSON escapes it itself."""

from __future__ import annotations

import json

import anyio
import msgspec
import pytest
from conftest import SECRET, make_service
from test_cli import Run
from test_names_confusable import legacy_user

from s3auth_asgi.cli import failures
from s3auth_asgi.identifiers import new_id
from s3auth_asgi.models import IndexEntry
from s3auth_asgi.storage import ObjectStore, keys

# A window title, a bell, a screen clear, a carriage return and a right-to-left override.
HOSTILE = "mal\x1b]0;owned\x07\x1b[2J\r\u202eory"
SHOWN = "mal\\x1b]0;owned\\x07\\x1b[2J\\r\\u202eory"


def clean(text: str) -> bool:
    return not any(char in text for char in "\x1b\x07\r\u202e")


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> ObjectStore:
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    monkeypatch.setenv("S3AUTH_ARGON2_MEMORY_KIB", "1024")
    monkeypatch.setenv("S3AUTH_ARGON2_TIME_COST", "1")
    monkeypatch.setenv("S3AUTH_NAME_RESERVATION_SECONDS", "0")
    return ObjectStore.from_url("memory://")


def test_user_tables_messages_and_errors_escape_a_stored_username(store: ObjectStore) -> None:
    service = make_service(store=store)
    user = anyio.run(legacy_user, service, HOSTILE, "mallory@example.com")

    def run(*argv: str) -> Run:
        return Run("user", *argv, open_store=lambda url: store)

    listed = run("list")
    assert listed.code == failures.OK and clean(listed.out), repr(listed.out)
    assert f"{SHOWN:20}  mallory@example.com" in listed.out
    (public,) = json.loads(run("list", "--json").out)
    assert public["username"] == HOSTILE  # JSON keeps it, escaped by the encoding
    for argv, said in (
        (("disable", user.id), f"{SHOWN} disabled"),
        (("enable", user.id), f"{SHOWN} enabled"),
        (("promote", user.id), f"{SHOWN} is an administrator"),
        (("revoke", user.id), f"ended 0 session(s) of {SHOWN}"),
    ):
        done = run(*argv)
        assert done.code == failures.OK and clean(done.out) and said in done.out, done
    refused = run("revoke", user.id, "--session", "1" * 32)
    assert refused.code == failures.NOT_FOUND, refused
    assert clean(refused.err) and f"{SHOWN} has no session" in refused.err, repr(refused.err)
    unconfirmed = run("delete", "mallory@example.com")
    assert unconfirmed.code == failures.USAGE, unconfirmed
    assert clean(unconfirmed.err) and f"deleting {SHOWN}" in unconfirmed.err, repr(unconfirmed.err)


def test_doctor_findings_escape_what_an_entry_names(store: ObjectStore) -> None:
    key = keys.username_index("someone")
    anyio.run(store.create, key, IndexEntry(user_id=HOSTILE))
    service = make_service(store=store)
    user = anyio.run(legacy_user, service, "victor", "victor@example.com")
    copy = msgspec.structs.replace(user, id=HOSTILE)
    anyio.run(store.create, keys.user(new_id()), copy)  # a record under another's id
    found = Run("doctor", open_store=lambda url: store)
    assert found.code == failures.REFUSED, found
    assert clean(found.out), repr(found.out)
    assert f"names user {SHOWN}, which does not exist" in found.out
    assert f"the record here is user {SHOWN}'s" in found.out
