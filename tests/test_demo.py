"""The demo: its state directory, its settings, and the app behind `s3auth demo` — the page,
the three middlewares around the auth sub-app, restarts that keep users."""

from __future__ import annotations

import base64
import grp
import hashlib
import os
import pwd
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FAST_HASHING, SECRET
from mail_support import smtp_server
from test_app import PASSWORD, assert_problem, bearer, client_for, login, register
from test_app_totp import first_step, second_step, turn_on

from s3auth_asgi import S3AuthService
from s3auth_asgi.app import DEFAULT_AUTH_LIMITS
from s3auth_asgi.demo import config
from s3auth_asgi.demo.app import API_LIMIT, create_demo_app
from s3auth_asgi.demo.config import demo_settings, read_or_create_secret
from s3auth_asgi.demo.devices import device_name
from s3auth_asgi.errors import ConfigurationError
from s3auth_asgi.totp import totp

pytestmark = pytest.mark.anyio


LOCAL = "https://localhost"
"""Where a test reaches the demo: it answers this machine's names alone (`loopback`)."""


def demo_service(directory: Path, **env: str) -> S3AuthService:
    environ = {f"S3AUTH_{k.upper()}": str(v) for k, v in FAST_HASHING.items()} | env
    return S3AuthService(demo_settings(directory, environ))


