"""The `s3auth` command, each subcommand against the file:// backend and moto's S3, plus
`check` against stores that lack what the package relies on. The exit code of each class of
failure is `cli.failures`'s; test_cli_failures.py runs the failures as subprocesses."""

from __future__ import annotations

import getpass
import io
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import SECRET, make_bucket
from support import level_with_the_store
from test_app import PASSWORD as APP_PASSWORD
from test_app import client_for, mounted, register
from test_faults import FaultyStore
from test_storage_probes import (
    FailsDuringProbe,
    NoIfMatchStore,
    UnconditionalStore,
    UnreachableStore,
)

from s3auth_asgi import S3AuthService, S3AuthSettings, cli, user_directory
from s3auth_asgi.blacklist import TokenBlacklist
from s3auth_asgi.cli import cleanup, failures
from s3auth_asgi.demo.config import DEFAULT_DEMO_DIR
from s3auth_asgi.ratelimit import ObjectStoreRateLimitStore, RateLimit
from s3auth_asgi.storage import ObjectStore, keys

PASSWORD = "Secret123!"
MEMORY_REFUSED = (
    "S3AUTH_STORE_URL is a memory:// store (also what an unset S3AUTH_STORE_URL means), "
    "which would vanish when the command exits: set it to the store your app uses, or use "
    "--demo"
)


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Run:
    """One invocation of `s3auth`: exit code and what it printed. `terminal`: standard input
    is a terminal (where a password may be asked for)."""

    def __init__(
        self, *argv: str, stdin: str = "", open_store: Any = None, terminal: bool = False
    ) -> None:
        out, err = io.StringIO(), io.StringIO()
        saved = sys.stdin
        # A byte stream under the text, as a process's: the command reads the bytes.
        piped = io.TextIOWrapper(io.BytesIO(stdin.encode()), encoding="utf-8")
        sys.stdin = FakeTerminal(stdin) if terminal else piped
        try:
            options = {"open_store": open_store} if open_store else {}
            self.code = cli.main(list(argv), stdout=out, stderr=err, **options)
        finally:
            sys.stdin = saved
        self.out, self.err = out.getvalue(), err.getvalue()

    def __repr__(self) -> str:
        return f"exit {self.code}\n--- out\n{self.out}--- err\n{self.err}"


def check_warnings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> list[str]:
    """`s3auth check` on a file:// store with the test secret and `env` set: the
    configuration warnings it printed, once it passed and counted them on its last line."""
    monkeypatch.setenv("S3AUTH_STORE_URL", f"file://{tmp_path / 'store'}")
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    run = Run("check")
    assert run.code == 0 and run.err == "", run
    lines = run.out.splitlines()
    assert lines[0].startswith("[ok]   configuration: "), run
    warnings = [line for line in lines if line.startswith("[warn]")]
    assert lines[1 : 1 + len(warnings)] == warnings, run  # right after the configuration
    assert lines[1 + len(warnings)].startswith("[ok]   reachable: "), run
    counted = {0: "", 1: ", with 1 warning above"}.get(
        len(warnings), f", with {len(warnings)} warnings above"
    )
    assert lines[-1] == f"All checks passed{counted}.", run
    return [line.removeprefix("[warn] configuration: ") for line in warnings]


