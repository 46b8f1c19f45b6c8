"""The demo's state is the demo's own: `s3auth --demo …` (or `--demo-dir`) and `s3auth demo`
use the store, secret and keys of the demo's directory whatever S3AUTH_* says, so that an
operator whose shell holds the production settings does not make the demo's administrator
there; and what `s3auth demo` prints can be run as printed."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import FAST_HASHING
from test_app import assert_problem, client_for, register
from test_cli import PASSWORD, Run
from test_cli_failures import environment, s3auth

from s3auth_asgi import S3AuthService
from s3auth_asgi.cli import failures
from s3auth_asgi.demo.config import demo_settings
from s3auth_asgi.settings import new_secret_key

FAST_ENV = {f"S3AUTH_{k.upper()}": str(v) for k, v in FAST_HASHING.items()}


def production(tmp_path: Path) -> dict[str, str]:
    """What an operator's shell holds for the real service: its store, secret, keys and
    mail server."""
    return {
        "S3AUTH_STORE_URL": f"file://{tmp_path / 'production'}",
        "S3AUTH_SECRET_KEY": new_secret_key(),
        "S3AUTH_ALGORITHM": "ES256",
        "S3AUTH_SIGNING_KEY_FILE": str(tmp_path / "production-signing.pem"),
        "S3AUTH_KEY_ENCRYPTION_KEY": new_secret_key(),
        "S3AUTH_JWKS_PUBLISH_URL": f"file://{tmp_path / 'www' / 'jwks.json'}",
        "S3AUTH_SMTP_HOST": "smtp.production.example",
        "S3AUTH_SMTP_USERNAME": "production-mailer",
        "S3AUTH_SMTP_PASSWORD": "production-smtp-password",
        "S3AUTH_MAIL_FROM": "no-reply@production.example",
        "S3AUTH_PUBLIC_URL": "https://app.production.example",
    }


def demo_users(directory: Path) -> list[str]:
    service = S3AuthService(demo_settings(directory, FAST_ENV))

    async def names() -> list[str]:
        users, _ = await service.list_users()
        return [user.username for user in users]

    return anyio.run(names, backend="asyncio")


def test_demo_commands_never_reach_the_store_or_keys_of_the_environment(tmp_path: Path) -> None:
    env = environment(**production(tmp_path))
    demo = tmp_path / "demo"
    created = s3auth(
        "--demo", "--demo-dir", str(demo), "user", "create", "root",
        "--email", "root@example.com", "--admin", "--password-stdin",
        env=env, stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert (created.code, created.err) == (failures.OK, ""), created
    store = f"file://{(demo / 'store').resolve()}"
    assert created.out.startswith("created administrator root <root@example.com> id=")
    assert created.out.endswith(f" in {store}\n")
    assert not (tmp_path / "production").exists()
    assert not (tmp_path / "www").exists()
    assert demo_users(demo) == ["root"]  # under the demo's own secret
    # --demo-dir alone is the demo too: it never means the environment's store.
    checked = s3auth("--demo-dir", str(demo), "check", env=env)
    assert checked.code == failures.OK, checked
    assert f"[ok]   configuration: store {store}, HS256," in checked.out
    assert not (tmp_path / "production").exists()


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What `s3auth demo` would hand uvicorn, which is not started."""
    import uvicorn

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: seen.update(app=app, **options))
    return seen


def test_the_demo_command_serves_its_own_store_and_prints_a_hint_that_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: dict[str, Any]
) -> None:
    for name, value in (production(tmp_path) | FAST_ENV).items():
        monkeypatch.setenv(name, value)
    demo = tmp_path / "my demo"
    run = Run("demo", "--dir", str(demo), "--port", "8123")
    assert run.code == 0, run
    assert served["port"] == 8123
    # A URL, as S3AUTH_STORE_URL takes it: the space in the directory's name encoded.
    store = f"file://{(demo / 'store').resolve()}".replace(" ", "%20")
    assert f"  store:    {store}\n" in run.out
    assert f"  secret:   {(demo / 'secret').resolve()}\n" in run.out
    outbox = (demo / "outbox").resolve()
    assert f"  mail:     written to {outbox}, shown at the outbox link; none is sent\n" in run.out
    hint = f"s3auth --demo --demo-dir {shlex.quote(str(demo.resolve()))} user create NAME"
    assert f"  Make yourself an administrator: {hint} --email E --admin\n" in run.out
    assert not (tmp_path / "production").exists()
    # The hint, run as printed (from anywhere), makes the administrator of that demo.
    argv = [*shlex.split(hint)[1:4], "user", "create", "root", "--email", "r@example.com"]
    made = Run(*argv, "--admin", "--password-stdin", stdin=PASSWORD)
    assert made.code == 0, made
    assert demo_users(demo) == ["root"]