def test_the_secret_is_created_once_private_and_kept(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    first = read_or_create_secret(directory)
    assert len(first) >= 32
    secret_file = directory / "secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert read_or_create_secret(directory) == first
    assert read_or_create_secret(tmp_path / "other") != first


def test_a_secret_another_process_makes_meanwhile_is_the_one_both_keep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two first starts at once: the second reads the file while the first is making its
    # secret. It must read a whole secret, never an empty or half-written file.
    directory = tmp_path / "demo"
    meanwhile: list[str] = []
    make = config.new_secret_key

    def racing() -> str:
        if not meanwhile:
            meanwhile.append("")  # the other process's turn comes once
            meanwhile[0] = read_or_create_secret(directory)
        return make()

    monkeypatch.setattr(config, "new_secret_key", racing)
    kept = read_or_create_secret(directory)
    assert len(kept) >= 32 and meanwhile == [kept]
    assert (directory / "secret").read_text() == kept + "\n"
    assert sorted(path.name for path in directory.iterdir()) == [".gitignore", "secret"]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
async def test_what_the_demo_keeps_in_a_project_is_never_offered_for_a_commit(
    tmp_path: Path,
) -> None:
    """`s3auth demo` run in a project makes ./.s3auth-demo there: its secret signs every
    token, its store holds password hashes, its outbox working reset links; a `git add .`
    must not take them."""
    project = tmp_path / "project"
    project.mkdir()
    git = ["git", "-C", str(project)]
    subprocess.run([*git, "init", "-q"], check=True)
    service = demo_service(project / ".s3auth-demo")
    await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    await service.request_password_reset("root")
    await service.mail.drain()
    (project / "app.py").write_text("")
    status = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=all"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert status.stdout.splitlines() == ["?? app.py"]
    # What the demo keeps is all there, and not one object short.
    assert len(list((project / ".s3auth-demo" / "outbox").iterdir())) == 1
    assert (project / ".s3auth-demo" / "secret").is_file()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that takes nothing away: what the demo keeps private, it makes so itself."""
    before = os.umask(0)
    try:
        yield
    finally:
        os.umask(before)


@pytest.mark.usefixtures("open_umask")
async def test_in_an_open_directory_what_the_demo_keeps_is_private(tmp_path: Path) -> None:
    # `--dir` naming a directory that exists, readable by all (as a project's is).
    directory = tmp_path / "demo"
    directory.mkdir()
    os.chmod(directory, 0o755)  # noqa: S103  (readable by all on purpose)
    service = demo_service(directory)
    await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    await service.request_password_reset("root")
    await service.mail.drain()
    assert sorted(path.name for path in directory.iterdir()) == ["outbox", "secret", "store"]
    assert mode(directory / "store") == mode(directory / "outbox") == 0o700
    assert mode(directory / "secret") == 0o600
    assert {mode(path) for path in (directory / "outbox").iterdir()} == {0o600}
    assert mode(directory) == 0o755  # the directory given is its owner's to open or close


@pytest.mark.usefixtures("open_umask")
def test_what_was_left_open_is_closed_at_the_next_start(tmp_path: Path) -> None:
    # What an older version's start left, or someone by hand: the store readable by all, its
    # objects too, the outbox and the secret as well.
    directory = tmp_path / "demo"
    (directory / "store" / "users").mkdir(parents=True)
    (directory / "store" / "users" / "u.json").write_text("{}")
    (directory / "outbox").mkdir()
    (directory / "secret").write_text(SECRET + "\n")
    for path, opened in (("", 0o755), ("store", 0o755), ("outbox", 0o755), ("secret", 0o644)):
        os.chmod(directory / path, opened)
    os.chmod(directory / "store" / "users" / "u.json", 0o644)
    assert demo_settings(directory, {}).secret_key == SECRET
    assert mode(directory / "store") == mode(directory / "outbox") == 0o700
    assert mode(directory / "secret") == 0o600
    # Within the store, closed to others by its directory, the objects are the store's.
    assert mode(directory / "store" / "users" / "u.json") == 0o644


@pytest.mark.parametrize("open_mode", [0o777, 0o1777, 0o703, 0o770])
def test_a_directory_others_can_write_to_is_refused(tmp_path: Path, open_mode: int) -> None:
    """Whoever can write there could put their own `secret` (and sign an administrator's
    tokens), their own store, or take the outbox's place before the demo makes them."""
    directory = tmp_path / "shared"
    directory.mkdir()
    os.chmod(directory, open_mode)
    if open_mode & 0o020:
        os.chown(directory, -1, others_group())
    with pytest.raises(ConfigurationError) as refused:
        demo_settings(directory, {})
    assert str(refused.value) == (
        f"the demo's directory {directory} can be written to by other users (mode "
        f"{open_mode:o}): whoever can could put a secret or a store of their own there. "
        "Point --dir (or --demo-dir) at a directory only you can write to, or at a new one, "
        "which the demo makes"
    )
    assert list(directory.iterdir()) == []


def others_group() -> int:
    """A group of the machine that is not the user's own private one."""
    if os.geteuid() != 0:
        pytest.skip("changing a directory's group to one of others needs root")
    return grp.getgrnam("adm").gr_gid


def test_a_group_writable_directory_of_the_users_own_group_is_accepted(tmp_path: Path) -> None:
    # Where every user has a group of their own (umask 002), their directories are
    # group-writable: that group is theirs alone.
    me = pwd.getpwuid(os.geteuid())
    if grp.getgrgid(me.pw_gid).gr_name != me.pw_name:
        pytest.skip("the user has no group of their own here")
    directory = tmp_path / "demo"
    directory.mkdir()
    os.chown(directory, -1, me.pw_gid)
    os.chmod(directory, 0o775)  # noqa: S103  (the group is the user's own)
    assert demo_settings(directory, {}).secret_key == (directory / "secret").read_text().strip()


@pytest.mark.parametrize("planted", ["", "secret", "store", "outbox"])
def test_what_another_user_owns_is_refused(tmp_path: Path, planted: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("making a file of another user needs root")
    directory = tmp_path / "demo"
    directory.mkdir(mode=0o755)
    path = directory / planted
    if planted == "secret":
        path.write_text(SECRET + "\n")
    elif planted:
        path.mkdir(mode=0o700)
    nobody = pwd.getpwnam("nobody")
    os.chown(path, nobody.pw_uid, nobody.pw_gid)
    with pytest.raises(ConfigurationError) as refused:
        demo_settings(directory, {})
    assert str(refused.value).startswith(f"the demo's {path} belongs to another user (nobody)")


@pytest.mark.parametrize("through", ["demo", "link/demo"])
def test_a_link_another_user_planted_on_the_way_is_refused(tmp_path: Path, through: str) -> None:
    """In a shared directory (/tmp) another user may put a symbolic link where the demo's
    directory will be, or on the way to it, before the demo starts: it would keep the
    secret, the store and the outbox wherever they point it, under a directory of theirs
    that they can swap for their own while the demo runs."""
    if os.geteuid() != 0:
        pytest.skip("making a link of another user needs root")
    nobody = pwd.getpwnam("nobody")
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # noqa: S103  (as /tmp is)
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, nobody.pw_uid, nobody.pw_gid)
    link = shared / through.split("/")[0]
    link.symlink_to(theirs / "demo" if through == "demo" else theirs)
    os.lchown(link, nobody.pw_uid, nobody.pw_gid)
    with pytest.raises(ConfigurationError) as refused:
        demo_settings(shared / through, {})
    assert str(refused.value) == (
        f"the demo's directory {shared / through} is reached through {link}, a symbolic link "
        "another user (nobody) can point elsewhere at any time. Give the demo a directory "
        "of your own (--dir, --demo-dir)"
    )
    assert list(theirs.iterdir()) == []
    # A link of the user's own is theirs to follow; so is one of the directory's owner,
    # who could replace it anyway (as a `--dir` under a directory of theirs).
    os.chown(shared, nobody.pw_uid, nobody.pw_gid)
    assert demo_settings(shared / through, {}).store_url.startswith(f"file://{theirs}/demo/")
    os.chown(shared, 0, 0)
    os.lchown(link, os.geteuid(), os.getegid())
    assert demo_settings(shared / through, {}).store_url.startswith(f"file://{theirs}/demo/")


def test_the_store_secret_and_keys_are_the_directorys_whatever_the_environment(
    tmp_path: Path,
) -> None:
    # An operator's shell may hold the production settings: the demo must not use them.
    environ = {
        "S3AUTH_STORE_URL": f"file://{tmp_path / 'production'}",
        "S3AUTH_SECRET_KEY": SECRET,
        "S3AUTH_ALGORITHM": "ES256",
        "S3AUTH_SIGNING_KEY_FILE": str(tmp_path / "signing.pem"),
        "S3AUTH_VERIFICATION_KEYS_FILE": str(tmp_path / "old.pem"),
        "S3AUTH_KEY_ENCRYPTION_KEY": SECRET,
        "S3AUTH_JWKS_PUBLISH_URL": f"file://{tmp_path / 'www' / 'jwks.json'}",
        "S3AUTH_REFRESH_COOKIE": "false",
        "S3AUTH_ARGON2_MEMORY_KIB": "1024",
    }
    settings = demo_settings(tmp_path / "demo", environ)
    assert settings.store_url == f"file://{(tmp_path / 'demo' / 'store').resolve()}"
    assert settings.secret_key == (tmp_path / "demo" / "secret").read_text().strip()
    assert settings.algorithm == "HS256"
    assert settings.signing_key == settings.signing_key_file == ""
    assert settings.verification_keys_file == settings.key_encryption_key == ""
    assert settings.jwks_publish_url == ""
    # The rest is the environment's to tune; the demo defaults to browser mode.
    assert settings.refresh_cookie is False and settings.argon2_memory_kib == 1024
    assert demo_settings(tmp_path / "demo", {}).refresh_cookie is True
    # A store chosen for the demo (`--demo-store`) keeps the directory's secret.
    elsewhere = demo_settings(tmp_path / "demo", environ, store_url="s3://bucket/demo")
    assert elsewhere.store_url == "s3://bucket/demo"
    assert elsewhere.secret_key == settings.secret_key


def test_the_environments_fallback_secret_keys_are_not_the_demos(tmp_path: Path) -> None:
    # A production shell mid-rotation holds its earlier key: the demo would take what that
    # key signed (its HS256 tokens, links, cookies) and open the seeds it sealed.
    settings = demo_settings(tmp_path / "demo", {"S3AUTH_SECRET_KEY_FALLBACKS": SECRET})
    assert settings.secret_key_fallbacks == []
    assert len(S3AuthService(settings).tokens.key_set()) == 1


@pytest.mark.parametrize("name", ["a%41b", "%2e%2e", "a#b", "a?b", "a b", "a%b", "\udcff"])
async def test_the_demo_store_is_in_its_directory_whatever_the_directory_is_called(
    tmp_path: Path, name: str
) -> None:
    """`%41` in a name must not become `A` in the store's path, nor `%2e%2e` become `..`."""
    directory = tmp_path / "parent" / name
    service = S3AuthService(demo_settings(directory, {}))
    await service.store.create("probe.json", {"n": 1})
    assert (directory / "store" / "probe.json").is_file()
    assert [p.name for p in (tmp_path / "parent").iterdir()] == [name]


async def test_the_page_is_served_with_a_policy_that_admits_only_its_own_script(
    tmp_path: Path,
) -> None:
    async with client_for(create_demo_app(demo_service(tmp_path)), base_url=LOCAL) as client:
        response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    for needed in (
        "register-form",
        "login-form",
        "sessions",
        "logout-all",
        "hammer",
        "admin-users",
        "notice",
        "fetch(",
        "/api/sessions",
    ):
        assert needed in html
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", html)  # all inlined, no CDN
    policy = response.headers["content-security-policy"]
    # The script and the style sheet, inlined from demo.js and demo.css, by their hashes.
    for kind in ("script", "style"):
        (inlined,) = re.findall(rf"<{kind}>(.*?)</{kind}>", html, flags=re.DOTALL)
        digest = base64.b64encode(hashlib.sha256(inlined.encode()).digest()).decode()
        assert f"{kind}-src 'sha256-{digest}';" in policy
    assert "'self'" not in policy.split("script-src")[1].split(";")[0]
    assert "connect-src 'self'" in policy and "default-src 'none'" in policy
    assert not re.search(r"\son\w+=", html)  # no inline event handlers: the policy forbids them


async def test_the_demo_app_wraps_the_auth_app_in_the_three_middlewares(tmp_path: Path) -> None:
    service = demo_service(tmp_path)
    app = create_demo_app(service)
    async with client_for(app, base_url=LOCAL) as client:
        # BearerTokenMiddleware protects /api/*.
        assert_problem(await client.get("/api/hello"), 401, "authentication_required")
        await register(client, "alice")
        login = await client.post("/auth/login", data={"username": "alice", "password": PASSWORD})
        assert login.status_code == 200
        assert "refresh_token" not in login.json()  # browser mode: the cookie has it
        tokens = login.json()
        hello = await client.get("/api/hello", headers=bearer(tokens))
        assert hello.json()["message"] == "Hello, alice!"
        assert hello.headers["ratelimit"].startswith('"api"')  # RateLimitMiddleware
        sessions = await client.get("/auth/sessions", headers=bearer(tokens))
        assert len(sessions.json()["sessions"]) == 1
        refreshed = await client.post("/auth/refresh", headers={"Origin": LOCAL})
        assert refreshed.status_code == 200, refreshed.text
        assert (await client.post("/auth/logout-all", headers=bearer(tokens))).status_code == 200
        # BlacklistMiddleware: the revoked token no longer reaches /api.
        assert_problem(await client.get("/api/hello", headers=bearer(tokens)), 401, "token_revoked")
        # A stale token must not keep anyone from logging in again.
        again = await client.post(
            "/auth/login",
            data={"username": "alice", "password": PASSWORD},
            headers=bearer(tokens),
        )
        assert again.status_code == 200


async def test_a_stale_token_keeps_no_one_from_the_second_step_of_a_login(
    tmp_path: Path,
) -> None:
    service = demo_service(tmp_path)
    async with client_for(create_demo_app(service), base_url=LOCAL) as client:
        await register(client, "alice")
        tokens = await login(client, "alice")
        seed = await turn_on(client, service, "alice")
        assert (await client.post("/auth/logout-all", headers=bearer(tokens))).status_code == 200
        token = await first_step(client, "alice", **bearer(tokens))
        # The code of the next step: the one that turned the factor on is spent.
        code = totp(seed, service.clock() + 30)
        answer = await second_step(client, token, code, Origin=LOCAL, **bearer(tokens))
        assert answer.status_code == 200, answer.text


async def test_hammering_login_gets_429(tmp_path: Path) -> None:
    per_account = DEFAULT_AUTH_LIMITS["login_account"].max_requests
    async with client_for(create_demo_app(demo_service(tmp_path)), base_url=LOCAL) as client:
        statuses = [
            (
                await client.post("/auth/login", data={"username": "x", "password": "Wrong123!"})
            ).status_code
            for _ in range(per_account + 2)
        ]
    assert statuses == [401] * per_account + [429] * 2


async def test_the_demo_counts_logins_in_its_store(tmp_path: Path) -> None:
    """The demo runs on file://, so its login limits are shared (S3AUTH_RATE_LIMIT_STORE
    defaults to store there): a second process on the same directory sees the count."""
    per_account = DEFAULT_AUTH_LIMITS["login_account"].max_requests
    wrong = {"username": "alice", "password": "Wrong123!"}
    first, second = demo_service(tmp_path), demo_service(tmp_path)
    assert first.settings.rate_limit_backend == "store"
    async with client_for(create_demo_app(first), base_url=LOCAL) as client:
        for _ in range(per_account):
            assert (await client.post("/auth/login", data=wrong)).status_code == 401
    async with client_for(create_demo_app(second), base_url=LOCAL, peer=("192.0.2.9", 1)) as client:
        assert_problem(await client.post("/auth/login", data=wrong), 429, "rate_limited")
    assert [i.key async for i in first.store.list("ratelimit/")]


async def test_the_api_limit_applies_to_api_paths(tmp_path: Path) -> None:
    service = demo_service(tmp_path)
    async with client_for(create_demo_app(service), base_url=LOCAL) as client:
        statuses = {
            (await client.get("/api/hello")).status_code for _ in range(API_LIMIT.max_requests)
        }
        assert statuses == {401}
        assert_problem(await client.get("/api/hello"), 429, "rate_limited")
        assert (await client.get("/")).status_code == 200


async def test_a_restart_keeps_users_and_sessions(tmp_path: Path) -> None:
    async with client_for(create_demo_app(demo_service(tmp_path)), base_url=LOCAL) as client:
        await register(client, "alice")
        login = await client.post("/auth/login", data={"username": "alice", "password": PASSWORD})
        tokens = login.json()
    # A new process: new service, same directory, same secret.
    async with client_for(create_demo_app(demo_service(tmp_path)), base_url=LOCAL) as client:
        me = await client.get("/auth/me", headers=bearer(tokens))
        assert me.json()["username"] == "alice"
        relogin = await client.post("/auth/login", data={"username": "alice", "password": PASSWORD})
        assert relogin.status_code == 200


FIREFOX_ON_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
)


