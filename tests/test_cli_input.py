"""What the `s3auth` command reads on standard input: a key for `keys generate --public`,
a password for `--password-stdin`. Input that is not UTF-8 text is a usage error naming
it, whatever the locale; the runs are subprocesses so that the interpreter's own decoding
of standard input is the one an operator's shell gives it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from test_cli_failures import TIMEOUT, Result, assert_failure, command, environment

from s3auth_asgi.cli import failures

PASSWORD = "Secret123!"
LOCALES = {
    # The interpreter decodes stdin strictly as UTF-8 ...
    "strict": {"PYTHONIOENCODING": "utf-8"},
    # ... or, in the C.UTF-8 locale, with surrogateescape: bytes that are not UTF-8 turn
    # into characters no text has.
    "c.utf-8": {"LC_ALL": "C.UTF-8"},
}


def s3auth_bytes(*argv: str, env: dict[str, str], stdin: bytes) -> Result:
    done = subprocess.run(
        command(argv), env=env, input=stdin, capture_output=True, timeout=TIMEOUT, check=False
    )
    return Result(done.returncode, done.stdout.decode(), done.stderr.decode())


def der_key() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.mark.parametrize("locale", LOCALES)
def test_a_der_key_on_stdin_is_a_usage_error_saying_how_to_convert_it(locale: str) -> None:
    env = environment(**LOCALES[locale])
    result = s3auth_bytes("keys", "generate", "--public", env=env, stdin=der_key())
    assert_failure(result, failures.USAGE, "standard input is not UTF-8 text", "PEM", "openssl")
    assert result.out == ""


@pytest.mark.parametrize("locale", LOCALES)
def test_a_password_that_is_not_utf8_is_a_usage_error(locale: str, tmp_path: Path) -> None:
    env = environment(S3AUTH_STORE_URL=f"file://{tmp_path / 'store'}", **LOCALES[locale])
    latin1 = "Sécret-Pass-123\n".encode("latin-1")
    for argv in (
        ["user", "create", "alice", "--email", "a@example.com", "--password-stdin"],
        ["user", "set-password", "alice", "--password-stdin"],
    ):
        result = s3auth_bytes(*argv, env=env, stdin=latin1)
        assert_failure(result, failures.USAGE, "standard input is not UTF-8 text")
        assert "control characters" not in result.err


def test_a_utf8_password_is_read_as_such_in_the_c_locale(tmp_path: Path) -> None:
    env = environment(S3AUTH_STORE_URL=f"file://{tmp_path / 'store'}", LC_ALL="C")
    password = "Sécret-Pass-123"
    made = s3auth_bytes("user", "create", "alice", "--email", "a@example.com",
                        "--password-stdin", env=env, stdin=f"{password}\n".encode())  # fmt: skip
    assert made.code == 0, made
    again = s3auth_bytes("user", "set-password", "alice", "--password-stdin", env=env,
                         stdin=password.encode())  # fmt: skip
    assert again.code == 0, again


def test_a_decoding_error_anywhere_is_input_not_a_bug() -> None:
    error = UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
    code, message = failures.classify(error, None)
    assert code == failures.USAGE
    assert message.startswith("input that is not UTF-8 text"), message
