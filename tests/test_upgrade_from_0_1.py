"""A store written by s3auth_asgi 0.1, served by this version: what its users had keeps
working, and what was ended stays ended.

`data/store_0_1.json` holds every object 0.1's own code left on a `file://` store (made by
`data/make_store_0_1.py` against a checkout of 0.1; the module says how): an administrator,
users registered through the app, a disabled one, a deleted one, one whose address changed,
one imported with a bcrypt hash; live, rotated and logged-out sessions, a logout everywhere,
a revoked token id, and the shared rate-limit state of the login and registration limits.
Each test writes those objects back, with the times they were written, and runs this
version's service, app and command against them on a clock a minute past 0.1's last write.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from conftest import FAST_HASHING
from support import Clock, asgi_client, bearer
from test_cli import Run

from s3auth_asgi import S3AuthService, S3AuthSettings, TokenRevokedError
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.cli import failures
from s3auth_asgi.identifiers import fold, username_skeleton
from s3auth_asgi.models import User
from s3auth_asgi.storage import ObjectStore, keys

pytestmark = pytest.mark.anyio

OLD = json.loads((Path(__file__).parent / "data" / "store_0_1.json").read_text("utf-8"))
USERS: dict[str, dict[str, str]] = OLD["users"]
ACCESS: dict[str, str] = OLD["tokens"]["access"]
REFRESH: dict[str, str] = OLD["tokens"]["refresh"]
DAY = 86_400


def write_old_store(root: Path) -> str:
    """The objects 0.1 wrote, byte for byte, each last modified when 0.1 wrote it."""
    for key, stored in OLD["objects"].items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(stored["body"].encode("utf-8"))
        os.utime(path, (stored["written"], stored["written"]))
    return f"file://{root}"


class Old:
    """This version's service and app over the old store, a minute after 0.1's last write."""

    def __init__(self, root: Path) -> None:
        self.url = write_old_store(root)
        self.root = root
        self.clock = Clock()
        self.clock.now = OLD["t0"] + 60
        # The secret 0.1 signed with, and its hashing parameters (the defaults then and now).
        settings = S3AuthSettings(store_url=self.url, secret_key=OLD["secret"])
        self.service = S3AuthService(settings, clock=self.clock)

    def client(self, **options: Any) -> httpx.AsyncClient:
        return asgi_client(create_auth_app(self.service, **options))


@pytest.fixture
def old(tmp_path: Path) -> Old:
    return Old(tmp_path / "store")


def user_id(name: str) -> str:
    return USERS[name]["id"]


async def status_of_me(client: httpx.AsyncClient, access_token: str) -> tuple[int, str]:
    answer = await client.get("/me", headers=dict(bearer(access_token)))
    return answer.status_code, answer.json().get("code", "") if answer.status_code != 200 else ""


async def test_old_access_tokens_are_accepted_or_refused_as_0_1_left_them(old: Old) -> None:
    async with old.client() as client:
        for live in ("alice-laptop", "bob"):
            assert await status_of_me(client, ACCESS[live]) == (200, ""), live
        # A logged-out session, a revoked token id, a logout everywhere: refused as in 0.1.
        assert await status_of_me(client, ACCESS["alice-phone"]) == (401, "token_revoked")
        assert await status_of_me(client, ACCESS["root-jti-revoked"]) == (401, "token_revoked")
        assert await status_of_me(client, ACCESS["bob-before-logout-all"]) == (
            401,
            "token_revoked",
        )
        # A disabled account's token: refused (0.1 revoked it when the account was disabled).
        assert (await status_of_me(client, ACCESS["carol"]))[0] == 401


async def test_a_0_1_logout_everywhere_refuses_only_the_sessions_it_ended(old: Old) -> None:
    """0.1's `user` entry has no body: it ends every session of the user opened up to its
    time, which its key holds. Bob's session opened after it stays good."""
    service = old.service
    await service.blacklist.sync()
    with pytest.raises(TokenRevokedError, match="The user's tokens have been revoked"):
        service.decode_token(ACCESS["bob-before-logout-all"])
    assert service.decode_token(ACCESS["bob"])["sub"] == user_id("bob")
    # Read from its key alone, as 0.1 wrote it: no GET of a body (the one
    # GET is of the end of every session, as at every sync).
    assert service.store.requests["get"] == 1
    # A login here on a clock behind the host that wrote it still opens a session younger
    # than the cut-off, whose tokens are good.
    old.clock.now = OLD["t0"] + 13
    user = await service.authenticate_user("bob", USERS["bob"]["password"])
    assert user is not None
    pair = await service.create_token_pair(user)
    assert service.decode_token(pair.access_token)["sub"] == user_id("bob")