@pytest.fixture(params=["file", "s3"])
def cli_store_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A store configured the way an operator would: S3AUTH_* in the environment."""
    if request.param == "file":
        url = f"file://{tmp_path / 'store'}"
    else:
        url = f"s3://{make_bucket(request.getfixturevalue('moto_endpoint'))}/auth"
    monkeypatch.setenv("S3AUTH_STORE_URL", url)
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    monkeypatch.setenv("S3AUTH_ARGON2_MEMORY_KIB", "1024")
    monkeypatch.setenv("S3AUTH_ARGON2_TIME_COST", "1")
    return url


def service_for(url: str) -> S3AuthService:
    return S3AuthService(S3AuthSettings(store_url=url, secret_key=SECRET))


def authenticates(url: str, name: str, password: str = PASSWORD) -> bool:
    async def check() -> bool:
        return await service_for(url).authenticate_user(name, password) is not None

    return anyio.run(check, backend="asyncio")


# Usage and gen-secret ---------------------------------------------------------------------


def test_usage_errors_exit_2() -> None:
    for argv in ([], ["frobnicate"], ["user"], ["user", "create", "alice"], ["demo", "--port=x"]):
        run = Run(*argv)
        assert run.code == 2, (argv, run)
        assert "usage:" in run.err


def test_help_exits_0() -> None:
    run = Run("--help")
    assert run.code == 0
    assert "gen-secret" in run.out and "cleanup" in run.out
    # The parser spells the demo's directory out rather than import the demo to read it.
    for text in (run.out, Run("demo", "--help").out):
        assert f"(default: {DEFAULT_DEMO_DIR})" in " ".join(text.split())


def test_gen_secret_prints_a_fresh_valid_key() -> None:
    first, second = Run("gen-secret"), Run("gen-secret")
    assert first.code == second.code == 0
    key = first.out.strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{64}", key)
    assert key != second.out.strip()
    S3AuthSettings(secret_key=key)  # accepted as a secret


def test_the_console_script_runs() -> None:
    script = Path(sys.executable).parent / "s3auth"
    if not script.exists():
        pytest.skip("the package is not installed with its console script")
    result = subprocess.run(
        [str(script), "gen-secret"], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0
    assert len(result.stdout.strip()) == 64


def test_commands_without_the_demo_do_not_import_it() -> None:
    program = (
        "import sys\n"
        "from s3auth_asgi.cli import main\n"
        "assert main(['gen-secret']) == 0\n"
        "assert main(['--help']) == 0\n"
        "print(sorted(m for m in sys.modules if m.startswith('s3auth_asgi.demo')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


def test_python_dash_m_runs_the_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "s3auth_asgi.cli", "gen-secret"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"[A-Za-z0-9_-]{64}", result.stdout.strip())


# check ------------------------------------------------------------------------------------


def test_check_passes_on_a_good_store(cli_store_url: str) -> None:
    run = Run("check")
    assert run.code == 0, run
    assert cli_store_url in run.out
    for probe in ("reachable", "create-if-absent", "conditional update"):
        assert re.search(rf"\[ok\]\s+{probe}", run.out), run
    assert "All checks passed" in run.out
    # The probe cleaned up after itself.
    store = ObjectStore.from_url(cli_store_url)
    assert anyio.run(lambda: _count(store, keys.PROBES), backend="asyncio") == 0
    # On S3 it leaves its verdict, which spares the service's start the probes; a file://
    # store's conditional writes are the package's own, and nothing is written.
    verdict = anyio.run(lambda: store.get(keys.STORE_VERDICT, dict), backend="asyncio")
    if cli_store_url.startswith("s3://"):
        assert verdict is not None and verdict.value["by"] == "s3auth check", run
        assert f"[ok]   verdict: written to {keys.STORE_VERDICT}" in run.out
        assert Run("check").out.count(f"[ok]   verdict: already in {keys.STORE_VERDICT}") == 1
    else:
        assert verdict is None and "verdict" not in run.out


async def _count(store: ObjectStore, prefix: str) -> int:
    return len([info async for info in store.list(prefix)])


def test_check_names_a_missing_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("S3AUTH_SECRET_KEY", raising=False)
    run = Run("check")
    assert run.code == failures.CONFIGURATION
    assert "[FAIL] configuration" in run.out
    assert "S3AUTH_SECRET_KEY" in run.out


def test_check_names_an_invalid_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    monkeypatch.setenv("S3AUTH_ACCESS_TOKEN_EXPIRE_MINUTES", "soon")
    run = Run("check")
    assert run.code == failures.CONFIGURATION
    assert "S3AUTH_ACCESS_TOKEN_EXPIRE_MINUTES" in run.out


def test_check_shows_a_rate_limit_name_like_a_misspelt_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The warning the auth app logs when it builds its limiter, which the command's quiet
    logging would hide: a line of its own, and the check still passes."""
    limits = "logn=5/60,api=100/60,Register=1/60"
    assert check_warnings(tmp_path, monkeypatch, S3AUTH_RATE_LIMITS=limits) == [
        "S3AUTH_RATE_LIMITS: 'logn' names none of the limits defined in "
        "code (did you mean 'login'?): only a call that names 'logn' is limited by it",
        "S3AUTH_RATE_LIMITS: 'Register' names none of the limits defined "
        "in code (did you mean 'register'?): only a call that names 'Register' is limited by it",
    ]
    assert check_warnings(tmp_path, monkeypatch, S3AUTH_RATE_LIMITS="login=5/60,api=100/60") == []


