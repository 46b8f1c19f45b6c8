"""An imported user keeps the profile its line gives: validated against the application's
profile fields by the function registration and `PATCH /me` validate with
(`ProfileFields.clean`), its defaults filled in; a bad one refuses the user with that
function's error and writes nothing. `s3auth user import` takes the fields with
`--profile-fields MODULE:NAME`; without them a line with a profile fails, saying so."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SECRET, make_settings
from test_cli import Run
from test_user_import import BCRYPT

from s3auth_asgi import S3AuthService, S3ValidationError
from s3auth_asgi.cli.context import run_async
from s3auth_asgi.models import User
from s3auth_asgi.storage import ObjectStore, keys

PROFILE = {
    "type": "object",
    "properties": {
        "company": {"type": "string", "maxLength": 20},
        "seats": {"type": "integer", "minimum": 1, "default": 1},
    },
    "required": ["company"],
}
BAD_PROFILES: list[Any] = [
    {"company": 5},
    {"company": "x" * 21},
    {"seats": 2},  # company is required
    {"company": "Acme", "plan": "gold"},  # undeclared
    ["company"],
]


def service_on(store: ObjectStore, profile: Any = PROFILE) -> S3AuthService:
    return S3AuthService(make_settings(), store=store, profile_fields=profile)


def stored(store: ObjectStore, user_id: str) -> User:
    found = run_async(lambda: store.get(keys.user(user_id), User))
    assert found is not None
    return found.value


def test_an_imported_profile_is_validated_as_a_registration_validates_it() -> None:
    store = ObjectStore.from_url("memory://")
    service = service_on(store)
    run_async(lambda: service.import_user("first", "first@example.com", BCRYPT))
    store.reset_counts()
    user = run_async(
        lambda: service.import_user("alice", "a@example.com", BCRYPT, profile={"company": "Acme"})
    )
    assert dict(store.requests) == {"put": 4}
    assert stored(store, user.id).profile == {"company": "Acme", "seats": 1}
    # Without one, the user has none, as before.
    plain = run_async(lambda: service.import_user("bob", "b@example.com", BCRYPT))
    assert stored(store, plain.id).profile is None
    for bad in BAD_PROFILES:
        store.reset_counts()
        with pytest.raises(S3ValidationError) as imported:
            run_async(
                lambda bad=bad: service.import_user("carol", "c@example.com", BCRYPT, profile=bad)
            )
        assert sum(store.requests.values()) == 0, bad
        with pytest.raises(S3ValidationError) as registered:
            run_async(
                lambda bad=bad: service.create_user(
                    "carol", "c@example.com", "a long enough passphrase", profile=bad
                )
            )
        assert imported.value.detail == registered.value.detail, bad
    assert run_async(lambda: service.get_user_by_username("carol")) is None


def test_without_declared_fields_a_profile_is_refused() -> None:
    store = ObjectStore.from_url("memory://")
    service = service_on(store, None)
    with pytest.raises(S3ValidationError, match="declares no profile fields"):
        run_async(lambda: service.import_user("alice", "a@example.com", BCRYPT, profile={"a": 1}))
    assert sum(store.requests.values()) == 0


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ObjectStore:
    url = f"file://{tmp_path / 'store'}"
    monkeypatch.setenv("S3AUTH_STORE_URL", url)
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    monkeypatch.setenv("S3AUTH_ARGON2_MEMORY_KIB", "1024")
    monkeypatch.setenv("S3AUTH_ARGON2_TIME_COST", "1")
    return ObjectStore.from_url(url)


@pytest.fixture
def app_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module of the application's, in the directory the command runs in."""
    (tmp_path / "import_profile_app.py").write_text(
        "from s3auth_asgi import S3AuthService, S3AuthSettings\n"
        f"PROFILE = {PROFILE!r}\n"
        "auth = S3AuthService(S3AuthSettings.from_env(), profile_fields=PROFILE)\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    sys.modules.pop("import_profile_app", None)
    yield "import_profile_app"
    sys.modules.pop("import_profile_app", None)


def line(name: str, **fields: Any) -> str:
    given = {"username": name, "email": f"{name}@example.com", "password_hash": BCRYPT}
    return json.dumps({**given, **fields})


@pytest.mark.parametrize("name", ["PROFILE", "auth"])
def test_the_command_imports_profiles_with_the_declared_fields(
    store: ObjectStore, app_module: str, name: str
) -> None:
    lines = [line("alice", profile={"company": "Acme"}), line("bob", profile={"company": 5})]
    run = Run(
        "user",
        "import",
        "--profile-fields",
        f"{app_module}:{name}",
        stdin="\n".join(lines),
        open_store=lambda _: store,
    )
    assert run.code == 1, run
    imported, failed, summary = run.out.splitlines()
    assert imported.startswith("line 1: imported alice id=")
    assert failed == (
        "line 2: bob failed (validation_error): profile: Expected `str`, got `int` - at `$.company`"
    )
    assert summary == "2 line(s): 1 imported, 1 failed"
    # The imported user (4 writes) and its audit event (1); nothing for the refused one.
    assert dict(store.requests) == {"put": 5}
    alice = stored(store, imported.rsplit("id=", 1)[1])
    assert alice.profile == {"company": "Acme", "seats": 1}


def test_without_the_option_a_line_with_a_profile_fails_saying_what_to_give(
    store: ObjectStore,
) -> None:
    run = Run("user", "import", stdin=line("alice", profile={"company": "Acme"}))
    assert run.code == 1, run
    assert run.out.splitlines()[0] == (
        "line 1: alice failed (validation_error): profile: this application declares no "
        "profile fields; give them to the import with --profile-fields MODULE:NAME"
    )


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("import_profile_app", "--profile-fields takes MODULE:NAME"),
        ("no_such_module_here:PROFILE", "--profile-fields: cannot import no_such_module_here"),
        ("import_profile_app:MISSING", "--profile-fields: import_profile_app has no MISSING"),
        ("import_profile_app:TEXT", "profile_fields must be a msgspec Struct or a JSON Schema"),
    ],
)
def test_a_declaration_that_cannot_be_had_stops_before_any_request(
    store: ObjectStore, app_module: str, given: str, said: str
) -> None:
    Path("import_profile_app.py").write_text(f"PROFILE = {PROFILE!r}\nTEXT = 'company'\n")
    run = Run(
        "user", "import", "--profile-fields", given, stdin=line("alice"), open_store=lambda _: store
    )
    assert run.code in (2, 3), run
    assert said in run.err and run.out == "", run
    assert sum(store.requests.values()) == 0
