"""S3AUTH_SECRET_KEY takes a comma, which the comma-separated S3AUTH_SECRET_KEY_FALLBACKS
splits at: moved there as it is, such a key becomes two fallbacks, neither of them the key,
and everything it made stops verifying or opening without a word. The fallbacks are also
read as a JSON array of strings, which keeps it whole, and a secret key with a comma is
warned of, by the app when it is made and by `s3auth check`, saying so."""

from __future__ import annotations

import logging
import string
from pathlib import Path

import pytest
from conftest import FAST_HASHING
from support import Clock
from test_cli import Run, check_warnings

from s3auth_asgi import S3AuthService, S3AuthSettings
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.cli.check import configuration_warnings
from s3auth_asgi.errors import ConfigurationError, InvalidTokenError
from s3auth_asgi.settings import new_secret_key
from s3auth_asgi.tokens import TokenCodec

OLD = f"{new_secret_key()[:40]},{new_secret_key()[:40]}"
"""A secret key with a comma, as an operator may have written one."""
HALVES = OLD.split(",")
NEW, OTHER = new_secret_key(), new_secret_key()
COMMA_WARNING = (
    "S3AUTH_SECRET_KEY contains a comma: S3AUTH_SECRET_KEY_FALLBACKS splits its "
    "comma-separated form at commas, so once this key is replaced it can be kept as a "
    "fallback only in the JSON form, S3AUTH_SECRET_KEY_FALLBACKS='[\"...\"]'"
)


def from_env(fallbacks: str, secret_key: str = NEW) -> S3AuthSettings:
    env = {"S3AUTH_SECRET_KEY": secret_key, "S3AUTH_SECRET_KEY_FALLBACKS": fallbacks}
    return S3AuthSettings.from_env(env)


def test_a_key_with_a_comma_is_one_fallback_in_the_json_form() -> None:
    assert from_env(f'["{OLD}"]').secret_key_fallbacks == [OLD]
    # Spaces around the array, and around its items, are JSON's own.
    assert from_env(f' \n[ "{OLD}" ,\t"{OTHER}" ] ').secret_key_fallbacks == [OLD, OTHER]
    assert from_env("[]").secret_key_fallbacks == []
    # The comma-separated form is read as it was: a key with a comma is split.
    assert from_env(f"{OLD}, {OTHER}").secret_key_fallbacks == [*HALVES, OTHER]


def test_what_the_key_with_a_comma_made_verifies_with_its_json_fallback() -> None:
    clock = Clock()
    token, _ = TokenCodec(S3AuthSettings(secret_key=OLD), clock=clock).issue_access_token(
        user_id="u1", username="alice", session_id="s1", is_admin=False, scopes=[]
    )
    assert TokenCodec(from_env(f'["{OLD}"]'), clock=clock).verify_access_token(token)["sub"] == "u1"
    # What the comma-separated form makes of it verifies nothing, the loss this averts.
    with pytest.raises(InvalidTokenError):
        TokenCodec(from_env(OLD), clock=clock).verify_access_token(token)


def test_a_json_item_is_taken_as_written_and_held_to_the_secret_key_rules() -> None:
    with pytest.raises(ConfigurationError) as raised:
        from_env(f'["{OLD} "]')
    assert "S3AUTH_SECRET_KEY_FALLBACKS (item 1) begins or ends with whitespace" in str(
        raised.value
    )
    with pytest.raises(ConfigurationError, match=r"\(item 2\) is empty"):
        from_env(f'["{OLD}", ""]')
    with pytest.raises(ConfigurationError, match=r"\(item 2\) repeats item 1"):
        from_env(f'["{OLD}", "{OLD}"]')


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (f'["{OLD}"', "is not valid JSON"),
        (f'["{OLD}"] "{OTHER}"', "is not valid JSON"),
        (f"[{OLD}]", "is not valid JSON"),
        (f"['{OLD}']", "is not valid JSON"),
        (f'["{OLD}", 1]', "item 2 is not a string"),
        (f'[["{OLD}"]]', "item 1 is not a string"),
        (f'["{OLD}", null]', "item 2 is not a string"),
    ],
    ids=["unclosed", "trailing", "unquoted", "single-quoted", "number", "array", "null"],
)
def test_a_json_form_that_is_no_array_of_strings_is_refused_unshown(text: str, said: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        from_env(text)
    message = str(raised.value)
    assert message.startswith("S3AUTH_SECRET_KEY_FALLBACKS begins with '[', so it must be a JSON")
    assert said in message
    assert all(part not in message for part in (*HALVES, OTHER, NEW))


def test_a_secret_key_with_a_comma_is_warned_of(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    comma = S3AuthSettings(secret_key=OLD, **FAST_HASHING)
    assert [w for w in configuration_warnings(comma) if "comma" in w] == [COMMA_WARNING]
    assert not [w for w in configuration_warnings(S3AuthSettings(secret_key=NEW)) if "comma" in w]
    with caplog.at_level(logging.WARNING, logger="s3auth_asgi"):
        create_auth_app(S3AuthService(S3AuthSettings(secret_key=OLD)))
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        COMMA_WARNING
    ]
    assert all(part not in caplog.text for part in HALVES)
    assert check_warnings(tmp_path, monkeypatch, S3AUTH_SECRET_KEY=OLD) == [COMMA_WARNING]


def test_gen_secret_never_makes_a_comma() -> None:
    alphabet = set(string.ascii_letters + string.digits + "-_")
    run = Run("gen-secret")
    assert run.code == 0 and "," not in run.out
    assert set(run.out.strip()) <= alphabet
    assert set().union(*(new_secret_key() for _ in range(2000))) <= alphabet
    # So what it made is always kept whole in the comma-separated form.
    made = run.out.strip()
    assert from_env(f"{made},{OTHER}").secret_key_fallbacks == [made, OTHER]