def test_check_reports_a_store_without_conditional_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    run = Run("check", open_store=lambda url: UnconditionalStore.from_url("memory://"))
    assert run.code == failures.REFUSED, run
    assert re.search(r"\[FAIL\] create-if-absent.*ignores If-None-Match", run.out), run
    assert re.search(r"\[FAIL\] conditional update.*ignores If-Match", run.out), run
    assert "2 problem(s)" in run.out


def test_check_reports_an_unreachable_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    run = Run("check", open_store=lambda url: UnreachableStore.from_url("memory://"))
    assert run.code == failures.UNAVAILABLE
    assert re.search(r"\[FAIL\] reachable: cannot list or read", run.out), run
    assert "connection refused by 192.0.2.1:9000" in run.out
    assert "check S3AUTH_STORE_URL" in run.out


@pytest.fixture(params=["memory", "file"])
def probed_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The URL of a store that `check` opens through `open_store`."""
    url = "memory://" if request.param == "memory" else f"file://{tmp_path / 'store'}"
    monkeypatch.setenv("S3AUTH_STORE_URL", url)
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    return url


def test_check_passes_a_store_that_lost_one_answer(probed_url: str) -> None:
    # The update with the current ETag landed, its answer did not: a second try would be
    # refused, as the ETag is no longer current.
    store = FailsDuringProbe(ObjectStore.from_url(probed_url), "replace", 1, after=True)
    run = Run("check", open_store=lambda url: store)
    assert run.code == failures.OK, run
    assert "All checks passed" in run.out
    assert dict(store.requests) == {"list": 1, "get": 3, "put": 5, "delete": 1}


def test_check_reports_a_store_that_goes_down_during_it_as_unavailable(probed_url: str) -> None:
    store = FailsDuringProbe(ObjectStore.from_url(probed_url), "replace", 1, down=True)
    run = Run("check", open_store=lambda url: store)
    assert run.code == failures.UNAVAILABLE, run
    assert re.search(
        r"\[FAIL\] conditional update \(If-Match\): not tested, the store failed during it: "
        r"replace failed: ServiceUnavailable \(RuntimeError: 503 Service Unavailable\), and "
        r"a plain read after it failed too\n",
        run.out,
    ), run
    assert re.search(r"\[FAIL\] delete: cannot delete", run.out), run
    assert run.out.endswith(
        f"The store failed during the check: {failures.STORE_HINT}; then run `s3auth check` "
        "again.\n"
    ), run
    assert "not supported" not in run.out and "problem(s)" not in run.out, run
    assert dict(store.requests) == {"list": 1, "get": 3, "put": 3, "delete": 1}


def test_check_reports_a_store_that_refuses_if_match_every_time(probed_url: str) -> None:
    run = Run("check", open_store=lambda url: NoIfMatchStore.from_url(url))
    assert run.code == failures.REFUSED, run
    assert re.search(r"\[FAIL\] conditional update \(If-Match\): not supported: ", run.out)
    assert "1 problem(s): this store cannot hold s3auth's state safely." in run.out


def test_check_reports_a_store_url_that_cannot_be_opened(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    monkeypatch.setenv("S3AUTH_STORE_URL", "nosuchscheme://bucket")
    run = Run("check")
    assert run.code == failures.CONFIGURATION
    # Refused with the settings, by the store's own rule, before a store is opened.
    assert run.out.startswith("[FAIL] configuration: S3AUTH_STORE_URL: the scheme"), run


# user -------------------------------------------------------------------------------------


def test_user_create_list_disable_enable(cli_store_url: str) -> None:
    created = Run(
        "user", "create", "alice", "--email", "alice@example.com", "--admin",
        "--full-name", "Alice A.", "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert created.code == 0, created
    assert "created administrator alice <alice@example.com>" in created.out
    assert PASSWORD not in created.out + created.err
    assert Run("user", "create", "bob", "--email", "b@example.com", "--password-stdin",
               stdin=PASSWORD).code == 0  # fmt: skip
    assert authenticates(cli_store_url, "alice")

    listing = Run("user", "list")
    assert listing.code == 0
    assert re.search(r"alice\s+alice@example.com\s+active, admin", listing.out), listing
    assert re.search(r"bob\s+b@example.com\s+active$", listing.out, re.M), listing
    assert "2 user(s)" in listing.out
    as_json = json.loads(Run("user", "list", "--json").out)  # one document
    assert {u["username"] for u in as_json} == {"alice", "bob"}
    assert all("hashed_password" not in u for u in as_json)

    assert Run("user", "disable", "alice@example.com").code == 0
    assert not authenticates(cli_store_url, "alice")
    assert "disabled" in Run("user", "list").out
    alice_id = next(u["id"] for u in as_json if u["username"] == "alice")
    enabled = Run("user", "enable", alice_id)
    assert enabled.code == 0 and "alice enabled" in enabled.out
    assert authenticates(cli_store_url, "alice")


def create_users_read_by_two(monkeypatch: pytest.MonkeyPatch) -> None:
    """Five users, whose records a listing reads two at a time."""
    monkeypatch.setattr(user_directory, "WALK_BATCH", 2)
    for i in range(5):
        Run("user", "create", f"user{i}", "--email", f"u{i}@example.com", "--password-stdin",
            stdin=PASSWORD)  # fmt: skip


def test_user_list_reads_every_user(cli_store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    create_users_read_by_two(monkeypatch)
    opened: list[ObjectStore] = []

    def counted(url: str) -> ObjectStore:
        opened.append(ObjectStore.from_url(url))
        return opened[-1]

    listing = Run("user", "list", open_store=counted)
    assert "5 user(s)" in listing.out
    assert all(f"user{i}" in listing.out for i in range(5))
    # One listing read to its end, the records read as it goes.
    assert dict(opened[0].requests) == {"list": 1, "get": 5}


def test_user_list_prints_no_json_when_the_listing_fails_part_way(
    cli_store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_users_read_by_two(monkeypatch)
    whole = Run("user", "list", "--json")
    assert whole.code == 0 and len(json.loads(whole.out)) == 5, whole
    assert len(whole.out.splitlines()) == 7  # `[`, a user a line, `]`

    def listing_fails(url: str) -> FaultyStore:
        faulty = FaultyStore(ObjectStore.from_url(url))
        # The listing fails once it has given the 5 keys: the first 4 records are read, two
        # at a time, and the fifth is never.
        faulty.fail_at, faulty.after = 1, True
        opened.append(faulty)
        return faulty

    opened: list[FaultyStore] = []
    as_json = Run("user", "list", "--json", open_store=listing_fails)
    table = Run("user", "list", open_store=listing_fails)
    for run, store in zip((as_json, table), opened, strict=True):
        assert run.code == failures.UNAVAILABLE, run
        assert run.err.startswith("s3auth: ") and len(run.err.splitlines()) == 1, run
        assert (store.requests["list"], store.requests["get"]) == (1, 4)
    assert as_json.out == ""  # never a prefix a script could take for the whole array
    # A person reads the table as it comes: the users read, and no count of a whole.
    assert table.out.splitlines()[0].startswith("ID ") and len(table.out.splitlines()) == 5
    assert "user(s)" not in table.out


def test_user_create_reads_the_password_without_echo(
    cli_store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return PASSWORD

    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    run = Run("user", "create", "carol", "--email", "carol@example.com", terminal=True)
    assert run.code == 0, run
    assert prompts == ["Password: ", "Repeat the password: "]
    assert authenticates(cli_store_url, "carol")


def test_user_create_failures(cli_store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([PASSWORD, "Different123!"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))
    mismatch = Run("user", "create", "dave", "--email", "dave@example.com", terminal=True)
    assert mismatch.code == failures.USAGE and "do not match" in mismatch.err
    weak = Run("user", "create", "dave", "--email", "d@example.com", "--password-stdin",
               stdin="weak")  # fmt: skip
    assert weak.code == failures.USAGE and "password" in weak.err.lower()
    empty = Run("user", "create", "dave", "--email", "d@example.com", "--password-stdin")
    assert empty.code == failures.USAGE and "empty" in empty.err
    assert Run("user", "create", "erin", "--email", "e@example.com", "--password-stdin",
               stdin=PASSWORD).code == 0  # fmt: skip
    taken = Run("user", "create", "ERIN", "--email", "x@example.com", "--password-stdin",
                stdin=PASSWORD)  # fmt: skip
    assert taken.code == failures.REFUSED and "taken" in taken.err
    unknown = Run("user", "disable", "nobody")
    assert unknown.code == failures.NOT_FOUND and "no user 'nobody'" in unknown.err


# cleanup ----------------------------------------------------------------------------------


def test_cleanup_deletes_expired_revocations_with_progress_and_summary(
    cli_store_url: str,
) -> None:
    store = ObjectStore.from_url(cli_store_url)
    long_ago = TokenBlacklist(store, clock=lambda: 1_000_000.0)
    current = TokenBlacklist(store)

    async def revoke() -> None:
        for i in range(3):
            await long_ago.revoke_session(f"old{i}")
        await current.revoke_session("recent")

    anyio.run(revoke, backend="asyncio")
    terminal = FakeTerminal()
    run_code = cli.main(["cleanup"], stdout=(out := io.StringIO()), stderr=terminal)
    assert run_code == 0
    summary = out.getvalue()
    assert re.search(r"deleted 3 expired .* in \d+\.\d s \(\d+ list page\(s\), 1 delete", summary)
    assert "\rcleaning up…" in terminal.getvalue()  # the live display, on a terminal
    again = Run("cleanup")
    assert again.code == 0 and "deleted 0" in again.out
    assert again.err == ""  # not a terminal: no live display


def limit_objects(store: ObjectStore) -> dict[str, int]:
    """How many objects each limit (or budget) has under `ratelimit/`."""

    async def listing() -> list[str]:
        return [info.key async for info in store.list(keys.RATELIMIT)]

    names = [keys.ratelimit_limit_name(key) for key in anyio.run(listing, backend="asyncio")]
    return {name: names.count(name) for name in sorted(set(names))}


def test_cleanup_deletes_expired_rate_limit_objects_the_hosts_too(
    cli_store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ObjectStore.from_url(cli_store_url)
    service = S3AuthService(S3AuthSettings.from_env(), store=store)

    async def traffic() -> None:
        async with client_for(mounted(service, rate_limit=True)) as client:
            await register(client, "alice")
            wrong = {"username": "alice", "password": APP_PASSWORD + "x"}
            assert (await client.post("/auth/login", data=wrong)).status_code == 401
        # Limits of the host's own RateLimitMiddleware, kept in the same store: one whose
        # client has its allowance back 6 s on, one whose client owes it for an hour.
        host = ObjectStoreRateLimitStore(store)
        await host.acquire("api", "client", RateLimit(10, 60), 1)
        await host.acquire("reports", "client", RateLimit(1, 3600), 1)

    anyio.run(traffic, backend="asyncio")
    written = {  # a failure is charged to the account's one budget and the address's
        "api": 1, "login.account": 1, "login.address": 1, "register": 1, "register_account": 1,
        "reports": 1,
    }  # fmt: skip
    assert limit_objects(store) == written
    started = time.time()

    def cleanup_at(seconds_later: float) -> tuple[int, ...]:
        """Objects deleted (only rate-limit objects expire within a day here), LISTs (the
        sessions', revocations', mailed tokens', audit events' and rate limits'), DELETEs,
        GETs."""
        monkeypatch.setattr(cleanup, "CLOCK", lambda: started + seconds_later)
        monkeypatch.setattr(cleanup, "clock_lead", level_with_the_store)
        run = Run("cleanup")
        said = re.fullmatch(
            r"deleted (\d+) expired object\(s\) in \d+\.\d s \((\d+) list page\(s\), "
            r"(\d+) delete batch\(es\), (\d+) object read\(s\)\)\n",
            run.out,
        )
        assert run.code == 0 and run.err == "" and said, run
        return tuple(int(number) for number in said.groups())

    # Past the 60 s window of `login` (the address's budget), within register's 600 s: the
    # listing spares the reading of what is within its window; the address's budget, past
    # it, is read (the app may have been given a longer window than the command knows).
    # The host's limits, whose windows the command cannot know, are read (a GET each):
    # `api`'s client has its allowance back, `reports`' owes. One GET more: the end of
    # every session, whose sessions the sweep deletes.
    assert cleanup_at(120) == (2, 5, 1, 4)
    gone = ("login.address", "api")
    assert limit_objects(store) == {k: n for k, n in written.items() if k not in gone}
    assert cleanup_at(700) == (2, 5, 1, 4)
    assert limit_objects(store) == {"login.account": 1, "reports": 1}
    # The account's budget keeps its longest window, a day; `reports` was owed an hour.
    assert cleanup_at(86400 + 60) == (2, 5, 1, 3)
    assert limit_objects(store) == {}


# --demo -----------------------------------------------------------------------------------


def test_demo_flag_points_the_commands_at_the_demo_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("S3AUTH_STORE_URL", "S3AUTH_SECRET_KEY", "S3AUTH_REFRESH_COOKIE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    created = Run("--demo", "user", "create", "root", "--email", "root@example.com", "--admin",
                  "--password-stdin", stdin=PASSWORD)  # fmt: skip
    assert created.code == 0, created
    assert (tmp_path / ".s3auth-demo" / "secret").exists()
    assert "root" in Run("--demo", "user", "list").out
    assert Run("--demo", "check").code == 0
    # Without --demo the same command looks at S3AUTH_*, where there is no secret.
    assert Run("user", "list").code == failures.CONFIGURATION


def test_demo_command_without_uvicorn_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # makes `import uvicorn` fail
    run = Run("demo", "--dir", str(tmp_path / "d"))
    assert run.code == failures.CONFIGURATION
    assert run.err == "s3auth: the demo needs uvicorn: pip install 's3auth_asgi[demo]'\n"
    assert not (tmp_path / "d").exists()


def test_demo_command_serves_the_demo_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    for name in ("S3AUTH_STORE_URL", "S3AUTH_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.update(app=app, **options))
    run = Run("demo", "--host", "127.0.0.2", "--port", "8123", "--dir", str(tmp_path / "d"))
    assert run.code == 0, run
    assert (served["host"], served["port"]) == ("127.0.0.2", 8123)
    assert callable(served["app"])
    assert "http://127.0.0.2:8123/" in run.out
    assert "http://127.0.0.2:8123/auth/openapi.json" in run.out
    assert f"file://{(tmp_path / 'd' / 'store').resolve()}" in run.out
    assert (tmp_path / "d" / "secret").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("url", [None, "memory://", "MEMORY://", "Memory://auth"])
def test_commands_refuse_a_store_that_ends_with_them(
    url: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An unset S3AUTH_STORE_URL means memory://: a user "created" there, or a store "checked",
    # is gone when the command exits. A scheme is the same in any case.
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    if url is None:
        monkeypatch.delenv("S3AUTH_STORE_URL", raising=False)
    else:
        monkeypatch.setenv("S3AUTH_STORE_URL", url)
    created = Run(
        "user", "create", "root", "--email", "root@example.com", "--password-stdin",
        stdin="Secret-Pass-123\n",
    )  # fmt: skip
    assert (created.code, created.out) == (failures.CONFIGURATION, ""), created
    assert created.err == f"s3auth: {MEMORY_REFUSED}\n"
    checked = Run("check")
    assert checked.code == failures.CONFIGURATION, checked
    assert f"[FAIL] store: {MEMORY_REFUSED}\n" in checked.out


def test_check_prints_no_credentials_of_the_store_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    monkeypatch.setenv("S3AUTH_STORE_URL", "memory://key:PASSWORD-LEAK@host/auth?sig=SIG-LEAK")
    run = Run("check")
    assert "[ok]   configuration: store memory://host/auth," in run.out
    assert "LEAK" not in run.out + run.err, run