async def test_old_passwords_log_in_and_refused_accounts_stay_refused(old: Old) -> None:
    async with old.client() as client:

        async def login(identifier: str, name: str) -> int:
            body = {"username": identifier, "password": USERS[name]["password"]}
            return (await client.post("/login", json=body)).status_code

        assert await login("root", "root") == 200
        assert await login("ALICE", "alice") == 200
        assert await login("alice@example.com", "alice") == 200
        assert await login("émilie", "Émilie") == 200
        assert await login("emilie.zola@example.org", "Émilie") == 200
        assert await login("emilie@example.org", "Émilie") == 401  # the address given up
        assert await login("carol.smith@example.com", "carol") == 401  # disabled
        assert await login("frank", "frank") == 401  # deleted
        # The imported bcrypt hash logs in, and is replaced by an argon2id one.
        assert await login("dave", "dave") == 200
    found = await old.service.store.get(keys.user(user_id("dave")), User)
    assert found is not None and found.value.hashed_password.startswith("$argon2id$")


async def test_old_refresh_tokens_refresh_and_ended_ones_stay_ended(old: Old) -> None:
    async with old.client() as client:

        async def refresh(name: str) -> tuple[int, str]:
            answer = await client.post("/refresh", json={"refresh_token": REFRESH[name]})
            return answer.status_code, answer.json().get("code", "")

        for live in ("alice-laptop", "bob", "emilie"):
            assert (await refresh(live))[0] == 200, live
        for ended in ("alice-phone", "bob-before-logout-all", "carol"):
            assert await refresh(ended) == (401, "token_revoked"), ended
        # The token 0.1 rotated away from, presented again once its grace has passed: reuse.
        assert await refresh("alice-laptop-spent") == (401, "refresh_token_reused")


async def test_a_0_1_refresh_cookie_refreshes_in_browser_mode(tmp_path: Path) -> None:
    """The cookie's name and path are 0.1's: a browser logged in then stays logged in."""
    url = write_old_store(tmp_path / "store")
    clock = Clock()
    clock.now = OLD["t0"] + 60
    settings = S3AuthSettings(store_url=url, secret_key=OLD["secret"], refresh_cookie=True)
    app = create_auth_app(S3AuthService(settings, clock=clock))
    async with asgi_client(app) as client:
        cookie = {
            "cookie": f"s3auth_refresh={REFRESH['alice-laptop']}",
            "origin": "http://testserver",
        }
        answer = await client.post("/refresh", headers=cookie)
        assert answer.status_code == 200, answer.text
        assert answer.cookies["s3auth_refresh"].startswith(f"rt1.{user_id('alice')}.")


async def test_sessions_and_the_administrator_s_listing(old: Old) -> None:
    async with old.client() as client:
        answer = await client.get("/sessions", headers=dict(bearer(ACCESS["alice-laptop"])))
        assert answer.status_code == 200, answer.text
        [laptop] = answer.json()["sessions"]
        assert laptop["device_info"] == "alice-laptop" and laptop["current"]
        body = {"username": "root", "password": USERS["root"]["password"]}
        admin = (await client.post("/login", json=body)).json()["access_token"]
        answer = await client.get("/admin/users", headers=dict(bearer(admin)))
        assert answer.status_code == 200, answer.text
        listed = {user["username"]: user for user in answer.json()["users"]}
        assert sorted(listed) == ["alice", "bob", "carol", "dave", "root", "Émilie"]
        assert listed["root"]["is_admin"] and not listed["carol"]["is_active"]


async def test_old_names_stay_taken_and_freed_ones_are_free(old: Old) -> None:
    async with old.client(rate_limit=False) as client:

        async def register(username: str, email: str) -> int:
            body = {"username": username, "email": email, "password": "Fresh-pass-1234"}
            return (await client.post("/register", json=body)).status_code

        taken = ["alice", "ALICE", "bob", "carol", "dave", "root", "ÉMILIE", "émilie"]
        for n, name in enumerate(taken):
            assert await register(name, f"new{n}@example.com") == 409, name
        for n, email in enumerate(["alice@example.com", "carol.smith@example.com"]):
            assert await register(f"newname{n}", email) == 409, email
        # Freed by 0.1: a deleted user's name, an address changed away from.
        assert await register("frank", "frank@example.com") == 201
        assert await register("newname9", "emilie@example.org") == 201


def stored_keys(root: Path) -> list[str]:
    return sorted(
        key
        for path in root.rglob("*")
        if path.is_file() and not (key := path.relative_to(root).as_posix()).startswith(".s3auth/")
    )