@pytest.mark.parametrize(
    ("user_agent", "shown"),
    [
        (FIREFOX_ON_WINDOWS, "Firefox on Windows"),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Safari/537.36",
            "Chrome on Linux",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Mobile Safari on iOS",
        ),
        ("python-httpx/0.28.1", "python-httpx"),
        ("curl/8.5.0", "curl"),
        ("x" * 500, "x" * 40),
        ("", "Unknown device"),
        ("   ", "Unknown device"),
        (None, "Unknown device"),
    ],
)
def test_a_device_is_named_as_a_person_reads_it(user_agent: str | None, shown: str) -> None:
    assert device_name(user_agent) == shown


async def test_the_sessions_endpoint_names_each_device(tmp_path: Path) -> None:
    async with client_for(create_demo_app(demo_service(tmp_path)), base_url=LOCAL) as client:
        assert_problem(await client.get("/api/sessions"), 401, "authentication_required")
        await register(client, "alice")
        here = await login(client, "alice", user_agent=FIREFOX_ON_WINDOWS)
        await login(client, "alice", user_agent="curl/8.5.0")
        response = await client.get("/api/sessions", headers=bearer(here))
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        listed = response.json()["sessions"]
        # What /auth/sessions lists, in its order, each with the device named.
        auth = (await client.get("/auth/sessions", headers=bearer(here))).json()["sessions"]
        assert [{k: v for k, v in s.items() if k != "device"} for s in listed] == auth
        assert [(s["device"], s["device_info"], s["current"]) for s in listed] == [
            ("curl", "curl/8.5.0", False),
            ("Firefox on Windows", FIREFOX_ON_WINDOWS, True),
        ]