OUTBOX_LINK = re.compile(
    r"^  outbox:   (http://127\.0\.0\.1:8123/)#outbox=([A-Za-z0-9_-]{43})  \(", re.MULTILINE
)


def test_the_demo_prints_a_link_to_the_outbox_only_its_starter_sees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: dict[str, Any]
) -> None:
    """The outbox holds reset links: whoever else reaches the port (another user of the
    machine) must not read them. The key is made at each start and printed only: it is
    not kept in the demo's directory, where a start after this one would find it."""
    for name, value in FAST_ENV.items():
        monkeypatch.setenv(name, value)
    demo = tmp_path / "demo"
    keys = []
    for _ in range(2):
        run = Run("demo", "--dir", str(demo), "--port", "8123")
        assert run.code == 0, run
        link = OUTBOX_LINK.search(run.out)
        assert link is not None, run.out
        assert run.out.count(link[2]) == 1
        keys.append(link[2])
    assert keys[0] != keys[1]
    kept = [path.read_bytes() for path in demo.rglob("*") if path.is_file()]
    assert kept and not any(key.encode() in data for data in kept for key in keys)

    async def outbox() -> None:
        async with client_for(served["app"], base_url=link[1]) as client:
            await register(client, "alice")
            with anyio.fail_after(10):  # the mail goes out after the answer
                while not list((demo / "outbox").glob("*.json")):
                    await anyio.sleep(0.05)
            assert_problem(await client.get("/demo/outbox"), 404, "not_found")
            old = await client.get("/demo/outbox", headers={"Demo-Outbox-Key": keys[0]})
            assert_problem(old, 404, "not_found")
            shown = await client.get("/demo/outbox", headers={"Demo-Outbox-Key": keys[1]})
            assert shown.status_code == 200
            assert [m["to"] for m in shown.json()["messages"]] == ["alice@example.com"]

    anyio.run(outbox, backend="asyncio")


def test_the_demo_on_a_store_of_its_own_choosing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: dict[str, Any]
) -> None:
    for name, value in FAST_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    store = f"file://{tmp_path / 'elsewhere'}"
    run = Run("--demo-store", store, "demo")
    assert run.code == 0, run
    assert f"  store:    {store}\n" in run.out
    hint = f"s3auth --demo --demo-store {store} user create NAME --email E --admin"
    assert hint in run.out
    made = Run("--demo", "--demo-store", store, "user", "create", "root", "--email",
               "r@example.com", "--password-stdin", stdin=PASSWORD)  # fmt: skip
    assert made.code == 0, made
    assert made.out.endswith(f" in {store}\n")
    assert (tmp_path / "elsewhere").is_dir() and (tmp_path / ".s3auth-demo" / "secret").exists()


@pytest.mark.parametrize("port", ["0", "65536", "99999", "-1"])
def test_a_port_out_of_range_is_a_usage_error(
    port: str, tmp_path: Path, served: dict[str, Any]
) -> None:
    run = Run("demo", "--dir", str(tmp_path / "demo"), "--port", port)
    assert run.code == failures.USAGE, run
    assert f"argument --port: {port} is not a port: give 1 to 65535" in run.err
    assert served == {} and not (tmp_path / "demo").exists()


