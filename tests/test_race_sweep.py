"""A sweep over pairs of operations that race on one account or one name, each sent to its
own instance on one memory:// store: one operation is held just before its k-th store
request (and, for a write, just after it landed) while the other runs to its end, then
goes on; for every k of either operation.

Every time, each caller gets its success or a documented 4xx (never a 500); the store is
then consistent as `s3auth doctor` judges it; a single-use link served at most one
success; no two accounts hold one folded name or address; and no session of a deleted or
disabled account, or opened from the account's record before a change that ends sessions,
refreshes, on a third instance that synced nothing, nor has its access token accepted where
the revocations are synced (a login's or a password change's new pair as much as those
opened before), while every other session refreshes.
What each pair promises besides is its `check` (`race_operations`).
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import dataclasses
import json
from pathlib import Path
from typing import Any

import httpx
import obstore as obs
import pytest
from conftest import make_settings
from race_operations import PAIRS, SETTINGS, Pausing, Race, Step
from sweep_operations import PAST_REVOCATIONS, World, build_world
from test_app import client_for, declared_for, mounted

from s3auth_asgi import S3AuthService, TokenRevokedError
from s3auth_asgi.app import application
from s3auth_asgi.consistency import StateCheck
from s3auth_asgi.findings import Finding
from s3auth_asgi.identifiers import fold, session_generation_counter
from s3auth_asgi.mail import FileMailer
from s3auth_asgi.models import User
from s3auth_asgi.session_generation import generation_counter
from s3auth_asgi.storage import ObjectStore, keys

pytestmark = pytest.mark.anyio
PROBLEM = "application/problem+json"
DECLARED = declared_for(SETTINGS)
"""What the apps of every race declare, from one built with its document (theirs are not):
each answer is one of those."""


@pytest.fixture(autouse=True)
def _no_openapi_document(monkeypatch: pytest.MonkeyPatch) -> None:
    """No race reads the apps' OpenAPI document: building it for each of the two apps of
    each race would take a third of the sweep's time."""
    monkeypatch.setattr(application, "OpenAPIDocument", lambda *args, **kwargs: None)


_BUILT: list[tuple[ObjectStore, World]] = []


async def _copy_of_the_world(tmp_path: Path) -> tuple[ObjectStore, World]:
    """A store holding the world, copied object by object from one built once: each race
    starts from the same objects, its instances from nothing."""
    if not _BUILT:
        store = ObjectStore.from_url("memory://")
        service = S3AuthService(make_settings(), store=store, mailer=FileMailer(tmp_path / "world"))
        async with client_for(mounted(service), declared=DECLARED) as client:
            world = World(store, None, service, client)  # type: ignore[arg-type]
            await build_world(tmp_path, client, world)
        _BUILT.append((store, world))
    built, world = _BUILT[0]
    copy = ObjectStore.from_url("memory://")
    # Byte for byte, through obstore: the store's own API decodes what it reads.
    for batch in obs.list(built._inner):
        for meta in batch:
            data = obs.get(built._inner, meta["path"]).bytes()
            obs.put(copy._inner, meta["path"], bytes(data))
    return copy, world