async def test_a_weak_password_is_refused_with_every_rule_it_breaks(tmp_path: Path) -> None:
    """The page lists them beside the password field, from the problem's `errors`."""
    async with client_for(create_demo_app(demo_service(tmp_path)), base_url=LOCAL) as client:
        response = await client.post(
            "/auth/register",
            json={"username": "alice", "email": "alice@example.com", "password": "kwtpfx"},
        )
    problem = assert_problem(response, 422, "weak_password")
    assert problem["errors"] == [
        "The password must be at least 8 characters",
        "The password needs an upper-case letter",
        "The password needs a digit",
    ]
    assert all(rule in problem["detail"] for rule in problem["errors"])


OUTBOX_KEY = "4mI3x0vqkP7Y2bTqJpV0mS9wLr6cN1dHfE8uAoZsQyG"
"""What `s3auth demo` makes at each start and prints, in the link to the page's outbox."""
KEY_HEADER = "Demo-Outbox-Key"


def with_key(key: str = OUTBOX_KEY) -> dict[str, str]:
    return {KEY_HEADER: key}


async def test_a_local_user_who_knows_only_the_url_cannot_take_over_an_account(
    tmp_path: Path,
) -> None:
    """On a machine several people use, any of them reaches the demo on 127.0.0.1: the
    outbox's reset links must not be theirs to read, the administrator's above all."""
    service = demo_service(tmp_path)
    await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    app = create_demo_app(service)
    async with client_for(app, base_url="http://127.0.0.1:8000") as someone:
        forgot = await someone.post("/auth/password/forgot", json={"username": "root"})
        assert forgot.status_code == 202
        await service.mail.drain()
        assert [m.kind for m in service.mail.mailer.messages()] == ["password_reset"]
        # Without the key the demo printed, the outbox is a path like any unknown one.
        assert_problem(await someone.get("/demo/outbox"), 404, "not_found")
        await login(someone, "root")