async def test_cleanup_keeps_what_lives_and_sweeps_what_0_1_left_expired(old: Old) -> None:
    listed = stored_keys(old.root)
    # A minute on, only the state of the login limits (a minute's window) has passed.
    swept = await old.service.cleanup_expired_tokens()
    left = stored_keys(old.root)
    assert swept == len(listed) - len(left) > 0
    assert all(key.startswith("ratelimit/login") for key in set(listed) - set(left))
    # Past the sessions' 7 days, every session, revocation and limit's state has.
    old.clock.advance(8 * DAY)
    swept = await old.service.cleanup_expired_tokens()
    assert stored_keys(old.root) == [k for k in listed if k.startswith(("users/", "index/"))]
    assert swept == len(left) - 18


def test_check_passes_and_the_doctor_finds_the_looks_0_1_left_unreserved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = doctor_env(tmp_path, monkeypatch)
    checked = Run("check")
    assert checked.code == failures.OK, checked
    doctor = run_doctor(store)
    assert doctor.code == failures.REFUSED, doctor
    assert findings(doctor.out) == {
        ("FAIL", "lookalike_unreserved", k) for k in looks().values()
    }, doctor
    assert doctor.out.splitlines()[-1] == (
        "checked 6 user(s) and 12 index entries: 6 problem(s) "
        "(4 list page(s), 49 read(s), 0 write(s))"
    )
    # Each record, its 3 entries (the skeleton's absent), each of the 12 entries and the
    # user it names; the end of every session.
    assert dict(store.requests) == {"list": 4, "get": 6 + 18 + 12 + 12 + 1}