def test_an_empty_secret_file_says_what_to_do(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    demo.mkdir()
    (demo / "secret").write_text("")
    run = Run("--demo-dir", str(demo), "user", "list")
    assert run.code == failures.CONFIGURATION, run
    assert run.err == (
        f"s3auth: the demo's secret file {(demo / 'secret').resolve()} is empty or damaged: "
        "delete it and a new one is made (the demo's sessions then end)\n"
    )


def test_the_demo_in_a_directory_others_can_write_to_is_refused(
    tmp_path: Path, served: dict[str, Any]
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # noqa: S103  (open on purpose, as /tmp is)
    run = Run("demo", "--dir", str(shared))
    assert run.code == failures.CONFIGURATION, run
    assert run.err.startswith(f"s3auth: the demo's directory {shared} can be written to by ")
    assert served == {} and list(shared.iterdir()) == []
    made = Run("--demo-dir", str(shared), "user", "list")
    assert made.code == failures.CONFIGURATION and list(shared.iterdir()) == [], made


@pytest.mark.parametrize(("host", "page"), [("0.0.0.0", "127.0.0.1:8123"), ("::", "[::1]:8123")])  # noqa: S104
def test_served_on_every_interface_the_printed_links_still_open_the_page_and_outbox(
    host: str, page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: dict[str, Any]
) -> None:
    """`--host 0.0.0.0` (or `::`) listens on every address but names none a browser can
    open as this machine: the outbox answers a loopback Host only, and a Secure cookie is
    kept for http:// on loopback only. The links printed must lead to one that works."""
    for name, value in FAST_ENV.items():
        monkeypatch.setenv(name, value)
    run = Run("demo", "--dir", str(tmp_path / "demo"), "--host", host, "--port", "8123")
    assert run.code == 0, run
    assert served["host"] == host
    assert f"  page:     http://{page}/\n" in run.out
    link = re.search(r"^  outbox:   (\S+)/#outbox=(\S+)  \(", run.out, re.MULTILINE)
    assert link is not None and link[1] == f"http://{page}", run.out
    assert "every network interface" in run.out  # and says who else reaches it

    async def outbox() -> None:
        async with client_for(served["app"], base_url=link[1]) as client:
            shown = await client.get("/demo/outbox", headers={"Demo-Outbox-Key": link[2]})
            assert shown.status_code == 200, shown.text

    anyio.run(outbox, backend="asyncio")


@pytest.mark.parametrize(
    ("host", "rebound"),
    [("127.0.0.1", 421), ("localhost", 421), ("0.0.0.0", 201)],  # noqa: S104
)
def test_the_demo_on_loopback_refuses_a_page_that_rebinds_its_name_to_it(
    host: str, rebound: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: dict[str, Any]
) -> None:
    """On loopback, whoever reaches the port is this machine, or a page of another site in
    its browser that made its name resolve here; on another address, others are meant to
    reach it, by whatever name they know it."""
    for name, value in FAST_ENV.items():
        monkeypatch.setenv(name, value)
    run = Run("demo", "--dir", str(tmp_path / "demo"), "--host", host, "--port", "8123")
    assert run.code == 0, run

    async def register_as(name: str) -> int:
        async with client_for(served["app"], base_url="http://127.0.0.1:8123") as client:
            headers = {"Host": "attacker.example:8123"}
            response = await client.post(
                "/auth/register",
                json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
                headers=headers,
            )
            return response.status_code

    assert anyio.run(register_as, "mallory", backend="asyncio") == rebound
    assert demo_users(tmp_path / "demo") == ([] if rebound == 421 else ["mallory"])


def test_the_default_directory_of_an_earlier_version_is_kept_out_of_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: dict[str, Any]
) -> None:
    """An earlier version made ./.s3auth-demo without a .gitignore: the next start adds it,
    but never into a directory `--dir` names, which may be a project's own."""
    for name, value in FAST_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    named = tmp_path / "named"
    for directory in (tmp_path / ".s3auth-demo", named):
        directory.mkdir(mode=0o700)
        (directory / "secret").write_text(new_secret_key() + "\n")
        os.chmod(directory / "secret", 0o600)
    assert Run("demo", "--dir", str(named)).code == 0
    assert Run("--demo-dir", str(named), "user", "list").code == 0
    assert not (named / ".gitignore").exists()
    run = Run("demo")
    assert run.code == 0, run
    assert (tmp_path / ".s3auth-demo" / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (tmp_path / ".s3auth-demo" / ".gitignore").stat().st_mode & 0o777 == 0o600