async def test_the_outbox_is_read_with_the_key_of_this_start_only(tmp_path: Path) -> None:
    service = demo_service(tmp_path)
    app = create_demo_app(service, outbox_key=OUTBOX_KEY)
    async with client_for(app, base_url="http://127.0.0.1:8000") as client:
        await register(client, "alice")
        await service.mail.drain()
        refused: list[Any] = [
            {},
            with_key(""),
            with_key(OUTBOX_KEY[:-1]),
            with_key(OUTBOX_KEY + "A"),
            with_key(OUTBOX_KEY.lower()),
            {KEY_HEADER: "\u00e9".encode("latin-1") * 43},  # not ASCII: refused, not a 500
            {KEY_HEADER: b"\xff" + OUTBOX_KEY.encode()[1:]},
            [(KEY_HEADER, "wrong"), (KEY_HEADER, OUTBOX_KEY)],  # which one is meant?
            [(KEY_HEADER, OUTBOX_KEY), (KEY_HEADER, OUTBOX_KEY)],
            {"Authorization": f"Bearer {OUTBOX_KEY}"},
        ]
        for headers in refused:
            assert_problem(await client.get("/demo/outbox", headers=headers), 404, "not_found")
        # Not from the URL either, where access logs and the history would keep it.
        for query in (f"key={OUTBOX_KEY}", f"outbox={OUTBOX_KEY}"):
            assert_problem(await client.get(f"/demo/outbox?{query}"), 404, "not_found")
        shown = await client.get("/demo/outbox", headers=with_key())
        assert shown.status_code == 200
        assert shown.headers["cache-control"] == "no-store"
        assert [m["kind"] for m in shown.json()["messages"]] == ["email_verification"]
    # Another start of the demo on the same directory has a key of its own.
    again = create_demo_app(demo_service(tmp_path), outbox_key=OUTBOX_KEY[::-1])
    async with client_for(again, base_url="http://127.0.0.1:8000") as client:
        assert_problem(await client.get("/demo/outbox", headers=with_key()), 404, "not_found")
        assert (await client.get("/demo/outbox", headers=with_key(OUTBOX_KEY[::-1]))).is_success