def test_a_repair_reserves_the_looks_and_a_look_alike_is_refused_as_on_a_new_store(
    old: Old, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = doctor_env(old.root, monkeypatch, written=True)
    repaired = run_doctor(store, "--repair")
    assert repaired.code == failures.OK, repaired
    assert findings(repaired.out) == {
        ("fixed", "lookalike_unreserved", k) for k in looks().values()
    }
    assert repaired.out.splitlines()[-1] == (
        "checked 6 user(s) and 18 index entries: 6 problem(s), 6 repaired, 0 left "
        "(4 list page(s), 67 read(s), 6 write(s))"
    )
    # The scan's 6 records and their 18 entries; each repair reads the record again and
    # the entry, and creates it (If-None-Match, as a registration does); then the 18
    # entries, and the user each of 0.1's 12 names (the 6 new ones are younger than a
    # reservation: a claim under way, for all the scan can tell); the end of every session.
    assert dict(store.requests) == {"list": 4, "get": 6 + 18 + 6 * 2 + 18 + 12 + 1, "put": 6}
    again = run_doctor(store, "--repair")
    assert again.code == failures.OK, again
    assert again.out.splitlines() == [
        "checked 6 user(s) and 18 index entries: no problem found "
        "(4 list page(s), 55 read(s), 0 write(s))"
    ]
    assert dict(store.requests) == {"list": 4, "get": 6 + 18 + 18 + 12 + 1}
    assert register_statuses(old, ["aIice", "b0b", "r00t", "caro1", "emilie"]) == [
        409,
        409,
        409,
        409,
        201,  # not a look-alike of `Émilie`: the accent is drawn
    ]


def test_look_alikes_registered_before_the_repair_are_reported_and_left(
    old: Old, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Registered between the upgrade and the repair, `aIice` and `b0b` hold the looks of
    0.1's `alice` and `bob`: the repair reserves the others' and says which pairs look
    alike, without failing on what it cannot undo."""
    assert register_statuses(old, ["aIice", "b0b"]) == [201, 201]
    store = doctor_env(old.root, monkeypatch, written=True)
    alice, bob = user_id("alice"), user_id("bob")
    pairs = {looks()[alice], looks()[bob]}
    repaired = run_doctor(store, "--repair")
    assert repaired.code == failures.OK, repaired
    assert findings(repaired.out) == {
        *(("fixed", "lookalike_unreserved", k) for k in set(looks().values()) - pairs),
        *(("WARN", "lookalike_users", k) for k in pairs),
    }, repaired
    warned = [line for line in repaired.out.splitlines() if line.startswith("[WARN]")]
    assert any(alice in line and "'alice'" in line and "'aIice'" in line for line in warned)
    assert any(bob in line and "'bob'" in line and "'b0b'" in line for line in warned)
    assert repaired.out.splitlines()[-1] == (
        "checked 8 user(s) and 22 index entries: 4 problem(s), 4 repaired, 0 left; "
        "2 pair(s) of users look alike, left as they are "
        "(4 list page(s), 77 read(s), 4 write(s))"
    )
    # The scan: 8 records, their 24 entries, and for alice and bob the user their look's
    # entry names; the 4 repairs' 2 reads each; the 22 entries and the user each of 0.1's
    # 12 names (the others are younger than a reservation); the end of every session.
    assert dict(store.requests) == {
        "list": 4,
        "get": 8 + 24 + 2 + 4 * 2 + 22 + 12 + 1,
        "put": 4,
    }
    again = run_doctor(store, "--json")
    assert again.code == failures.OK, again
    listed = json.loads(again.out)
    assert {(item["kind"], item["user_id"], item["other_user_id"]) for item in listed} == {
        ("lookalike_users", alice, registered_id(old, "aIice")),
        ("lookalike_users", bob, registered_id(old, "b0b")),
    }
    assert all(item["repair"] is None for item in listed)


def test_a_reservation_outlives_0_1_s_rewrites_and_goes_with_its_deletion(
    old: Old, monkeypatch: pytest.MonkeyPatch
) -> None:
    """During a rolling upgrade a 0.1 process rewrites the records it changes in its own
    shape, and deletes a user's record and its username's and address's entries alone."""
    store = doctor_env(old.root, monkeypatch, written=True)
    assert run_doctor(store, "--repair").code == failures.OK
    alice, bob = user_id("alice"), user_id("bob")

    async def as_0_1() -> None:
        record = await store.get(keys.user(alice), dict)
        assert record is not None
        fields = {k: v for k, v in record.value.items() if k in ZERO_ONE_USER_FIELDS}
        await store.replace(keys.user(alice), {**fields, "full_name": "A. L."}, record.etag)
        bob_record = await store.get(keys.user(bob), User)
        assert bob_record is not None
        await store.delete_many(
            [
                keys.user(bob),
                keys.username_index(fold("bob")),
                keys.email_index(fold(bob_record.value.email)),
            ]
        )

    anyio.run(as_0_1)
    later = time.time() + old.service.settings.name_reservation_seconds + 1
    monkeypatch.setattr("s3auth_asgi.cli.doctor.CLOCK", lambda: later)
    checked = run_doctor(store)
    assert findings(checked.out) == {("FAIL", "entry_user_missing", looks()[bob])}, checked
    # Bob's look is free with his name, once his entry is a reservation's time old.
    old.clock.now = later
    assert register_statuses(old, ["aIice", "b0b"]) == [409, 201]


ZERO_ONE_USER_FIELDS = (
    "id",
    "username",
    "email",
    "hashed_password",
    "full_name",
    "is_active",
    "is_admin",
    "scopes",
    "created_at",
    "updated_at",
)
"""A user record as 0.1 wrote it: it drops whatever else a record holds when it rewrites
one."""


def doctor_env(
    root: Path, monkeypatch: pytest.MonkeyPatch, *, written: bool = False
) -> ObjectStore:
    """The old store (written there unless `written`), as the command is pointed at it."""
    url = f"file://{root}" if written else write_old_store(root / "store")
    monkeypatch.setenv("S3AUTH_STORE_URL", url)
    monkeypatch.setenv("S3AUTH_SECRET_KEY", OLD["secret"])
    return ObjectStore.from_url(url)


def run_doctor(store: ObjectStore, *options: str) -> Run:
    store.reset_counts()
    return Run("doctor", *options, open_store=lambda url: store)


FINDING = re.compile(r"^\[(FAIL|fixed|WARN)\] (\w+) (\S+): ", re.MULTILINE)


def findings(out: str) -> set[tuple[str, str, str]]:
    return {(m[1], m[2], m[3]) for m in FINDING.finditer(out)}


def looks() -> dict[str, str]:
    """The key of the entry that reserves the look of each user 0.1 left, by id."""
    return {
        entry["id"]: keys.skeleton_index(username_skeleton(name))
        for name, entry in USERS.items()
        if name != "frank"
    }


def register_statuses(old: Old, names: list[str]) -> list[int]:
    """The status of a registration of each of `names` through the app, one after another."""

    # Cheap hashing: what is under test is the names.
    settings = S3AuthSettings(store_url=old.url, secret_key=OLD["secret"], **FAST_HASHING)
    app = create_auth_app(S3AuthService(settings, clock=old.clock), rate_limit=False)

    async def register() -> list[int]:
        async with asgi_client(app) as client:
            return [
                (
                    await client.post(
                        "/register",
                        json={
                            "username": name,
                            "email": f"{name.lower()}.new@example.net",
                            "password": "Fresh-pass-1234",
                        },
                    )
                ).status_code
                for name in names
            ]

    return anyio.run(register)


def registered_id(old: Old, name: str) -> str:
    found = anyio.run(old.service.get_user_by_username, name)
    assert found is not None
    return found.id
