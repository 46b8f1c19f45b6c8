"""`s3auth user import`: JSON lines in, a result line per line and a summary out; a failing
line does not stop the others, a failing store stops the import, and the same file run
again imports only what is missing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import SECRET, make_service
from support import StoreWrapper
from test_cli import Run
from test_user_import import ARGON2, BCRYPT, PASSWORD

from s3auth_asgi import StoreUnavailableError
from s3auth_asgi.cli import failures
from s3auth_asgi.cli.context import run_async
from s3auth_asgi.storage import ObjectStore, keys


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ObjectStore:
    url = f"file://{tmp_path / 'store'}"
    monkeypatch.setenv("S3AUTH_STORE_URL", url)
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    monkeypatch.setenv("S3AUTH_ARGON2_MEMORY_KIB", "1024")
    monkeypatch.setenv("S3AUTH_ARGON2_TIME_COST", "1")
    return ObjectStore.from_url(url)


def line(name: str, hashed: str = BCRYPT, **fields: Any) -> str:
    return json.dumps(
        {"username": name, "email": f"{name}@example.com", "password_hash": hashed, **fields}
    )


LINES = [
    line("alice", full_name="Alice", created_at="2024-05-01T12:00:00+00:00"),
    "{not json",
    line("bob", ARGON2, is_admin=True, created_at=1_600_000_000),
    "",  # blank: skipped, but counted in the numbering
    line("a b"),
    line("carol", "plain-text"),
    line("ALICE"),  # taken by line 1
    json.dumps({"username": "dave", "email": "dave@example.com"}),
    line("erin", pasword_hash="x"),
]


def logs_in(store: ObjectStore, name: str) -> bool:
    service = make_service(store=store)
    return run_async(lambda: service.authenticate_user(name, PASSWORD)) is not None


def test_each_line_is_reported_and_a_failing_one_stops_nothing(
    store: ObjectStore, tmp_path: Path
) -> None:
    source = tmp_path / "users.jsonl"
    source.write_text("\n".join(LINES) + "\n")
    run = Run("user", "import", str(source))
    assert run.code == 1, run
    lines = run.out.splitlines()
    assert lines[0].startswith("line 1: imported alice id=")
    assert lines[1].startswith("line 2: failed (invalid_json): JSON is malformed")
    assert lines[2].startswith("line 3: imported bob id=")
    assert lines[3].startswith("line 5: a b failed (invalid_username): ")
    assert lines[4].startswith("line 6: carol failed (validation_error): password_hash is in")
    assert "argon2id" in lines[4] and "$2b$" in lines[4]
    assert lines[5] == "line 7: ALICE failed (username_taken): The username is already taken"
    assert (
        lines[6] == "line 8: failed (invalid_line): Object missing required field `password_hash`"
    )
    assert lines[7].startswith("line 9: failed (invalid_line): Object contains unknown field")
    assert lines[8:] == ["8 line(s): 2 imported, 6 failed"]
    assert run.err == ""
    assert logs_in(store, "alice") and logs_in(store, "bob@example.com")
    service = make_service(store=store)
    alice = run_async(lambda: service.get_user_by_username("alice"))
    bob = run_async(lambda: service.get_user_by_username("bob"))
    assert alice is not None and bob is not None
    assert (alice.full_name, alice.created_at, alice.is_admin) == ("Alice", 1714564800, False)
    assert (bob.created_at, bob.is_admin) == (1_600_000_000, True)
    trail, _ = run_async(lambda: service.audit.page(alice.id))
    assert [(e.event.name, e.event.client) for e in trail] == [("admin_user_create", "cli")]


def test_the_same_file_again_imports_what_is_missing(store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "users.jsonl"
    source.write_text(line("alice") + "\n")
    assert Run("user", "import", str(source)).code == 0
    source.write_text(line("alice") + "\n" + line("bob") + "\n")
    again = Run("user", "import", str(source), "--json")
    assert again.code == 1, again
    results = json.loads(again.out)
    assert [(r["line"], r["outcome"], r["code"]) for r in results] == [
        (1, "failed", "username_taken"),
        (2, "imported", None),
    ]
    assert len(results[1]["id"]) == 32 and results[1]["username"] == "bob"


@pytest.mark.parametrize("argv", [(), ("-",)])
def test_standard_input(store: ObjectStore, argv: tuple[str, ...]) -> None:
    run = Run("user", "import", *argv, stdin=line("alice") + "\r\n" + line("bob"))
    assert run.code == 0, run
    assert run.out.splitlines()[-1] == "2 line(s): 2 imported, 0 failed"


def test_store_requests_per_imported_user(store: ObjectStore) -> None:
    counted = store
    assert Run("user", "import", stdin=line("first"), open_store=lambda _: counted).code == 0
    counted.reset_counts()
    run = Run(
        "user", "import", stdin=line("alice") + "\n" + line("bob"), open_store=lambda _: counted
    )
    assert run.code == 0, run
    # Per user: the 4 creates of a registration and its audit event; the store's check
    # of conditional writes is done once per run.
    assert dict(counted.requests) == {"put": 10}


class FailsFrom(StoreWrapper):
    """Every create fails from the `at`-th on."""

    def __init__(self, inner: ObjectStore, at: int) -> None:
        super().__init__(inner)
        self.creates, self.at = 0, at

    async def create(self, key: str, value: Any) -> str:
        self.creates += 1
        if self.creates >= self.at:
            raise StoreUnavailableError("injected fault")
        return await self.inner.create(key, value)


def test_a_store_failing_midway_stops_the_import_and_a_rerun_finishes_it(
    store: ObjectStore,
) -> None:
    text = "\n".join(line(name) for name in ("alice", "bob", "carol")) + "\n"
    failing = FailsFrom(store, at=8)  # alice's 4 creates and her event, then bob's 3rd
    run = Run("user", "import", stdin=text, open_store=lambda _: failing)
    assert run.code == 4, run
    assert run.out.splitlines() == [run.out.splitlines()[0]]
    assert run.out.startswith("line 1: imported alice id=")
    assert "the import stopped at line 2, which may or may not have been imported" in run.err
    users = run_async(lambda: _users(store))
    assert users == ["alice"]
    again = Run("user", "import", stdin=text)
    assert again.code == 1, again
    assert again.out.splitlines()[0].endswith(
        "failed (username_taken): The username is already taken"
    )
    assert again.out.splitlines()[-1] == "3 line(s): 2 imported, 1 failed"
    assert logs_in(store, "bob") and logs_in(store, "carol")


async def _users(store: ObjectStore) -> list[str]:
    service = make_service(store=store)
    return sorted([user.username async for user in service.every_user()])


def test_an_input_file_that_cannot_be_opened_is_a_usage_error(
    store: ObjectStore, tmp_path: Path
) -> None:
    """The operator's mistake, not the store's: exit 2, the file and what the system said,
    no request made."""
    for path, said in (
        (tmp_path / "nowhere.jsonl", "No such file or directory"),
        (tmp_path, "Is a directory"),
    ):
        store.reset_counts()
        run = Run("user", "import", str(path), open_store=lambda _: store)
        assert run.code == failures.USAGE, run
        assert run.err == f"s3auth: cannot read the input file {path}: {said}\n", run
        assert sum(store.requests.values()) == 0
    assert not list((tmp_path / "store").glob(keys.USERS + "*"))


def test_a_hash_above_the_cost_ceiling_fails_its_line_and_writes_nothing(
    store: ObjectStore,
) -> None:
    """Refused with its own code, the limit and what is allowed; the other lines go on,
    and the refused line costs no request."""
    costly = "$2b$20$" + BCRYPT[7:]
    assert Run("user", "import", stdin=line("first"), open_store=lambda _: store).code == 0
    store.reset_counts()
    refused = Run("user", "import", stdin=line("bob", costly), open_store=lambda _: store)
    assert refused.code == 1, refused
    assert sum(store.requests.values()) == 0
    text = "\n".join([line("alice"), line("bob", costly), line("carol", ARGON2)]) + "\n"
    run = Run("user", "import", stdin=text)
    assert run.code == 1, run
    lines = run.out.splitlines()
    assert lines[0].startswith("line 1: imported alice id=")
    assert lines[1] == (
        "line 2: bob failed (hash_too_costly): password_hash costs more to verify than this "
        "service allows: its bcrypt cost 20 is above 14, the most verified; import no hash "
        "above it: create the account (s3auth user create) and have its password reset"
    )
    assert lines[2].startswith("line 3: imported carol id=")
    assert lines[3:] == ["3 line(s): 2 imported, 1 failed"]
    assert not logs_in(store, "bob") and logs_in(store, "carol")
    results = json.loads(Run("user", "import", "--json", stdin=line("dave", costly)).out)
    assert [(r["line"], r["code"]) for r in results] == [(1, "hash_too_costly")]
