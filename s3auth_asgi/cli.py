"""The `s3auth` command: run the demo, check a configuration, manage users, clean up.

    s3auth demo [--host H] [--port P] [--dir D]   serve the demo (needs uvicorn)
    s3auth check                                  validate the settings, probe the store
    s3auth user create NAME --email E [--admin]   the password is read without echo
    s3auth user list | disable ID | enable ID
    s3auth cleanup                                delete expired sessions and revocations
    s3auth gen-secret                             print a new S3AUTH_SECRET_KEY

Settings come from the S3AUTH_* variables (and AWS_* for S3); `--demo` points the commands
at the demo's store and secret instead. Exit codes: 0 done, 1 failed, 2 wrong usage.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO, TypeVar

import anyio
import msgspec

from .demo.config import DEFAULT_DEMO_DIR, demo_settings, new_secret
from .errors import ConfigurationError, S3AuthError
from .models import User
from .service import S3AuthService
from .settings import S3AuthSettings, env_name
from .storage import ObjectStore, StoreConflict, keys

OK, FAILED, USAGE = 0, 1, 2
PROBE_PREFIX = "_s3auth-check/"
USER_PAGE = 200
OBSTORE_SETTLE_SECONDS = 0.05

T = TypeVar("T")
OpenStore = Callable[[str], ObjectStore]


class CommandError(Exception):
    """A failure to report in one line, exit code 1."""


@dataclass
class Context:
    args: argparse.Namespace
    out: TextIO
    err: TextIO
    open_store: OpenStore

    def settings(self) -> S3AuthSettings:
        if self.args.demo:
            return demo_settings(Path(self.args.demo_dir))
        return S3AuthSettings.from_env()

    def service(self) -> S3AuthService:
        settings = self.settings()
        return S3AuthService(settings, store=self.open_store(settings.store_url))


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    open_store: OpenStore = ObjectStore.from_url,
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
    context = Context(args, out, err, open_store)
    try:
        code: int = args.run(context)
    except (ConfigurationError, CommandError) as exc:
        print(f"s3auth: {exc}", file=err)
        return FAILED
    except S3AuthError as exc:
        detail = f": {exc.detail}" if exc.detail != exc.title else ""
        print(f"s3auth: {exc.title}{detail}", file=err)
        return FAILED
    except KeyboardInterrupt:
        print("s3auth: interrupted", file=err)
        return FAILED
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s3auth",
        description="Authentication with all state in an object store.",
        epilog="Settings come from S3AUTH_* environment variables (AWS_* for S3).",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="use the demo's store and secret (see --demo-dir) instead of S3AUTH_*",
    )
    parser.add_argument(
        "--demo-dir",
        default=str(DEFAULT_DEMO_DIR),
        metavar="DIR",
        help=f"the demo's directory (default: {DEFAULT_DEMO_DIR})",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="serve the demo app (http://127.0.0.1:8000/)")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--dir", default=None, help=f"state directory (default: {DEFAULT_DEMO_DIR})")
    demo.set_defaults(run=run_demo)

    check = commands.add_parser("check", help="validate the configuration and probe the store")
    check.set_defaults(run=run_check)

    user = commands.add_parser("user", help="manage users")
    user_commands = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    create = user_commands.add_parser("create", help="create a user (password read without echo)")
    create.add_argument("username")
    create.add_argument("--email", required=True)
    create.add_argument("--full-name", default=None)
    create.add_argument("--admin", action="store_true", help="make the user an administrator")
    create.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input (for scripts)",
    )
    create.set_defaults(run=run_user_create)
    listing = user_commands.add_parser("list", help="list every user")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(run=run_user_list)
    for name, active in (("disable", False), ("enable", True)):
        toggle = user_commands.add_parser(
            name, help=f"{name} an account ({'ends its sessions' if not active else 'again'})"
        )
        toggle.add_argument("user", help="user id, username or email")
        toggle.set_defaults(run=run_user_toggle, active=active)

    cleanup = commands.add_parser("cleanup", help="delete expired sessions and revocations")
    cleanup.set_defaults(run=run_cleanup)

    secret = commands.add_parser("gen-secret", help="print a new random S3AUTH_SECRET_KEY")
    secret.set_defaults(run=run_gen_secret)
    return parser


def _run_async(function: Callable[[], Awaitable[T]]) -> T:
    result = anyio.run(function, backend="asyncio")  # obstore's async API needs asyncio
    # obstore (0.12) finishes an async listing on its own runtime threads a moment after
    # the awaiting loop is done; if the interpreter shuts down in that moment the process
    # aborts (SIGABRT, ~40% of the time here). A short pause lets those threads finish.
    time.sleep(OBSTORE_SETTLE_SECONDS)
    return result


# gen-secret ---------------------------------------------------------------------------


def run_gen_secret(ctx: Context) -> int:
    print(new_secret(), file=ctx.out)
    return OK


# demo ---------------------------------------------------------------------------------


def run_demo(ctx: Context) -> int:
    try:
        import uvicorn
    except ImportError:
        raise CommandError("the demo needs uvicorn: pip install 's3auth_asgi[demo]'") from None
    from .demo.app import create_demo_app

    directory = Path(ctx.args.dir or ctx.args.demo_dir)
    settings = demo_settings(directory)
    service = S3AuthService(settings, store=ctx.open_store(settings.store_url))
    base = f"http://{_url_host(ctx.args.host)}:{ctx.args.port}"
    print(
        f"s3auth demo\n"
        f"  page:     {base}/\n"
        f"  API:      {base}/auth/  (OpenAPI: {base}/auth/openapi.json)\n"
        f"  store:    {settings.store_url}\n"
        f"  secret:   {_secret_origin(directory)}\n"
        f"  Make yourself an administrator: s3auth --demo user create NAME --email E --admin\n",
        file=ctx.out,
        flush=True,
    )
    uvicorn.run(create_demo_app(service), host=ctx.args.host, port=ctx.args.port)
    time.sleep(OBSTORE_SETTLE_SECONDS)  # see _run_async
    return OK


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _secret_origin(directory: Path) -> str:
    if os.environ.get(env_name("secret_key")):
        return env_name("secret_key")
    return str((directory / "secret").resolve())


# check --------------------------------------------------------------------------------


@dataclass
class Probe:
    name: str
    passed: bool
    message: str


def run_check(ctx: Context) -> int:
    try:
        settings = ctx.settings()
    except ConfigurationError as exc:
        print(f"[FAIL] configuration: {exc}", file=ctx.out)
        return FAILED
    print(
        f"[ok]   configuration: store {settings.store_url}, {settings.algorithm}, access "
        f"tokens {settings.access_token_expire_minutes} min, sessions "
        f"{settings.refresh_token_expire_days} d",
        file=ctx.out,
    )
    try:
        store = ctx.open_store(settings.store_url)
    except ConfigurationError as exc:
        print(f"[FAIL] store: {exc}", file=ctx.out)
        return FAILED
    probes = _run_async(lambda: probe_store(store))
    for probe in probes:
        print(
            f"{'[ok]  ' if probe.passed else '[FAIL]'} {probe.name}: {probe.message}", file=ctx.out
        )
    failed = [p for p in probes if not p.passed]
    if failed:
        print(
            f"{len(failed)} problem(s): this store cannot hold s3auth's state safely.",
            file=ctx.out,
        )
        return FAILED
    print("All checks passed.", file=ctx.out)
    return OK


async def probe_store(store: ObjectStore) -> list[Probe]:
    """Reachability, then each conditional write the package relies on, on a probe object
    that is deleted afterwards. Stops at the first probe that cannot even run."""
    key = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    probes: list[Probe] = []
    started = time.perf_counter()
    try:
        await store.list_page(keys.USERS, None, 1)
        await store.get(key, dict)
    except S3AuthError as exc:
        return [Probe("reachable", False, f"cannot list or read: {exc.detail}{_cause(exc)}")]
    try:
        first_etag = await store.create(key, {"probe": 1})
    except (S3AuthError, StoreConflict) as exc:
        return [Probe("reachable", False, f"cannot write: {exc}{_cause(exc)}")]
    elapsed = (time.perf_counter() - started) * 1000
    probes.append(Probe("reachable", True, f"listed, read and wrote ({elapsed:.0f} ms)"))
    try:
        probes.append(await _probe_create_if_absent(store, key))
        probes.append(await _probe_if_match(store, key, first_etag))
    finally:
        try:
            await store.delete(key)
        except S3AuthError as exc:
            probes.append(Probe("delete", False, f"cannot delete {key}: {exc.detail}"))
    return probes


async def _probe_create_if_absent(store: ObjectStore, key: str) -> Probe:
    name = "create-if-absent (If-None-Match: *)"
    try:
        await store.create(key, {"probe": 2})
    except StoreConflict:
        return Probe(name, True, "a second create of the same key was refused")
    except S3AuthError as exc:
        return Probe(name, False, f"not supported: {exc.detail}{_cause(exc)}")
    return Probe(
        name,
        False,
        "the store overwrote an existing object: it ignores If-None-Match, so two people "
        "could register the same name",
    )


async def _probe_if_match(store: ObjectStore, key: str, stale_etag: str) -> Probe:
    name = "conditional update (If-Match)"
    try:
        current = await store.get(key, dict)
        if current is None:
            return Probe(name, False, "the probe object vanished")
        fresh_etag = await store.replace(key, {"probe": 3}, current.etag)
    except StoreConflict:
        return Probe(name, False, "an update with the current ETag was refused")
    except S3AuthError as exc:
        return Probe(name, False, f"not supported: {exc.detail}{_cause(exc)}")
    for etag in (stale_etag, '"s3auth-check-stale"'):
        if etag == fresh_etag:
            continue
        try:
            await store.replace(key, {"probe": 4}, etag)
        except StoreConflict:
            continue
        except S3AuthError as exc:
            return Probe(name, False, f"not supported: {exc.detail}{_cause(exc)}")
        return Probe(
            name,
            False,
            "an update with a stale ETag was accepted: the store ignores If-Match, so "
            "concurrent refreshes and profile changes could overwrite each other",
        )
    return Probe(name, True, "an update with a stale ETag was refused")


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__
    if cause is None:
        return ""
    text = str(cause).strip().splitlines()
    return f" ({type(cause).__name__}: {text[0][:200]})" if text else ""


# user ---------------------------------------------------------------------------------


def read_new_password(ctx: Context) -> str:
    if ctx.args.password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise CommandError("--password-stdin: standard input is empty")
        return line.rstrip("\r\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Repeat the password: ") != password:
        raise CommandError("the passwords do not match")
    return password


def run_user_create(ctx: Context) -> int:
    service = ctx.service()
    password = read_new_password(ctx)

    async def create() -> int:
        user = await service.create_user(
            ctx.args.username,
            ctx.args.email,
            password,
            ctx.args.full_name,
            is_admin=ctx.args.admin,
        )
        role = "administrator" if user.is_admin else "user"
        print(f"created {role} {user.username} <{user.email}> id={user.id}", file=ctx.out)
        return OK

    return _run_async(create)


def run_user_list(ctx: Context) -> int:
    service = ctx.service()

    async def listing() -> int:
        after: str | None = None
        count = 0
        if not ctx.args.json:
            print(f"{'ID':32}  {'USERNAME':20}  {'EMAIL':30}  STATUS", file=ctx.out)
        while True:
            users, after = await service.list_users(after=after, limit=USER_PAGE)
            for user in users:
                count += 1
                if ctx.args.json:
                    print(msgspec.json.encode(user.public()).decode(), file=ctx.out)
                else:
                    print(_user_line(user), file=ctx.out)
            if after is None:
                break
        if not ctx.args.json:
            print(f"{count} user(s)", file=ctx.out)
        return OK

    return _run_async(listing)


def _user_line(user: User) -> str:
    status = ("active" if user.is_active else "disabled") + (", admin" if user.is_admin else "")
    return f"{user.id:32}  {user.username:20}  {user.email:30}  {status}"


async def find_user(service: S3AuthService, identifier: str) -> User:
    user = (
        await service.get_user_by_id(identifier)
        or await service.get_user_by_email(identifier)
        or await service.get_user_by_username(identifier)
    )
    if user is None:
        raise CommandError(f"no user {identifier!r} (give an id, a username or an email)")
    return user


def run_user_toggle(ctx: Context) -> int:
    service = ctx.service()
    active: bool = ctx.args.active

    async def toggle() -> int:
        user = await find_user(service, ctx.args.user)
        updated = await service.update_user(user.id, is_active=active)
        state = "enabled" if updated.is_active else "disabled (its sessions have ended)"
        print(f"{updated.username} {state}", file=ctx.out)
        return OK

    return _run_async(toggle)


# cleanup ------------------------------------------------------------------------------


def run_cleanup(ctx: Context) -> int:
    service = ctx.service()
    progress = Progress(ctx.err, service.store)

    async def cleanup() -> int:
        started = time.perf_counter()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(progress.run)
            try:
                deleted = await service.cleanup_expired_tokens()
            finally:
                tasks.cancel_scope.cancel()
        progress.finish()
        elapsed = time.perf_counter() - started
        print(
            f"deleted {deleted} expired session(s) and revocation entries in {elapsed:.1f} s "
            f"({progress.describe()})",
            file=ctx.out,
        )
        return OK

    return _run_async(cleanup)


class Progress:
    """A one-line live display of the store requests made so far, redrawn on a terminal
    (and only printed once at the end elsewhere, so logs stay readable)."""

    def __init__(self, stream: TextIO, store: ObjectStore, interval: float = 0.2) -> None:
        self.stream = stream
        self.store = store
        self.interval = interval
        self.live = stream.isatty()
        self._baseline = dict(store.requests)
        self._started = time.perf_counter()

    def counts(self) -> dict[str, int]:
        return {
            kind: self.store.requests[kind] - self._baseline.get(kind, 0)
            for kind in ("list", "delete")
        }

    def describe(self) -> str:
        counts = self.counts()
        return f"{counts['list']} list page(s), {counts['delete']} delete batch(es)"

    async def run(self) -> None:
        while True:
            if self.live:
                elapsed = time.perf_counter() - self._started
                self.stream.write(f"\rcleaning up… {self.describe()}, {elapsed:.1f} s ")
                self.stream.flush()
            await anyio.sleep(self.interval)

    def finish(self) -> None:
        if self.live:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


if __name__ == "__main__":  # pragma: no cover - `python -m s3auth_asgi.cli`
    sys.exit(main())