async def test_the_demo_mails_to_an_outbox_its_page_shows(tmp_path: Path) -> None:
    service = demo_service(tmp_path)
    assert service.settings.mail_outbox == str(tmp_path.resolve() / "outbox")
    app = create_demo_app(service, outbox_key=OUTBOX_KEY)
    async with client_for(app, base_url="https://localhost") as client:
        await register(client, "alice")
        forgot = await client.post("/auth/password/forgot", json={"username": "alice"})
        assert forgot.status_code == 202
        await service.mail.drain()
        outbox = (await client.get("/demo/outbox", headers=with_key())).json()["messages"]
        assert [m["kind"] for m in outbox] == ["password_reset", "email_verification"]
        link = re.search(r"(/reset-password)#token=(\S+)", outbox[0]["text"])
        assert link is not None
        page = await client.get(link[1])  # the link leads to the page, which reads the token
        assert page.status_code == 200 and "reset-form" in page.text
        reset = await client.post(
            "/auth/password/reset", json={"token": link[2], "new_password": "Brand-new-pass-7"}
        )
        assert reset.status_code == 204
    # Served on another interface, the outbox is this machine's alone, key or not.
    network = create_demo_app(service, outbox_key=OUTBOX_KEY, host="0.0.0.0")  # noqa: S104
    remote = client_for(network, base_url="https://demo.lan", peer=("203.0.113.9", 40000))
    async with remote as client:
        assert_problem(await client.get("/demo/outbox", headers=with_key()), 404, "not_found")
        await login(client, "alice", "Brand-new-pass-7")
    # A page of another site whose name it made resolve to 127.0.0.1 (DNS rebinding) is
    # read by the browser as that site's: it sends that name as Host. On loopback no path
    # answers it (test_demo_host); served to the network, the outbox still does not.
    for host in ("attacker.example", "127.0.0.1.attacker.example"):
        async with client_for(network, base_url=f"http://{host}:8000") as rebound:
            response = await rebound.get("/demo/outbox", headers=with_key())
            assert_problem(response, 404, "not_found")
    for host in ("127.0.0.1:8000", "[::1]:8000", "localhost:8000"):
        async with client_for(app, base_url=f"http://{host}") as local:
            assert (await local.get("/demo/outbox", headers=with_key())).status_code == 200, host


