"""Objects that cannot be read, as the operator's tools meet them, on a `file://` store torn
by writing bad bytes to its files: `s3auth doctor` reports the end of every session
(`sessions/not-before`) when it cannot be read, with its remedy, and a command that fails
on such an object says which object it is and what to do, not to try again."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import SECRET, make_service
from test_cli import Run

from s3auth_asgi import S3AuthService
from s3auth_asgi.cli import failures
from s3auth_asgi.keys.stored import KeyStore
from s3auth_asgi.models import User
from s3auth_asgi.problems import render
from s3auth_asgi.storage import CorruptObjectError, ObjectStore, keys

PASSWORD = "Correct-Horse-42x"
NOT_BEFORE = (
    "[FAIL] corrupt_not_before sessions/not-before: the end of every session cannot be "
    "read: every process's revocation sync fails on it, and so does `s3auth cleanup`; "
    "`s3auth sessions end-all` replaces it, ending every session opened before now "
    "(deleting it instead lifts the ending it held); no repair is safe"
)


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The directory of the `file://` store the commands are pointed at."""
    root = tmp_path / "store"
    monkeypatch.setenv("S3AUTH_STORE_URL", f"file://{root}")
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    return root


def run(coroutine: Any) -> Any:
    return anyio.run(lambda: coroutine, backend="asyncio")


def service_with_alice(root: Path) -> tuple[S3AuthService, str]:
    """A service over the store, with one user, who logged in after every session was
    ended once."""
    service = make_service(f"file://{root}", store=ObjectStore.from_url(f"file://{root}"))

    async def setup() -> str:
        alice = await service.create_user("alice", "alice@example.com", PASSWORD)
        await service.end_all_sessions()
        await service.create_token_pair(alice)
        return alice.id

    return service, run(setup())


def doctor(store: ObjectStore, *options: str) -> Run:
    store.reset_counts()
    return Run("doctor", *options, open_store=lambda url: store)


def test_the_doctor_reports_an_end_of_every_session_that_cannot_be_read(root: Path) -> None:
    service, _ = service_with_alice(root)
    store = service.store
    assert isinstance(store, ObjectStore)
    whole = doctor(store)
    assert whole.code == failures.OK, whole
    # Alice's record and 3 entries, the 3 entries (too young to read the user each names)
    # and the end of every session.
    assert whole.out.splitlines() == [
        "checked 1 user(s) and 3 index entries: no problem found "
        "(4 list page(s), 8 read(s), 0 write(s))"
    ]
    assert dict(store.requests) == {"list": 4, "get": 1 + 3 + 3 + 1}

    (root / keys.SESSIONS_NOT_BEFORE).write_bytes(b'{"not_before_ms": 17')  # cut short
    checked = doctor(store)
    assert checked.code == failures.REFUSED, checked
    assert checked.out.splitlines() == [
        NOT_BEFORE,
        "checked 1 user(s) and 3 index entries: 1 problem(s) "
        "(4 list page(s), 8 read(s), 0 write(s))",
    ]
    assert checked.err == ""

    listed = json.loads(doctor(store, "--json").out)
    assert [(i["kind"], i["key"], i["user_id"], i["repair"]) for i in listed] == [
        ("corrupt_not_before", keys.SESSIONS_NOT_BEFORE, None, None)
    ]
    # A repair would end every session: the operator's call, not the doctor's.
    repaired = doctor(store, "--repair")
    assert repaired.code == failures.REFUSED, repaired
    assert repaired.out.splitlines()[0] == NOT_BEFORE
    assert store.requests["put"] == 0
    assert (root / keys.SESSIONS_NOT_BEFORE).read_bytes() == b'{"not_before_ms": 17'

    # The remedy it names mends it.
    ended = Run("sessions", "end-all", "--yes", open_store=lambda url: store)
    assert ended.code == failures.OK, ended
    again = doctor(store)
    assert again.code == failures.OK, again
    assert "no problem found" in again.out


def failure_line(result: Run) -> str:
    """The one line a failed command printed on stderr."""
    assert "Traceback" not in result.err, result
    lines = result.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("s3auth: "), result
    return lines[0]


def test_a_command_names_the_object_it_cannot_read_and_sends_to_the_doctor(root: Path) -> None:
    service_with_alice(root)
    (root / keys.SESSIONS_NOT_BEFORE).write_bytes(b"")
    result = Run("cleanup")
    assert result.code == failures.UNAVAILABLE, result
    line = failure_line(result)
    assert line.startswith(
        "s3auth: the stored object sessions/not-before cannot be read (Input data was truncated"
    ), result
    assert line.endswith(
        "): it reads the same at every try; `s3auth doctor` reports it, with what mends it"
    ), result
    assert "try again" not in line, result


def test_an_object_the_doctor_does_not_read_is_named_with_its_own_remedy(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3AUTH_ALGORITHM", "ES256")
    run(KeyStore(ObjectStore.from_url(f"file://{root}")).read_or_create("ES256", time.time()))
    assert Run("keys", "list").code == failures.OK
    (root / keys.SIGNING_KEYS).write_bytes(b"{")
    result = Run("keys", "list")
    assert result.code == failures.UNAVAILABLE, result
    line = failure_line(result)
    assert line.startswith(
        "s3auth: the stored object keys/signing.json cannot be read (Input data was truncated"
    ), result
    assert line.endswith(
        "): it reads the same at every try; restore it from a backup (`s3auth doctor` reads "
        "user records, the name index and the end of every session, not this)"
    ), result


def test_the_http_answer_still_names_no_key(root: Path) -> None:
    """The key is the operator's: a client's problem+json for the same failure is as it was."""
    service, alice = service_with_alice(root)
    (root / keys.user(alice)).write_bytes(b"")
    with pytest.raises(CorruptObjectError) as info:
        run(service.store.get(keys.user(alice), User))
    assert info.value.key == keys.user(alice)
    status, _, body = render(info.value)
    assert (status, json.loads(body)) == (
        503,
        {"title": "A stored object could not be read", "status": 503, "code": "corrupt_object"},
    )
