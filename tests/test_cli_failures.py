"""The `s3auth` command's failures, run as the operator runs it: a subprocess, whose exit
code is the one documented for its class of failure (`cli.failures`, docs/cli.md) and whose
stderr is one line saying what failed and what to do, never a traceback (unless --debug).

The unreachable store is S3 on a loopback port nothing listens on; obstore retries for the
package's retry window before giving up (made 1 s there: how long it retries is not what is
tested), and the runs go concurrently. `user list` there used to abort (SIGABRT, exit 134)
2 runs in 3, so it runs five times: an abort that came back would pass them all one time in
243."""

from __future__ import annotations

import json
import os
import pty
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import SECRET

from s3auth_asgi.cli import failures

PASSWORD = "Secret123!"
TIMEOUT = 120
LIST_RUNS = 5


@dataclass
class Result:
    code: int
    out: str
    err: str


def environment(**extra: str) -> dict[str, str]:
    """The parent's environment without S3AUTH_* and AWS_*, plus a secret, cheap hashing
    and `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("S3AUTH_", "AWS_"))}
    env.update(
        S3AUTH_SECRET_KEY=SECRET, S3AUTH_ARGON2_MEMORY_KIB="1024", S3AUTH_ARGON2_TIME_COST="1"
    )
    env.update(extra)
    return env


def command(argv: Sequence[str], retry_window: float | None = None) -> list[str]:
    """`python -m s3auth_asgi.cli argv`; with `retry_window`, its network stores' retry
    window (`storage.client.RETRY_WINDOW`) made that many seconds."""
    if retry_window is None:
        return [sys.executable, "-m", "s3auth_asgi.cli", *argv]
    return [sys.executable, "-c", _WINDOWED.format(seconds=retry_window), *argv]


_WINDOWED = (
    "import datetime, runpy; import s3auth_asgi.storage.client as client; "
    "client.RETRY_WINDOW = datetime.timedelta(seconds={seconds}); "
    "runpy.run_module('s3auth_asgi.cli', run_name='__main__', alter_sys=True)"
)


Job = tuple[Sequence[str], Mapping[str, str], str | None]
"""A command line, its environment and its standard input (None: /dev/null)."""


@dataclass
class Running:
    process: subprocess.Popen[str]
    stdin: str | None = None


def start(
    argv: Sequence[str],
    env: Mapping[str, str],
    stdin: str | None = None,
    retry_window: float | None = None,
) -> Running:
    process = subprocess.Popen(
        command(argv, retry_window), env=dict(env), text=True,
        stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    return Running(process, stdin)


def finish(running: Running) -> Result:
    out, err = running.process.communicate(running.stdin, timeout=TIMEOUT)
    return Result(running.process.returncode, out, err)


def concurrently(*jobs: Job, retry_window: float | None = None) -> list[Result]:
    """Each job in a process of its own, all at once (a start costs most of a second)."""
    started = [start(*job, retry_window=retry_window) for job in jobs]
    return [finish(running) for running in started]


def s3auth(*argv: str, env: Mapping[str, str], stdin: str | None = None) -> Result:
    return finish(start(argv, env, stdin))


def assert_failure(result: Result, code: int, *says: str) -> None:
    """Exit `code`; stderr one line (two at most), no traceback, naming each of `says`."""
    assert result.code == code, result
    assert "Traceback" not in result.err, result
    lines = result.err.splitlines()
    assert 1 <= len(lines) <= 2, result
    assert lines[0].startswith("s3auth: "), result
    for words in says:
        assert words in result.err, (words, result)


def free_port() -> int:
    """A loopback port nothing listens on (bound for a moment, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# The store cannot be reached ----------------------------------------------------------


def s3_environment(port: int) -> dict[str, str]:
    """S3 through obstore's AWS_* variables, at a loopback `port`."""
    return environment(
        S3AUTH_STORE_URL="s3://bucket/auth",
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        AWS_ALLOW_HTTP="true",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
    )


def test_an_unreachable_store_is_exit_4_in_one_line_every_time() -> None:
    env = s3_environment(free_port())
    listings = [start(["user", "list"], env, retry_window=1) for _ in range(LIST_RUNS)]
    cleanup = start(["cleanup"], env, retry_window=1)
    check = start(["check"], env, retry_window=1)
    for process in listings:
        result = finish(process)
        assert_failure(result, failures.UNAVAILABLE, "s3://bucket/auth could not be read")
        assert "Connection refused" in result.err and "S3AUTH_STORE_URL" in result.err
        assert result.out == ""  # not even the table's header
    # cleanup's first request times its clock against the store's, with a write.
    assert_failure(finish(cleanup), failures.UNAVAILABLE, "could not be written", "try again")
    probed = finish(check)
    assert probed.code == failures.UNAVAILABLE, probed
    assert "[FAIL] reachable" in probed.out and "check S3AUTH_STORE_URL" in probed.out


def test_an_interrupted_command_is_exit_130() -> None:
    """Ctrl-C while a request is under way (a server that accepts and never answers)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(TIMEOUT)
        running = start(["user", "list"], s3_environment(listener.getsockname()[1]))
        connection, _ = listener.accept()
        with connection:
            running.process.send_signal(signal.SIGINT)
            result = finish(running)
    assert_failure(result, failures.INTERRUPTED, "interrupted")


@pytest.mark.parametrize("argv", [["gen-secret"], ["user", "list"]])
def test_the_command_ends_its_process_without_finalising_the_interpreter(
    argv: list[str], tmp_path: Path
) -> None:
    """A request the command gave up (Ctrl-C above, a deadline) still runs on obstore's
    threads, and one that reaches for Python once the interpreter is finalised panics: on a
    loaded machine the interrupted command above printed a Rust backtrace under its one
    line, about one run in three. The command's process ends without finalising, once what
    it wrote is flushed; an exit hook, run only by finalisation, shows which it did."""
    hooked = (
        "import atexit, runpy, sys; "
        "atexit.register(lambda: sys.stderr.write('finalised\\n')); "
        "runpy.run_module('s3auth_asgi.cli', run_name='__main__', alter_sys=True)"
    )
    store = f"file://{tmp_path}"
    environment = {**os.environ, "S3AUTH_STORE_URL": store, "S3AUTH_SECRET_KEY": SECRET}
    result = subprocess.run(
        [sys.executable, "-c", hooked, *argv], env=environment, capture_output=True,
        text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result
    assert "finalised" not in result.stderr, result
    assert result.stdout.endswith("\n"), result  # flushed, all of it


@pytest.mark.parametrize("sigint", ["handled", "ignored"])
def test_a_terminated_command_is_interrupted_and_exit_143(sigint: str) -> None:
    """SIGTERM (systemd, Kubernetes, `timeout`) while a request is under way: stopped as
    Ctrl-C stops it, and told apart by its exit code; also where SIGINT is ignored, as for
    a command a non-interactive shell starts in the background."""
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint == "ignored" else None
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(TIMEOUT)
        process = subprocess.Popen(
            command(["cleanup"]), env=s3_environment(listener.getsockname()[1]), text=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            preexec_fn=ignore,
        )  # fmt: skip
        connection, _ = listener.accept()
        with connection:
            os.kill(process.pid, signal.SIGTERM)
            result = finish(Running(process))
    assert_failure(result, failures.TERMINATED, "interrupted")
    assert result.err == "s3auth: interrupted\n" and result.out == ""


# Configuration --------------------------------------------------------------------------


def test_an_unsupported_scheme_is_named_before_obstore_is_called() -> None:
    result = s3auth("user", "list", env=environment(S3AUTH_STORE_URL="ftp://host/dir"))
    assert_failure(result, failures.CONFIGURATION, "S3AUTH_STORE_URL", "ftp://", "use s3://")
    assert "Debug" not in result.err


def test_a_bad_setting_and_debug() -> None:
    env = environment(S3AUTH_STORE_URL="ftp://host/dir")
    bad, *debugged = concurrently(
        # A message that says what is wrong but not what to do.
        (["cleanup"], environment(S3AUTH_TRUSTED_PROXIES="not-an-ip"), None),
        # --debug (or S3AUTH_DEBUG=1) shows the traceback as well, with the same exit code.
        (["--debug", "user", "list"], env, None),
        (["user", "list"], {**env, "S3AUTH_DEBUG": "1"}, None),
    )
    assert_failure(bad, failures.CONFIGURATION, "S3AUTH_TRUSTED_PROXIES", "correct")
    for shown in debugged:
        assert shown.code == failures.CONFIGURATION, shown
        assert "Traceback" in shown.err and "s3auth: S3AUTH_STORE_URL" in shown.err


def test_a_file_store_whose_parent_is_missing_needs_create(tmp_path: Path) -> None:
    root = tmp_path / "missing" / "store"
    env = environment(S3AUTH_STORE_URL=f"file://{root}")
    refused = s3auth("user", "list", env=env)
    assert_failure(refused, failures.CONFIGURATION, str(root.parent), "--create")
    assert not root.parent.exists()

    created = s3auth("user", "list", "--create", env=env)
    assert created.code == 0, created
    assert stat.S_IMODE(root.stat().st_mode) == 0o700

    other = tmp_path / "elsewhere" / "store"
    by_setting = s3auth(
        "user", "list", env={**env, "S3AUTH_STORE_URL": f"file://{other}",
                             "S3AUTH_STORE_CREATE": "true"},
    )  # fmt: skip
    assert by_setting.code == 0 and other.is_dir(), by_setting


# Input ----------------------------------------------------------------------------------


def test_user_create_without_a_terminal_says_password_stdin(tmp_path: Path) -> None:
    root = tmp_path / "store"
    env = environment(S3AUTH_STORE_URL=f"file://{root}")
    result = s3auth("user", "create", "alice", "--email", "a@example.com", env=env)
    assert_failure(result, failures.USAGE, "no terminal", "--password-stdin")
    assert not root.exists()  # refused before the store was opened


def test_users_json_not_found_and_refusals(tmp_path: Path) -> None:
    env = environment(S3AUTH_STORE_URL=f"file://{tmp_path / 'store'}")
    create = ["user", "create", "--password-stdin"]
    made = concurrently(
        ([*create, "alice", "--email", "alice@example.com"], env, PASSWORD + "\n"),
        ([*create, "bob", "--email", "bob@example.com"], env, PASSWORD),
    )
    assert [result.code for result in made] == [0, 0], made
    listed, missing, taken, weak, usage = concurrently(
        (["user", "list", "--json"], env, None),
        (["user", "disable", "nobody"], env, None),
        ([*create, "ALICE", "--email", "x@example.com"], env, PASSWORD),
        ([*create, "carol", "--email", "c@example.com"], env, "weak"),
        (["user", "frobnicate"], env, None),
    )
    assert listed.code == 0 and listed.err == "", listed
    users = json.loads(listed.out)  # one document
    assert sorted(u["username"] for u in users) == ["alice", "bob"]
    assert all("hashed_password" not in u for u in users)
    assert_failure(missing, failures.NOT_FOUND, "no user 'nobody'")
    assert_failure(taken, failures.REFUSED, "taken")
    assert_failure(weak, failures.USAGE, "password")
    assert usage.code == failures.USAGE and "usage:" in usage.err
    assert "Traceback" not in usage.err


def test_an_unexpected_error_is_one_line_and_exit_70() -> None:
    program = (
        "import sys\n"
        "from s3auth_asgi.cli import main, secret\n"
        "secret.new_secret_key = lambda: 1 / 0\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    runs = [
        subprocess.run([sys.executable, "-c", program, *argv], capture_output=True, text=True,
                       env=environment(), timeout=TIMEOUT, check=False)
        for argv in (["gen-secret"], ["--debug", "gen-secret"])
    ]  # fmt: skip
    quiet, debug = (Result(r.returncode, r.stdout, r.stderr) for r in runs)
    assert_failure(quiet, failures.INTERNAL, "internal error: ZeroDivisionError", "--debug")
    assert debug.code == failures.INTERNAL and "Traceback" in debug.err


# check and the progress line ----------------------------------------------------------


def test_check_leaves_nothing_behind(tmp_path: Path) -> None:
    fresh, empty, used = tmp_path / "fresh", tmp_path / "empty", tmp_path / "used"
    empty.mkdir()
    made = s3auth("user", "create", "alice", "--email", "a@example.com", "--password-stdin",
                  env=environment(S3AUTH_STORE_URL=f"file://{used}"), stdin=PASSWORD)  # fmt: skip
    assert made.code == 0, made
    before = sorted(p.relative_to(used) for p in used.rglob("*") if p.is_file())
    checks = concurrently(
        *((["check"], environment(S3AUTH_STORE_URL=f"file://{root}"), None)
          for root in (fresh, empty, used))
    )  # fmt: skip
    for result in checks:
        assert result.code == 0 and "All checks passed" in result.out, result
    assert not fresh.exists()
    assert list(empty.iterdir()) == []
    assert not (used / "_s3auth-check").exists()
    after = sorted(p.relative_to(used) for p in used.rglob("*") if p.is_file())
    # Lock files (.s3auth/locks) belong to the store in use; its objects are as they were.
    assert [p for p in after if p.parts[0] != ".s3auth"] == [
        p for p in before if p.parts[0] != ".s3auth"
    ]


def test_a_progress_line_only_on_a_terminal(tmp_path: Path) -> None:
    env = environment(S3AUTH_STORE_URL=f"file://{tmp_path / 'store'}")
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run(
            command(["user", "list", "--json"]), env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=terminal, text=True, timeout=TIMEOUT, check=False,
        )  # fmt: skip
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(controller)
    assert done.returncode == 0 and json.loads(done.stdout) == []
    assert b"\rlisting users\xe2\x80\xa6" in shown and shown.endswith(b"\r\x1b[K")
    piped = s3auth("user", "list", "--json", env=env)
    assert piped.code == 0 and piped.err == ""