async def _race(
    tmp_path: Path,
    first: Step,
    second: Step,
    held: int,
    at: int | None,
    after: bool,
    then: int | None = None,
) -> tuple[Race, list[httpx.Response]]:
    """The world, then `first` and `second`, each on its own instance; the one of index
    `held` held at its `at`-th request while the other runs, to its end or, with `then`,
    until just before its `then`-th request, to go on once the held one is answered."""
    inner, built = await _copy_of_the_world(tmp_path)
    stores = (Pausing(inner), Pausing(inner))
    mailer = FileMailer(tmp_path / "outbox")
    services = [S3AuthService(SETTINGS, store=s, mailer=mailer) for s in stores]
    answers: list[httpx.Response] = [httpx.Response(599), httpx.Response(599)]
    one_app, two_app = mounted(services[0]), mounted(services[1])
    async with (
        client_for(one_app, declared=DECLARED) as one,
        client_for(two_app, declared=DECLARED) as two,
    ):
        world = dataclasses.replace(built, inner=inner, service=services[0], client=one)
        sides = (world, dataclasses.replace(world, service=services[1], client=two))
        race = Race(world, sides, stores)
        for index, pair in enumerate(world.sessions):
            race.sessions[f"alice-{index}"] = pair
        for service in services:
            await service.ensure_fresh()
        for store in stores:
            store.count, store.log = 0, []
        steps = (first, second)
        other = 1 - held

        failed: list[AssertionError] = []

        async def send_other() -> None:
            # An answer the document does not declare fails the race here, not as an
            # error of the held one's store request that it ran inside.
            try:
                answers[other] = await steps[other].send(sides[other])
            except AssertionError as failure:
                failed.append(failure)

        running: list[asyncio.Task[None]] = []

        async def meanwhile() -> None:
            if then is None:
                return await send_other()
            stores[other].at, stores[other].holding = then, True
            task = asyncio.create_task(send_other(), context=contextvars.Context())
            running.append(task)
            paused = asyncio.create_task(stores[other].paused.wait())
            await asyncio.wait({task, paused}, return_when=asyncio.FIRST_COMPLETED)
            paused.cancel()

        stores[held].at, stores[held].after = at, after
        stores[held].meanwhile = meanwhile
        answers[held] = await steps[held].send(sides[held])
        if stores[held].meanwhile is not None:  # it made fewer requests: the other after
            stores[held].meanwhile = None
            await meanwhile()
        stores[other].resume.set()
        for task in running:
            await task
        for service in services:
            await service.mail.drain()
    if failed:
        raise failed[0]
    return race, answers


def _answered(step: Step, answer: httpx.Response) -> bool:
    """Whether `step` succeeded; else its answer is a documented 4xx of a lost race."""
    assert answer.status_code != 500, answer.text
    if answer.status_code == step.ok:
        return True
    assert answer.status_code in step.lost, (step.name, answer.text)
    assert answer.headers["content-type"] == PROBLEM, answer.text
    assert answer.json()["code"] in step.lost[answer.status_code], (step.name, answer.text)
    return False


async def _users(race: Race) -> list[User]:
    """Every account's record, read from the store (the closed ones of a deletion left
    out)."""
    inner = race.world.inner
    found = []
    async for info in inner.list(keys.USERS):
        record = await inner.get(info.key, User)
        if record is not None and not record.value.deleting:
            found.append(record.value)
    return found


async def _one_holder_per_name(race: Race) -> None:
    """No two records hold names that fold, or look, the same: read from the records
    themselves, not from the index that is to keep them apart."""
    users = await _users(race)
    for name in ("username", "email", "username_skeleton"):
        folded = [fold(getattr(user, name) or "") for user in users]
        assert len(folded) == len(set(folded)), sorted(folded)


async def _consistent(race: Race) -> None:
    """Nothing at all for `s3auth doctor`, even once every claim would count as abandoned:
    a race lost is no failure, and leaves no name held (the fault sweep lets those go)."""
    found: list[Finding] = []
    await StateCheck(race.later().names, found.append).run()
    assert found == []


def _claims(token: str) -> dict[str, Any]:
    """An access token's claims, unchecked: which session it is of."""
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


async def _sessions_as_promised(race: Race, ended: set[str]) -> None:
    """Each session the race left refreshes, or is refused, as the account's record says:
    refused when the account is gone or disabled, when the session was opened from an
    older generation than the record's, or (`ended`) when it was opened before a change
    that ends sessions succeeded; else it refreshes."""
    synced = race.other()
    await synced.ensure_fresh()
    later = race.other(PAST_REVOCATIONS)
    alice = await later.get_user_by_id(race.world.alice)
    for name, pair in race.sessions.items():
        sid = _claims(pair["access_token"])["sid"]
        refused = (
            alice is None
            or not alice.is_active
            or session_generation_counter(sid) < generation_counter(alice.session_generation)
            or name in ended
        )
        if refused:
            # Its access tokens too, wherever the revocations are known: a login's or a
            # password change's new pair, that ran with the change, as much as alice's.
            with pytest.raises(TokenRevokedError):
                synced.decode_token(pair["access_token"])
            with pytest.raises(TokenRevokedError):
                await later.refresh_access_token(pair["refresh_token"])
        else:
            assert await later.refresh_access_token(pair["refresh_token"]), name


