"""The `s3auth` command: run the demo, check a configuration, manage users and keys, clean up.

    s3auth demo [--host H] [--port P] [--dir D]   serve the demo (needs uvicorn)
    s3auth check                                  validate the settings, probe the store
    s3auth doctor [--repair] [--json]             find users and name index entries that
                                                  disagree or cannot be read; repair the
                                                  safe cases
    s3auth user create NAME --email E [--admin]   the password is read without echo
    s3auth user import [FILE] [--json]            users with their password hashes, from
                                                  JSON lines (stdin for - or no FILE)
    s3auth user list [--json] [--search S] | disable ID | enable ID | delete ID
    s3auth user set-password ID | scopes ID [--add S..] [--remove S..] | promote ID
    s3auth user reset-password ID [--end-sessions] [--json]   mail the owner a reset link
    s3auth user demote ID | sessions ID [--json] | revoke ID [--session SID] | totp-off ID
    s3auth sessions end-all [--yes]               end every session of every user
    s3auth keys list [--json] | rotate [--now] | retire KID [--now] | publish
    s3auth keys generate --algorithm A [--public] print a new private key (or its public key)
    s3auth cleanup                                delete expired sessions, revocations,
                                                  mailed links, audit events and rate-limit
                                                  state
    s3auth gen-secret                             print a new S3AUTH_SECRET_KEY

Settings come from the S3AUTH_* variables (and AWS_* for S3); `--demo` (or `--demo-dir`,
`--demo-store`) points the commands at the demo's store, secret and keys, whatever the
variables say. A failure is one line on stderr and an exit code per
class of failure (`failures`); `--debug` (or S3AUTH_DEBUG=1) adds the traceback.

This module parses the command line and reports failures; each command is in a module of
its own, and what they share (the arguments, streams, settings and store) in `context`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn, TextIO

from ..errors import ConfigurationError
from ..settings_env import DEBUG_VARIABLE
from ..settings_text import read_bool
from .check import run_check
from .cleanup import run_cleanup
from .context import Context, OpenStore
from .demo import port_number, run_demo
from .doctor import run_doctor
from .failures import INTERRUPTED, TERMINATED, USAGE, library_logging, report
from .keys_parser import add_keys_commands
from .secret import run_gen_secret
from .sessions import add_sessions_commands
from .termination import terminated_as_interrupted
from .users import add_user_commands

__all__ = ["build_parser", "main", "run"]

SHOWN_DEMO_DIR = ".s3auth-demo"
"""`s3auth_asgi.demo.config.DEFAULT_DEMO_DIR` for the help text, spelled out because
importing it would load the demo package for every command (a test keeps the two equal)."""


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    open_store: OpenStore | None = None,
) -> int:
    """Run one command; returns the exit code. `open_store` lets tests inject a store."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = build_parser()
    try:
        # argparse writes usage and help to sys.stdout/sys.stderr itself.
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse has printed the usage already
        return exit_.code if isinstance(exit_.code, int) else USAGE
    try:
        debug = debug_variable() or args.debug
    except ConfigurationError as exc:  # no traceback: what would show one is what is wrong
        return report(exc, err, debug=False, store_url=None)
    context = Context(args, out, err, open_store)
    with terminated_as_interrupted() as termination:
        try:
            with library_logging(err, debug=debug):
                code: int = args.run(context)
        except (Exception, KeyboardInterrupt, BaseExceptionGroup) as exc:
            # Every failure, expected or not: one line and an exit code (failures.classify).
            code = report(exc, err, debug=debug, store_url=context.store_url)
    if code == INTERRUPTED and termination.received:
        code = TERMINATED
    if out is sys.stdout:
        flush_stdout()
    return code


def run() -> NoReturn:
    """The `s3auth` command: `main` on the process's arguments, then the process ends with
    its exit code, without finalising the interpreter (`end_process`)."""
    end_process(main())


def end_process(code: int) -> NoReturn:
    """Flush what the command wrote and end the process, skipping the interpreter's
    finalisation: a store request the command gave up (Ctrl-C, a deadline) still runs on
    obstore's threads, and one that reaches for Python once the interpreter is finalised
    panics, printing a Rust backtrace under the command's one line."""
    logging.shutdown()
    flush_stdout()
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    os._exit(code)


def debug_variable() -> bool:
    """S3AUTH_DEBUG, read as the settings' booleans are."""
    text = os.environ.get(DEBUG_VARIABLE)
    return False if text is None else read_bool(text, DEBUG_VARIABLE)


def flush_stdout() -> None:
    """Flush stdout now, so that a reader that went away (`s3auth user list | head -1`)
    does not make the interpreter print an error at exit: stdout then goes to /dev/null."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s3auth",
        description="Authentication with all state in an object store.",
        epilog="Settings come from S3AUTH_* environment variables (AWS_* for S3).",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="use the demo's store, secret and keys (see --demo-dir), whatever S3AUTH_* says",
    )
    parser.add_argument(
        "--demo-dir",
        default=None,
        metavar="DIR",
        help=f"the demo's directory (default: {SHOWN_DEMO_DIR}); implies --demo",
    )
    parser.add_argument(
        "--demo-store",
        default=None,
        metavar="URL",
        help="the demo's store instead of DIR/store (s3://bucket/prefix, ...); implies --demo",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"on a failure, show the traceback too (also {DEBUG_VARIABLE}=1)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Commands that open the store take --create.
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument(
        "--create",
        action="store_true",
        help="create a file:// store's directory even when its parent is missing "
        "(also S3AUTH_STORE_CREATE=true)",
    )

    demo = commands.add_parser("demo", help="serve the demo app (http://127.0.0.1:8000/)")
    demo.add_argument(
        "--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)"
    )
    demo.add_argument(
        "--port", type=port_number, default=8000, help="the port, 1 to 65535 (default: 8000)"
    )
    demo.add_argument("--dir", default=None, help=f"state directory (default: {SHOWN_DEMO_DIR})")
    demo.set_defaults(run=run_demo)

    check = commands.add_parser(
        "check", parents=[store], help="validate the configuration and probe the store"
    )
    check.set_defaults(run=run_check)

    doctor = commands.add_parser(
        "doctor",
        parents=[store],
        help="read every user and name index entry; report what disagrees or cannot be read",
    )
    doctor.add_argument(
        "--repair",
        action="store_true",
        help="repair what can be safely: a user's own entries, entries of claims that never "
        "finished (user records are never written)",
    )
    doctor.add_argument("--json", action="store_true", help="one JSON array of what was found")
    doctor.set_defaults(run=run_doctor)

    add_user_commands(commands, store)

    add_sessions_commands(commands, store)

    add_keys_commands(commands, store)

    cleanup = commands.add_parser(
        "cleanup",
        parents=[store],
        help="delete expired state: sessions, revocations, mailed links, audit events past "
        "their retention, spent rate-limit objects",
    )
    cleanup.set_defaults(run=run_cleanup)

    secret = commands.add_parser("gen-secret", help="print a new random S3AUTH_SECRET_KEY")
    secret.set_defaults(run=run_gen_secret)
    return parser
