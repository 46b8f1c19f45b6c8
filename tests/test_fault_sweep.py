"""A sweep over the auth app's operations that make more than one store request: each one
run with its k-th request failing, before the request is sent or after it landed (its
answer lost), for every k up to the operation's count.

Every time, the client gets its answer or a 503 `store_unavailable` problem, never a 500;
the store is then consistent as `s3auth doctor` judges it (a claim that never finished is
let go once abandoned, nothing else is left); the same request sent again succeeds or
answers a clear 4xx; and what the operation promises holds: no half-made account, no name
taken for good, no session left that a logout, a new password, a disabling or a reused
refresh token ended, and the reused token refused with the same answer every time.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_settings
from sweep_operations import OPS, World, build_world
from test_app import client_for, declared_for, mounted
from test_faults import FaultyStore
from test_password_change_faults import RequestLog, _kind

from s3auth_asgi import S3AuthService
from s3auth_asgi.consistency import StateCheck
from s3auth_asgi.findings import ENTRY_NOT_HELD, ENTRY_USER_MISSING, UNFINISHED_DELETION, Finding
from s3auth_asgi.mail import FileMailer
from s3auth_asgi.storage import ObjectInfo, ObjectStore

pytestmark = pytest.mark.anyio
DECLARED = declared_for(make_settings())
"""What the app of every run declares: each answer, the world's too, is one of those."""

LET_GO = {ENTRY_USER_MISSING, ENTRY_NOT_HELD}
"""What a claim that never finished leaves: its next registration takes it over."""


class Logged(RequestLog):
    """Records every request: the listings by page and the single DELETEs too."""

    async def delete(self, key: str) -> None:
        self.log.append(f"delete {_kind(key)}")
        await super().delete(key)

    async def list_page(
        self, prefix: str, after: str | None, limit: int
    ) -> tuple[list[ObjectInfo], bool]:
        self.log.append(f"list_page {_kind(prefix)}")
        return await super().list_page(prefix, after, limit)


async def _run(tmp_path: Path, name: str, fail_at: int | None, after: bool) -> list[str]:
    """The world, then `name` once with its `fail_at`-th request failing; its requests."""
    inner = ObjectStore.from_url("memory://")
    logged = Logged(inner)
    faulty = FaultyStore(logged)
    service = S3AuthService(make_settings(), store=faulty, mailer=FileMailer(tmp_path / "outbox"))
    async with client_for(mounted(service), declared=DECLARED) as client:
        world = World(inner, faulty, service, client)
        await build_world(tmp_path, client, world)
        await service.ensure_fresh()
        op = OPS[name]
        logged.log.clear()
        faulty.calls, faulty.fail_at, faulty.after = 0, fail_at, after
        first = await op.send(world)
        made = list(logged.log)
        faulty.fail_at = None
        assert first.status_code != 500, first.text
        if first.status_code != op.ok:
            assert fail_at is not None, first.text
            assert first.status_code == 503, first.text
            assert first.headers["content-type"] == "application/problem+json"
            assert first.json()["code"] == "store_unavailable"
        # A deletion that failed half-way is finished by its retry.
        await _consistent(world, allowed={*LET_GO, UNFINISHED_DELETION})
        if first.status_code != op.ok:
            if op.cut_short is not None:
                await op.cut_short(world)
            again = await op.send(world)
            assert again.status_code in (op.ok, *op.again), (first.text, again.text)
            await _consistent(world, allowed=LET_GO)
        await service.mail.drain()
        await op.check(world)
    return made


async def _consistent(world: World, allowed: set[str]) -> None:
    later = world.later()
    found: list[Finding] = []
    await StateCheck(later.names, found.append).run()
    assert [f for f in found if f.kind not in allowed] == []


# Each operation's requests, for the world above, the audit event's write last.
REQUESTS: dict[str, str] = {
    "register": (
        "create index, create index, create index, create user, create token, create audit"
    ),
    "login": "get index, get user, create sessions, get user, create audit",
    "refresh": "get sessions, list sessions, replace sessions",
    "reuse": "get sessions, replace sessions, create revocation, delete sessions, create audit",
    "logout": "get sessions, delete sessions, create revocation, create audit",
    "logout-bearer": "delete sessions, create revocation, create audit",
    "logout-all": (
        "get user, get user, replace user, create marker, list sessions, create revocation, "
        "delete_many sessions, create audit"
    ),
    "end-session": "get user, get sessions, delete sessions, create revocation, create audit",
    "end-own-session": "get user, delete sessions, create revocation, create audit",
    "ask-new-address": (
        "get user, get user, get index, create token, get token, replace user, create audit"
    ),
    "change-password": (
        "get user, get user, replace user, create marker, list sessions, create revocation, "
        "delete_many sessions, replace user, create marker, list sessions, "
        "delete_many marker, create sessions, get user, create audit"
    ),
    "forgot": "get index, get user, create token",
    "reset": (
        "get token, get user, list sessions, create revocation, delete_many sessions, "
        "replace user, create marker, list sessions, delete_many token, create audit"
    ),
    "verify": "get token, get user, replace user, delete_many token, create audit",
    "confirm-address": (
        "get token, get user, get index, create index, replace user, replace index, "
        "delete_many index, delete_many token, create audit"
    ),
    "resend": "get index, get user, create token",
    "admin-create": (
        "get user, create index, create index, create index, create user, create token, "
        "create audit"
    ),
    "admin-disable": (
        "get user, get user, list sessions, create revocation, delete_many sessions, "
        "replace user, create marker, list sessions, create audit"
    ),
    "admin-scopes": (
        "get user, get user, list sessions, create revocation, delete_many sessions, "
        "replace user, create marker, list sessions, create audit"
    ),
    "admin-email": (
        "get user, get user, get index, create index, replace user, replace index, "
        "delete_many index, create token, create audit"
    ),
    "admin-delete": (
        "get user, get user, create marker, replace user, list sessions, create revocation, "
        "delete_many sessions user, create marker, get index, get index, get index, "
        "replace index, replace index, replace index, delete_many index, create audit"
    ),
    "admin-revoke": (
        "get user, get user, get user, replace user, create marker, list sessions, "
        "create revocation, delete_many sessions, create audit"
    ),
    "admin-set-password": (
        "get user, get user, list sessions, create revocation, delete_many sessions, "
        "replace user, create marker, list sessions, create audit"
    ),
    "admin-end-session": (
        "get user, get user, get sessions, delete sessions, create revocation, create audit"
    ),
}
READS = ("get", "list")
"""Requests whose answer lost is as if they failed before: only writes fail after too."""


@pytest.mark.parametrize("name", OPS)
async def test_the_requests_of_each_operation(tmp_path: Path, name: str) -> None:
    assert ", ".join(await _run(tmp_path, name, None, False)) == REQUESTS[name]


SWEEP = [
    pytest.param(name, k, after, id=f"{name}-{k}-{request.replace(' ', '-')}-{when}")
    for name, requests in REQUESTS.items()
    for k, request in enumerate(requests.split(", "), start=1)
    for after, when in ((False, "before"), (True, "after"))
    if not (after and request.startswith(READS))
]


@pytest.mark.parametrize(("name", "k", "after"), SWEEP)
async def test_an_operation_failing_at_any_request(
    tmp_path: Path, name: str, k: int, after: bool
) -> None:
    await _run(tmp_path, name, k, after)