async def _run(
    tmp_path: Path, pair: str, held: int, at: int | None, after: bool, then: int | None = None
) -> Race:
    """One interleaving of `pair` (`_race`), and every check of the module's docstring."""
    first, second, check = PAIRS[pair]
    race, answers = await _race(tmp_path, first, second, held, at, after, then)
    won = [_answered(step, answer) for step, answer in zip((first, second), answers, strict=True)]
    for step, answer, success in zip((first, second), answers, won, strict=True):
        if success and step.opens:
            race.sessions[step.name] = answer.json()
        if success and step.rotates:
            race.sessions[step.rotates] = answer.json()
    await _consistent(race)
    await _one_holder_per_name(race)
    await check(race, won)
    ended = {name for step, w in zip((first, second), won, strict=True) if w for name in step.ends}
    await _sessions_as_promised(race, ended)
    return race


# The requests of each operation alone, for the world of `_race`.
REGISTER = "create index, create index, create index, create user, create token, create audit"
ADMIN_CHANGE = (
    "get user, get user, list sessions, create revocation, delete_many sessions, replace "
    "user, create marker, list sessions, create audit"
)
ADMIN_EMAIL = (
    "get user, get user, get index, create index, replace user, replace index, delete_many "
    "index, create token, create audit"
)
REFRESH = "get sessions, list sessions, replace sessions"
ADMIN_DELETE = (
    "get user, get user, create marker, replace user, list sessions, create revocation, "
    "delete_many user, create marker, get index, get index, get index, replace index, "
    "replace index, replace index, delete_many index, create audit"
)
RESET = (
    "get token, get user, list sessions, create revocation, delete_many sessions, replace "
    "user, create marker, list sessions, delete_many token, create audit"
)
CHANGE_PASSWORD = (
    "get user, get user, replace user, create marker, list sessions, create revocation, "
    "delete_many sessions, replace user, create marker, list sessions, delete_many marker, "
    "create sessions, get user, create audit"
)
LOGOUT_ALL = (
    "get user, get user, replace user, create marker, list sessions, create revocation, "
    "delete_many sessions, create audit"
)
ASK_NEW_ADDRESS = (
    "get user, get user, get index, create token, get token, replace user, create audit"
)
END_SESSION = "get user, get sessions, delete sessions, create revocation, create audit"
END_OWN_SESSION = "get user, delete sessions, create revocation, create audit"
VERIFY = "get token, get user, replace user, delete_many token, create audit"
CONFIRM_ADDRESS = (
    "get token, get user, get index, create index, replace user, replace index, delete_many "
    "index, delete_many token, create audit"
)
LOGOUT = "get sessions, delete sessions, create revocation, create audit"
LOGOUT_BEARER = "delete sessions, create revocation, create audit"
LOGIN = "get index, get user, create sessions, get user, create audit"
REGISTER_ALICE = "create index, get index"
REGISTER_OLD_ADDRESS = (
    "create index, create index, create index, get index, replace index, replace index, "
    "delete_many index"
)
PROFILE = "get user, replace user, create audit"
REQUESTS: dict[str, str] = {
    "profile": PROFILE,
    "admin-delete": ADMIN_DELETE,
    "admin-delete-again": ADMIN_DELETE,
    "admin-disable": ADMIN_CHANGE,
    "admin-email": ADMIN_EMAIL,
    "admin-email-again": ADMIN_EMAIL,
    "admin-email-new": ADMIN_EMAIL,
    "admin-scopes": ADMIN_CHANGE,
    "admin-scopes-again": ADMIN_CHANGE,
    "admin-set-password": ADMIN_CHANGE,
    "ask-new-address": ASK_NEW_ADDRESS,
    "change-password": CHANGE_PASSWORD,
    "confirm-address": CONFIRM_ADDRESS,
    "end-own-session": END_OWN_SESSION,
    "end-session": END_SESSION,
    "login": LOGIN,
    "logout": LOGOUT,
    "logout-all": LOGOUT_ALL,
    "logout-bearer": LOGOUT_BEARER,
    "refresh": REFRESH,
    "refresh-again": REFRESH,
    "refresh-second": REFRESH,
    "register": REGISTER,
    "register-NEWBIE": REGISTER,
    "register-alice": REGISTER_ALICE,
    "register-folded-email": REGISTER,
    "register-modern": REGISTER,
    "register-new-address": REGISTER,
    "register-old-address": REGISTER_OLD_ADDRESS,
    "register-rnodern": REGISTER,
    "reset": RESET,
    "reset-again": RESET,
    "verify": VERIFY,
}