def test_the_mail_settings_are_the_demos_whatever_the_environment(tmp_path: Path) -> None:
    # A shell set up for a service holds its mail server: the demo must not send through it.
    environ = {
        "S3AUTH_SMTP_HOST": "smtp.production.example",
        "S3AUTH_SMTP_PORT": "587",
        "S3AUTH_SMTP_USERNAME": "production-mailer",
        "S3AUTH_SMTP_PASSWORD": "production-smtp-password",
        "S3AUTH_MAIL_FROM": "no-reply@production.example",
        "S3AUTH_MAIL_OUTBOX": str(tmp_path / "production-outbox"),
        "S3AUTH_PUBLIC_URL": "https://app.production.example",
    }
    settings = demo_settings(tmp_path / "demo", environ)
    assert settings.mail_outbox == str((tmp_path / "demo" / "outbox").resolve())
    assert settings.mail_from == config.DEMO_SENDER
    assert settings.smtp_host == settings.smtp_username == settings.smtp_password == ""
    assert settings.smtp_port == 0
    assert settings.public_url == ""  # the links lead to the demo's page, not the service's


def test_the_demos_administration_asks_for_no_recent_login(tmp_path: Path) -> None:
    # Its page does not answer RFC 9470's challenge (it refreshes and fails again): a shell
    # that asks a service's administrators for one must not leave the demo's page stuck.
    environ = {"S3AUTH_ADMIN_MAX_AGE_SECONDS": "300"}
    assert demo_settings(tmp_path / "demo", environ).admin_max_age_seconds == 0


