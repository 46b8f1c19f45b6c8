"""A misspelt setting is refused, not ignored: an `S3AUTH_*` variable that names no setting
(with the closest name as a hint), and a keyword argument of `from_env` that names no field.
The variables read elsewhere (the command's debug switch, the benchmark's and the tests' own)
are listed once, and every `S3AUTH_*` name the project mentions is one or the other.

This file spells names wrong on purpose; the scan of the project leaves it out."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SECRET
from test_cli import Run

from s3auth_asgi import ConfigurationError, S3AuthSettings
from s3auth_asgi.cli import failures
from s3auth_asgi.settings import env_name, new_secret_key
from s3auth_asgi.settings_env import OTHER_VARIABLES, known_variables

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ("s3auth_asgi", "tests", "docs", "benchmarks", ".ci")
TOP_FILES = ("README.md", "Makefile", "pyproject.toml", "mkdocs.yml", "docs_hooks.py")


def project_files() -> Iterator[Path]:
    for name in TOP_FILES:
        yield ROOT / name
    for directory in PROJECT:
        for path in sorted((ROOT / directory).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                yield path


@pytest.mark.parametrize(
    ("misspelt", "meant"),
    [
        ("S3AUTH_KEY_ENCRYPTON_KEY", "S3AUTH_KEY_ENCRYPTION_KEY"),
        ("S3AUTH_REQUIRE_VERIFIED_EMAILS", "S3AUTH_REQUIRE_VERIFIED_EMAIL"),
        ("S3AUTH_ACCESS_TOKEN_EXPIRE_MINS", "S3AUTH_ACCESS_TOKEN_EXPIRE_MINUTES"),
        ("S3AUTH_TRUSTED_PROXY", "S3AUTH_TRUSTED_PROXIES"),
        ("s3auth_secret_key", "S3AUTH_SECRET_KEY"),
        ("S3Auth_Store_Url", "S3AUTH_STORE_URL"),
    ],
)
def test_a_misspelt_variable_is_refused_with_the_name_meant(misspelt: str, meant: str) -> None:
    value = new_secret_key()
    with pytest.raises(ConfigurationError) as info:
        S3AuthSettings.from_env({"S3AUTH_SECRET_KEY": SECRET, misspelt: value})
    message = str(info.value)
    assert f"{misspelt} is not a setting (did you mean {meant}?)" in message, message
    assert value not in message  # a misspelt secret stays secret


def test_every_unknown_variable_is_named_at_once() -> None:
    with pytest.raises(ConfigurationError) as info:
        S3AuthSettings.from_env(
            {"S3AUTH_SECRET_KEY": SECRET, "S3AUTH_TRUSTED_PROXY": "10.0.0.1", "S3AUTH_XYZZY": "1"}
        )
    message = str(info.value)
    assert "S3AUTH_TRUSTED_PROXY is not a setting (did you mean S3AUTH_TRUSTED_PROXIES?)" in (
        message
    )
    assert "S3AUTH_XYZZY is not a setting: every S3AUTH_* variable must" in message, message


def test_the_variables_read_elsewhere_are_allowed() -> None:
    assert {"S3AUTH_DEBUG", "S3AUTH_BENCH_VARIANT", "S3AUTH_UPDATE_SCREENSHOT"} == set(
        OTHER_VARIABLES
    )
    others = dict.fromkeys(OTHER_VARIABLES, "1")
    assert S3AuthSettings.from_env({"S3AUTH_SECRET_KEY": SECRET, **others, "PATH": "/bin"})


def test_the_known_variables_are_the_fields_and_the_others() -> None:
    fields = {env_name(field) for field in S3AuthSettings.__struct_fields__}
    assert known_variables(S3AuthSettings.__struct_fields__) == fields | set(OTHER_VARIABLES)


def test_every_variable_the_project_names_is_known() -> None:
    """Package, tests, docs, benchmarks, Makefile, CI: a variable read somewhere but not
    allowed would stop every process that has it set."""
    skipped = {ROOT / "CHANGELOG.md", Path(__file__).resolve()}  # history; typos on purpose
    named: dict[str, str] = {}
    for path in project_files():
        if path in skipped:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        # A refusal shown as an example names a misspelt variable on purpose.
        text = re.sub(r"S3AUTH_[A-Z0-9_]+ is not a setting", "", text)
        for variable in re.findall(r"S3AUTH_[A-Z0-9_]+", text):
            if not variable.endswith("_"):  # a prefix (`S3AUTH_SMTP_*`), not a name
                named.setdefault(variable, str(path.relative_to(ROOT)))
    known = known_variables(S3AuthSettings.__struct_fields__)
    assert {variable: where for variable, where in named.items() if variable not in known} == {}
    assert len(named) > 50


def test_a_misspelt_keyword_argument_is_refused_like_the_constructors() -> None:
    with pytest.raises(TypeError, match="acess_token_expire_minutes"):
        S3AuthSettings(secret_key=SECRET, acess_token_expire_minutes=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError) as info:
        S3AuthSettings.from_env({"S3AUTH_SECRET_KEY": SECRET}, acess_token_expire_minutes=1)
    assert "unexpected keyword argument 'acess_token_expire_minutes'" in str(info.value)
    assert "did you mean 'access_token_expire_minutes'?" in str(info.value)


def test_check_reports_a_misspelt_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    monkeypatch.setenv("S3AUTH_REQUIRE_VERIFIED_EMAILS", "true")
    run = Run("check")
    assert run.code == failures.CONFIGURATION, run
    assert run.out.startswith("[FAIL] configuration: S3AUTH_REQUIRE_VERIFIED_EMAILS is not a")
    assert "did you mean S3AUTH_REQUIRE_VERIFIED_EMAIL?" in run.out