@pytest.mark.parametrize("pair", PAIRS)
@pytest.mark.parametrize("held", [0, 1], ids=["first-alone", "second-alone"])
async def test_each_pair_one_after_the_other(tmp_path: Path, pair: str, held: int) -> None:
    """Each operation's requests alone; the other runs once it is answered."""
    first, second, _ = PAIRS[pair]
    race = await _run(tmp_path, pair, held, None, False)
    assert ", ".join(race.stores[held].log) == REQUESTS[(first, second)[held].name]


READS = ("get", "list")
"""Requests after which is before the next: only writes are held after too."""
LAST = "create audit"
"""An operation's last request, when it has one: after it, the operation is over."""


def _sweep() -> list[Any]:
    params = []
    for pair, (first, second, _) in PAIRS.items():
        for held, step in enumerate((first, second)):
            requests = REQUESTS[step.name].split(", ")
            for k, request in enumerate(requests, start=1):
                for after, when in ((False, "before"), (True, "after")):
                    if after and (request == LAST or request.startswith(READS)):
                        continue
                    tag = request.replace(" ", "-")
                    params.append(
                        pytest.param(
                            pair, held, k, after, id=f"{pair}-{step.name}-{k}-{tag}-{when}"
                        )
                    )
    return params


@pytest.mark.parametrize(("pair", "held", "at", "after"), _sweep())
async def test_a_pair_interleaved_at_any_request(
    tmp_path: Path, pair: str, held: int, at: int, after: bool
) -> None:
    """The other of the pair runs to its end just before (or after) the `at`-th request
    of the one `held`."""
    await _run(tmp_path, pair, held, at, after)


CROSSED = (
    "reset-twice",
    "logout-all-login",
    "delete-login",
    "disable-login",
    "disable-change",
    "confirm-register",
    "register-folded-name",
)
"""The pairs whose every two points are crossed: one held before its k-th request, the
other run until just before its j-th, the first let go to its end, then the other."""


def _crossed() -> list[Any]:
    params = []
    for pair in CROSSED:
        first, second, _ = PAIRS[pair]
        for held, (step, other) in enumerate(((first, second), (second, first))):
            points = [r for r in REQUESTS[step.name].split(", ") if r != LAST]
            others = [r for r in REQUESTS[other.name].split(", ") if r != LAST]
            for k in range(1, len(points) + 1):
                for j in range(1, len(others) + 1):
                    ident = f"{pair}-{step.name}-{k}-{other.name}-{j}"
                    params.append(pytest.param(pair, held, k, j, id=ident))
    return params


@pytest.mark.parametrize(("pair", "held", "at", "then"), _crossed())
async def test_a_pair_crossed_at_any_two_requests(
    tmp_path: Path, pair: str, held: int, at: int, then: int
) -> None:
    """The other of the pair runs until just before its `then`-th request, just before
    the `at`-th of the one `held`."""
    await _run(tmp_path, pair, held, at, False, then)