async def test_the_demo_sends_no_mail_through_the_environments_server(tmp_path: Path) -> None:
    with smtp_server() as server:
        service = demo_service(
            tmp_path / "demo",
            S3AUTH_SMTP_HOST=server.host,
            S3AUTH_SMTP_PORT=str(server.port),
            S3AUTH_SMTP_SECURITY="none",
            S3AUTH_MAIL_FROM="no-reply@production.example",
            S3AUTH_PUBLIC_URL="https://app.production.example",
        )
        app = create_demo_app(service, outbox_key=OUTBOX_KEY)
        async with client_for(app, base_url="https://localhost") as client:
            await register(client, "alice")
            forgot = await client.post("/auth/password/forgot", json={"username": "alice"})
            assert forgot.status_code == 202
            await service.mail.drain()
            outbox = (await client.get("/demo/outbox", headers=with_key())).json()["messages"]
    assert server.inbox.messages == []
    assert [m["kind"] for m in outbox] == ["password_reset", "email_verification"]
    assert outbox[0]["text"].count("\n/reset-password#token=") == 1


async def test_every_answer_of_the_demo_says_its_type_is_meant_and_the_personal_ones_are_not_kept(
    tmp_path: Path,
) -> None:
    """As every answer of the auth app (ASVS 5.0 V3.4.4): the demo's own too, the outbox's
    reset links and the protected endpoints an application copies among them. Those that
    show an account, its sessions or mail are not kept by any cache, as the auth app's."""
    service = demo_service(tmp_path)
    app = create_demo_app(service, outbox_key=OUTBOX_KEY)
    async with client_for(app, base_url="http://127.0.0.1:8000") as client:
        await register(client, "alice")
        await service.mail.drain()
        tokens = await login(client, "alice")
        personal = {
            "/api/hello": await client.get("/api/hello", headers=bearer(tokens)),
            "/api/sessions": await client.get("/api/sessions", headers=bearer(tokens)),
            "/demo/outbox": await client.get("/demo/outbox", headers=with_key()),
        }
        others = {
            "/": await client.get("/"),
            "HEAD /reset-password": await client.head("/reset-password"),
            "POST /": await client.post("/"),
            "/nowhere": await client.get("/nowhere"),
            "/api/nowhere": await client.get("/api/nowhere", headers=bearer(tokens)),
            "/api/hello without a token": await client.get("/api/hello"),
            "/demo/outbox without the key": await client.get("/demo/outbox"),
            "/auth/nowhere": await client.get("/auth/nowhere"),
        }
    statuses = [answer.status_code for answer in (*personal.values(), *others.values())]
    assert statuses == [200, 200, 200, 200, 200, 405, 404, 404, 401, 404, 404]
    for name, answer in {**personal, **others}.items():
        assert answer.headers.get_list("x-content-type-options") == ["nosniff"], name
    for name, answer in personal.items():
        assert answer.headers.get_list("cache-control") == ["no-store"], name
