"""What the `s3auth` command reads on standard input: a key for `keys generate --public`,
a password for `--password-stdin`. Input that is not UTF-8 text is a usage error naming
it, whatever the locale (those runs are subprocesses, so that the interpreter decodes
standard input as it does for an operator); a password line is read only so far."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import SECRET
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from test_cli import Run
from test_cli_failures import TIMEOUT, Result, assert_failure, command, environment

from s3auth_asgi import cli
from s3auth_asgi.cli import failures, users

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


# A password line without end -------------------------------------------------------------


class Endless(io.RawIOBase):
    """Standard input that never ends (`< /dev/zero`), counting what is read of it."""

    def __init__(self, byte: bytes = b"\0") -> None:
        self.byte, self.read_bytes = byte, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = len(buffer)
        buffer[:size] = self.byte * size
        self.read_bytes += size
        if self.read_bytes > 1 << 20:  # what no bounded read gets to
            raise AssertionError("standard input read without bound")
        return size


@pytest.mark.parametrize("command_line", [
    ["user", "create", "alice", "--email", "a@example.com", "--password-stdin"],
    ["user", "set-password", "alice", "--password-stdin"],
])  # fmt: skip
def test_a_password_line_without_end_is_refused_after_a_bounded_read(
    command_line: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3AUTH_STORE_URL", f"file://{tmp_path / 'store'}")
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    monkeypatch.setenv("S3AUTH_PASSWORD_MAX_LENGTH", "64")
    for byte in (b"\0", b"a"):
        endless = Endless(byte)
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(endless)))
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(command_line, stdout=out, stderr=err)
        assert (code, out.getvalue()) == (failures.USAGE, ""), err.getvalue()
        limit = 64 + users.PASSWORD_LINE_MARGIN
        assert err.getvalue() == (
            f"s3auth: --password-stdin: the password line is longer than {limit} characters\n"
        )
        assert endless.read_bytes <= 4 * limit + io.DEFAULT_BUFFER_SIZE


def test_a_password_line_of_the_longest_password_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3AUTH_STORE_URL", f"file://{tmp_path / 'store'}")
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    monkeypatch.setenv("S3AUTH_ARGON2_MEMORY_KIB", "1024")
    monkeypatch.setenv("S3AUTH_ARGON2_TIME_COST", "1")
    monkeypatch.setenv("S3AUTH_PASSWORD_MAX_LENGTH", "64")
    longest = "Pässwörd-1" + "€" * 54  # 64 characters, 174 bytes
    made = Run("user", "create", "alice", "--email", "a@example.com", "--password-stdin",
               stdin=f"{longest}\r\n")  # fmt: skip
    assert made.code == 0, made
    over = Run("user", "set-password", "alice", "--password-stdin", stdin=f"{longest}x\n")
    assert over.code == failures.USAGE and "at most 64 characters" in over.err, over


def test_dev_zero_as_a_password_is_refused(tmp_path: Path) -> None:
    env = environment(S3AUTH_STORE_URL=f"file://{tmp_path / 'store'}")
    with Path("/dev/zero").open("rb") as zeros:
        done = subprocess.run(
            command(["user", "create", "alice", "--email", "a@example.com", "--password-stdin"]),
            env=env, stdin=zeros, capture_output=True, text=True, timeout=TIMEOUT, check=False,
        )  # fmt: skip
    result = Result(done.returncode, done.stdout, done.stderr)
    assert_failure(result, failures.USAGE, "the password line is longer than 144 characters")


def test_a_password_line_over_the_limit_is_refused_by_its_length_whatever_its_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3AUTH_STORE_URL", f"file://{tmp_path / 'store'}")
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    monkeypatch.setenv("S3AUTH_PASSWORD_MAX_LENGTH", "64")
    limit = 64 + users.PASSWORD_LINE_MARGIN
    argv = ("user", "create", "alice", "--email", "a@example.com", "--password-stdin")
    # One character over, in ASCII: far fewer bytes than the read takes in.
    over = Run(*argv, stdin="a" * (limit + 1) + "\n")
    assert (over.code, over.out) == (failures.USAGE, ""), over
    assert over.err == (
        f"s3auth: --password-stdin: the password line is longer than {limit} characters\n"
    )
    # At the limit the line is the password's, judged by the policy.
    at = Run(*argv, stdin="a" * limit + "\n")
    assert at.code == failures.USAGE and "at most 64 characters" in at.err, at


def test_an_invalid_email_is_said_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3AUTH_STORE_URL", f"file://{tmp_path / 'store'}")
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    refused = Run(
        "user", "create", "alice", "--email", "no-at-sign", "--password-stdin",
        stdin="Correct horse 42\n",
    )  # fmt: skip
    assert refused.code == failures.USAGE, refused
    assert refused.err == (
        "s3auth: The email address is not valid: An email address must have an @-sign.\n"
    )
