"""The recipe of docs/coming-from-s3verless.md ("Moving your users"), run as written on the
user objects s3verless 0.1.1 itself stored (tests/data/s3verless_users.json, made by
make_s3verless_users.py beside it), on disk and on moto's S3: its lines imported by
`s3auth user import`, every user logs in with its s3verless password, keeps its standing,
and is upgraded to argon2id."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import runpy
import sys
from pathlib import Path
from typing import Any

import obstore
import pytest
from conftest import SECRET, make_bucket, make_service
from test_cli import Run
from test_docs_snippets import ROOT, parse_blocks

from s3auth_asgi.cli.context import run_async
from s3auth_asgi.storage import ObjectStore

MADE = json.loads((ROOT / "tests" / "data" / "s3verless_users.json").read_text("utf-8"))
PASSWORDS: dict[str, str] = MADE["passwords"]
USERS = f"{MADE['base_path']}s3users/"


def recipe(tmp_path: Path) -> Path:
    """The documented script, as a file."""
    document = ROOT / "docs" / "coming-from-s3verless.md"
    blocks = parse_blocks(document.read_text("utf-8"), document.name)
    (block,) = [block for block in blocks if "def import_lines" in block.code]
    script = tmp_path / "s3verless_users.py"
    script.write_text(block.code)
    return script


def run_recipe(script: Path, url: str) -> str:
    out = io.StringIO()
    saved = sys.argv
    sys.argv = [str(script), url]
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = saved
    return out.getvalue()


def import_and_check(lines: str, store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3AUTH_STORE_URL", store_url)
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    run = Run("user", "import", stdin=lines)
    assert run.code == 0, run
    assert run.out.splitlines()[-1] == "4 line(s): 4 imported, 0 failed"
    service = make_service(store=ObjectStore.from_url(store_url))
    for name, password in PASSWORDS.items():
        found: Any = run_async(lambda name=name: service.get_user_by_username(name))
        assert found is not None and found.hashed_password.startswith("$2b$04$")
        logged_in = run_async(lambda name=name, pw=password: service.authenticate_user(name, pw))
        assert (logged_in is not None) == (name != "olga"), name  # olga was disabled
        if logged_in is not None:
            upgraded: Any = run_async(lambda user_id=found.id: service.get_user_by_id(user_id))
            assert upgraded.hashed_password.startswith("$argon2id$"), name
        assert found.is_admin == (name == "root"), name
    mary: Any = run_async(lambda: service.get_user_by_email("mary.major@example.com"))
    assert mary is not None and mary.username == "mary"
    john: Any = run_async(lambda: service.get_user_by_username("john"))
    made = next(json.loads(v) for v in MADE["objects"].values() if '"john"' in v)
    created = int(dt.datetime.fromisoformat(made["created_at"]).timestamp())
    assert (john.full_name, john.created_at) == ("John Doe", created)


def test_the_recipe_on_a_copy_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = tmp_path / "bucket"
    for key, body in MADE["objects"].items():
        (bucket / key).parent.mkdir(parents=True, exist_ok=True)
        (bucket / key).write_text(body)
    lines = run_recipe(recipe(tmp_path), f"file://{bucket / USERS}")
    assert len(lines.splitlines()) == 4
    import_and_check(lines, f"file://{tmp_path / 'store'}", monkeypatch)
    again = Run("user", "import", stdin=lines)  # idempotent by name
    assert again.code == 1 and again.out.splitlines()[-1] == "4 line(s): 0 imported, 4 failed"


def test_the_recipe_on_s3(
    moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = make_bucket(moto_endpoint)
    s3 = obstore.store.from_url(f"s3://{bucket}")
    for key, body in MADE["objects"].items():
        obstore.put(s3, key, body.encode())
    lines = run_recipe(recipe(tmp_path), f"s3://{bucket}/{USERS}")
    import_and_check(lines, f"s3://{bucket}/auth", monkeypatch)
