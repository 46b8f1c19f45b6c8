"""`s3auth` commands that end sessions, run on a host whose clock is far behind the store's
(an operator's laptop, a VM resumed before NTP caught up). The revocation keys they write
sort before every running reader's listing, and a command exits before any sync of its own
would find them: so before it exits, it lists its own entries, and writes again under the
store's time those dated more than the skew allowance behind it (`writer_lag`).

The store stamps Last-Modified from the shared time, in whole seconds; the command's clock
is the shared time `offset` seconds off, and so is the reader's (0: the true time).
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from conftest import FAST_HASHING, SECRET
from support import SharedTime, SkewedClock, StoreOnSharedTime, StoreWrapper, login, skewed_host
from test_cli import Run

from s3auth_asgi import TokenRevokedError
from s3auth_asgi.cli import context
from s3auth_asgi.errors import StoreUnavailableError
from s3auth_asgi.models import TokenPair
from s3auth_asgi.storage import ObjectInfo, ObjectStore, keys

BEHIND = -60.0  # well past the readers' listing overlap of 15 s
SKEW = 10  # the default S3AUTH_REVOCATION_SKEW_SECONDS
WARNED = re.compile(
    r"^s3auth: warning: this host's clock is at least (\d+) s behind the store's, more than "
    r"S3AUTH_REVOCATION_SKEW_SECONDS \(10\): the revocations this command wrote were "
    r"written again under the store's time\. Sync this host's clock \(NTP\)\n$"
)


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("S3AUTH_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    for name, value in FAST_HASHING.items():
        monkeypatch.setenv(f"S3AUTH_{name.upper()}", str(value))


class Fleet:
    """A store on the shared time, a reader on the true time, synced twice 20 s apart
    (its cursor past a clock 60 s behind), and a user with a session opened there."""

    def __init__(self) -> None:
        self.time = SharedTime()
        self.store = StoreOnSharedTime(ObjectStore.from_url("memory://"), lambda: self.time.now)
        self.reader = skewed_host(self.store, self.time, 0.0)
        self.pair: TokenPair

        async def start() -> str:
            user, self.pair = await login(self.reader)
            await self.reader.blacklist.sync()
            self.time.advance(20)
            await self.reader.blacklist.sync()
            return user.id

        self.user_id = anyio.run(start, backend="asyncio")

    def command(self, monkeypatch: pytest.MonkeyPatch, offset: float, *argv: str) -> Run:
        """`s3auth ARGV` on this store, by a clock `offset` s off the true time; the store's
        requests counted from its start."""
        monkeypatch.setattr(context, "CLOCK", SkewedClock(self.time, offset))
        self.store.reset_counts()
        return Run(*argv, open_store=lambda url: self.store)

    def refused_after_sync(self) -> bool:
        """Whether the reader, after its next sync, refuses the session's access token."""

        async def check() -> bool:
            self.time.advance(1)
            await self.reader.blacklist.sync()
            try:
                self.reader.decode_token(self.pair.access_token)
            except TokenRevokedError:
                return True
            return False

        return anyio.run(check, backend="asyncio")


COMMANDS = {
    "revoke": ("user", "revoke", "{id}", "--id"),
    "revoke-session": ("user", "revoke", "{id}", "--id", "--session", "{sid}"),
    "disable": ("user", "disable", "{id}", "--id"),
    "promote": ("user", "promote", "{id}", "--id"),
}


def argv(fleet: Fleet, name: str) -> list[str]:
    sid = fleet.reader.decode_token(fleet.pair.access_token)["sid"]
    return [part.format(id=fleet.user_id, sid=sid) for part in COMMANDS[name]]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_command_far_behind_ends_sessions_the_fleet_sees_and_says_so(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    fleet = Fleet()
    run = fleet.command(monkeypatch, BEHIND, *argv(fleet, name))
    assert run.code == 0, run
    assert fleet.refused_after_sync()
    warned = WARNED.match(run.err)
    assert warned is not None, run
    assert SKEW < int(warned.group(1)) <= -BEHIND, run


# `user revoke`'s own requests: the user read and its generation moved on (GET, PUT), its
# marker written (PUT), its sessions listed, the revocation written, the sessions deleted,
# the trail kept (GET, PUT).
REVOKE = {"get": 2, "put": 4, "list": 1, "delete": 1}


def test_where_clocks_agree_the_check_costs_one_list(monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = Fleet()
    run = fleet.command(monkeypatch, 2.0, *argv(fleet, "revoke"))
    assert run.code == 0 and run.err == "", run
    assert dict(fleet.store.requests) == {**REVOKE, "list": REVOKE["list"] + 1}


def test_far_behind_the_check_costs_one_list_and_a_put_per_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fleet = Fleet()
    run = fleet.command(monkeypatch, BEHIND, *argv(fleet, "revoke"))
    assert run.code == 0, run
    assert dict(fleet.store.requests) == {
        **REVOKE,
        "list": REVOKE["list"] + 1,
        "put": REVOKE["put"] + 1,
    }
    assert fleet.refused_after_sync()


def test_a_command_that_writes_no_revocation_checks_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fleet = Fleet()
    run = fleet.command(monkeypatch, BEHIND, "user", "sessions", fleet.user_id, "--id")
    assert run.code == 0 and run.err == "", run
    assert "list" in fleet.store.requests and fleet.store.requests["put"] == 0


class RevocationListingFails(StoreWrapper):
    """`inner`, whose listings of revocations fail: the command's check, not its writes."""

    async def list(self, prefix: str, offset: str | None = None) -> AsyncIterator[ObjectInfo]:
        if prefix == keys.REVOCATIONS:
            raise StoreUnavailableError("The store could not be read; try again later")
        async for info in self.inner.list(prefix, offset):
            yield info


def test_a_store_failing_at_the_check_is_said_with_exit_4(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fleet = Fleet()
    failing = RevocationListingFails(fleet.store)
    monkeypatch.setattr(context, "CLOCK", SkewedClock(fleet.time, BEHIND))
    run = Run(*argv(fleet, "revoke"), open_store=lambda url: failing)
    assert run.code == 4, run
    assert run.out == "ended 1 session(s) of alice\n", run
    assert run.err.startswith("s3auth: the store "), run
    assert "could not be read" in run.err, run
    assert "whether other processes see the revocations this command wrote" in run.err, run


def test_end_all_far_behind_needs_no_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its cut-off is held to the store's Last-Modified (`every_session`), not listed."""
    fleet = Fleet()
    run = fleet.command(monkeypatch, BEHIND, "sessions", "end-all", "--yes")
    assert run.code == 0 and run.err == "", run
    assert "list" not in fleet.store.requests
    assert fleet.refused_after_sync()


def test_a_command_failing_after_its_writes_checks_them_still(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The sessions are ended before the link is mailed: a mail that fails is the failure
    the command reports, and its revocations are seen all the same."""
    blocked = tmp_path / "outbox"
    blocked.write_text("a file, where the outbox's directory would go")
    monkeypatch.setenv("S3AUTH_MAIL_OUTBOX", str(blocked / "mail"))
    monkeypatch.setenv("S3AUTH_MAIL_FROM", "auth@example.com")
    fleet = Fleet()
    run = fleet.command(
        monkeypatch, BEHIND, "user", "reset-password", fleet.user_id, "--id", "--end-sessions"
    )
    assert run.code == 4, run
    warning, failure = run.err.splitlines(keepends=True)
    assert WARNED.match(warning) is not None, run
    assert failure.startswith("s3auth: the reset link was not sent to alice@example.com"), run
    assert fleet.refused_after_sync()
