"""`PATCH /admin/users/{user_id}` made conditional (RFC 9110 §13.1.1): the account's GET,
and the PATCH's answer, carry an `ETag`, and a PATCH with `If-Match` lands only on the
version it names. Two administrators on two instances over one store: the one who edits
a scope list read before the other's change gets 412, and the other's change stands."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest
from conftest import make_service
from declared_answers import DeclaredAnswers, listed_codes
from starlette.applications import Starlette
from starlette.routing import Mount
from support import RacedUserWrite, StoreWrapper
from test_app import PASSWORD, assert_problem, bearer, client_for, login

from s3auth_asgi import S3AuthService
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.problems import PROBLEM_CONTENT_TYPE
from s3auth_asgi.storage import ObjectStore, Store, Versioned

pytestmark = pytest.mark.anyio
T = TypeVar("T")


class Recorded(StoreWrapper):
    """Keeps the kind and key of each request, as `users/...` or the first part of the key."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.seen: list[str] = []

    def _note(self, kind: str, key: str) -> None:
        self.seen.append(f"{kind} {key.split('/')[0]}")

    async def get(self, key: str, type_: type[T]) -> Versioned[T] | None:
        self._note("get", key)
        return await super().get(key, type_)

    async def create(self, key: str, value: Any) -> str:
        self._note("create", key)
        return await super().create(key, value)

    async def replace(self, key: str, value: Any, etag: str) -> str:
        self._note("replace", key)
        return await super().replace(key, value, etag)


@dataclass
class Instance:
    service: S3AuthService
    client: httpx.AsyncClient


@dataclass
class Fleet:
    store: Recorded
    ann: Instance
    """Where the first administrator works."""
    ben: Instance
    """Where the second one does."""
    ann_auth: dict[str, str]
    ben_auth: dict[str, str]
    user: str
    """The account they both edit: scopes billing, read."""

    def requests(self) -> dict[str, int]:
        return dict(self.store.requests)

    def reset(self) -> None:
        self.store.reset_counts()
        self.store.seen.clear()

    async def scopes(self) -> list[str]:
        user = await self.ann.service.get_user_by_id(self.user)
        assert user is not None
        return user.scopes


def _instance(store: Store) -> Instance:
    service = make_service(store=store)
    app = create_auth_app(service, rate_limit=False)
    host = Starlette(routes=[Mount("/auth", app=app)])
    return Instance(service, client_for(host, declared=DeclaredAnswers.of(app)))


@pytest.fixture(name="fleet")
async def fleet_fixture() -> AsyncIterator[Fleet]:
    store = Recorded(ObjectStore.from_url("memory://"))
    ann, ben = _instance(store), _instance(store)
    for name in ("ann", "ben"):
        await ann.service.create_user(name, f"{name}@example.com", PASSWORD, is_admin=True)
    user = await ann.service.create_user(
        "carol", "carol@example.com", PASSWORD, scopes=["billing", "read"]
    )
    async with ann.client, ben.client:
        ann_auth = bearer(await login(ann.client, "ann"))
        ben_auth = bearer(await login(ben.client, "ben"))
        yield Fleet(store, ann, ben, ann_auth, ben_auth, user.id)


async def _read(instance: Instance, auth: dict[str, str], user_id: str) -> httpx.Response:
    got = await instance.client.get(f"/auth/admin/users/{user_id}", headers=auth)
    assert got.status_code == 200, got.text
    return got


async def _patch(
    instance: Instance, auth: dict[str, str], user_id: str, body: dict[str, Any], **headers: str
) -> httpx.Response:
    return await instance.client.patch(
        f"/auth/admin/users/{user_id}", json=body, headers={**auth, **headers}
    )


async def test_an_edit_of_a_list_read_before_another_admins_change_is_refused(
    fleet: Fleet,
) -> None:
    # Ben reads the account, to add a tenant to its scopes.
    seen = await _read(fleet.ben, fleet.ben_auth, fleet.user)
    stale = seen.headers.get("etag", '"no-etag"')
    # Meanwhile Ann, on the other instance, takes billing away.
    removed = await _patch(fleet.ann, fleet.ann_auth, fleet.user, {"scopes": ["read"]})
    assert removed.status_code == 200, removed.text
    fleet.reset()
    added = seen.json()["scopes"] + ["tenant:x"]
    late = await _patch(
        fleet.ben, fleet.ben_auth, fleet.user, {"scopes": added}, **{"If-Match": stale}
    )
    assert late.status_code == 412, late.text
    assert_problem(late, 412, "precondition_failed")
    # The caller's record (the dispatcher's), the account's, and the refused change's
    # event in the account's trail: nothing else written.
    assert fleet.store.seen == ["get users", "get users", "create audit"]
    assert fleet.requests() == {"get": 2, "put": 1}
    assert await fleet.scopes() == ["read"]
    # Read again, the change is made on what is there now.
    fresh = await _read(fleet.ben, fleet.ben_auth, fleet.user)
    assert fresh.headers["etag"] != stale
    redone = await _patch(
        fleet.ben,
        fleet.ben_auth,
        fleet.user,
        {"scopes": [*fresh.json()["scopes"], "tenant:x"]},
        **{"If-Match": fresh.headers["etag"]},
    )
    assert redone.status_code == 200, redone.text
    assert await fleet.scopes() == ["read", "tenant:x"]
    # The answer's ETag names the version it shows: the next GET's, on either instance.
    again = await _read(fleet.ann, fleet.ann_auth, fleet.user)
    assert redone.headers["etag"] == again.headers["etag"] != fresh.headers["etag"]
    assert again.json() == redone.json()


async def test_the_etag_is_a_quoted_opaque_strong_validator(fleet: Fleet) -> None:
    first = await _read(fleet.ann, fleet.ann_auth, fleet.user)
    other = await _read(fleet.ben, fleet.ben_auth, fleet.user)
    etag = first.headers["etag"]
    assert etag == other.headers["etag"]  # the same version, whichever instance answers
    assert re.fullmatch(r'"[A-Za-z0-9_-]{22}"', etag)  # strong: no W/
    raw = await fleet.store.get(f"users/{fleet.user}.json", dict)
    assert raw is not None and etag[1:-1] != raw.etag.strip('"')  # not the store's
    assert first.headers["cache-control"] == "no-store"


@dataclass
class RacedEdit:
    """An administrator's client on one instance, the `If-Match` of carol's account as it
    read it, and the other instance whose change of her scopes lands before that
    instance's next write of her record (`raced.meanwhile` is None once it has)."""

    client: httpx.AsyncClient
    headers: dict[str, str]
    user_id: str
    other: S3AuthService
    raced: RacedUserWrite


@asynccontextmanager
async def change_landing_meanwhile(
    scopes: list[str], meanwhile_scopes: list[str]
) -> AsyncIterator[RacedEdit]:
    inner = ObjectStore.from_url("memory://")
    other = make_service(store=inner)
    user = await other.create_user("carol", "carol@example.com", PASSWORD, scopes=scopes)

    async def meanwhile() -> None:
        await other.update_user(user.id, scopes=meanwhile_scopes)

    raced = RacedUserWrite(inner, meanwhile)
    service = make_service(store=raced)
    await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    raced.meanwhile = None
    app = create_auth_app(service, rate_limit=False)
    host = Starlette(routes=[Mount("/auth", app=app)])
    async with client_for(host, declared=DeclaredAnswers.of(app)) as client:
        auth = bearer(await login(client, "root"))
        seen = await client.get(f"/auth/admin/users/{user.id}", headers=auth)
        raced.meanwhile = meanwhile
        if_match = {"If-Match": seen.headers.get("etag", '"no-etag"')}
        yield RacedEdit(client, {**auth, **if_match}, user.id, other, raced)


async def test_a_write_landing_between_the_check_and_the_write_is_not_overwritten() -> None:
    """The If-Match'd write loses to the other instance's change, and the retry that
    follows refuses rather than applying the edit to the record that won."""
    async with change_landing_meanwhile(["billing"], []) as edit:
        late = await edit.client.patch(
            f"/auth/admin/users/{edit.user_id}",
            json={"scopes": ["billing", "tenant:x"]},
            headers=edit.headers,
        )
        assert_problem(late, 412, "precondition_failed")
    found = await edit.other.get_user_by_id(edit.user_id)
    assert found is not None and found.scopes == []


@pytest.mark.parametrize(
    ("if_match", "status"),
    [
        ("*", 200),
        (None, 200),
        ('"other", {etag}', 200),
        ('{etag} , "other"', 200),
        ("W/{etag}", 412),  # a weak tag never matches strongly (RFC 9110 §8.8.3.2)
        ('W/"other", "other"', 412),
        ('""', 412),
        ("{bare}", 400),
        ('"unterminated', 400),
        ('"a"b"', 400),
        ('*, "x"', 400),
        ("", 412),  # an empty list names no version (RFC 9110 §5.6.1)
        (" , ,", 412),
        ('"é"', 412),  # obs-text, as a tag may hold
        ('"a\tb"', 400),
        ('"a" "b"', 400),
    ],
)
async def test_if_match_forms(fleet: Fleet, if_match: str | None, status: int) -> None:
    etag = (await _read(fleet.ann, fleet.ann_auth, fleet.user)).headers.get("etag", '"none"')
    headers = {} if if_match is None else {"If-Match": if_match.format(etag=etag, bare=etag[1:-1])}
    fleet.reset()
    answer = await fleet.ann.client.patch(
        f"/auth/admin/users/{fleet.user}",
        json={"scopes": ["read"]},
        headers={**fleet.ann_auth, **{k: v.encode() for k, v in headers.items()}},
    )
    assert answer.status_code == status, answer.text
    if status == 200:
        assert await fleet.scopes() == ["read"]
        return
    assert_problem(answer, status, "precondition_failed" if status == 412 else "malformed_if_match")
    # A malformed header is refused before the account is read; neither writes it.
    read = ["get users"] * (2 if status == 412 else 1)
    assert fleet.store.seen == [*read, "create audit"]
    assert await fleet.scopes() == ["billing", "read"]


async def test_an_unknown_account_is_a_404_whatever_if_match_says(fleet: Fleet) -> None:
    for if_match in ("*", '"x"'):
        answer = await _patch(
            fleet.ann, fleet.ann_auth, "0" * 32, {"full_name": "X"}, **{"If-Match": if_match}
        )
        assert_problem(answer, 404, "user_not_found")


def test_the_document_declares_the_etag_the_header_and_the_412() -> None:
    app = create_auth_app(make_service(), rate_limit=False)
    assert app.openapi is not None
    item = app.openapi.for_mount("/auth")["paths"]["/admin/users/{user_id}"]
    assert "ETag" in item["get"]["responses"]["200"]["headers"]
    patch = item["patch"]
    assert "ETag" in patch["responses"]["200"]["headers"]
    (header,) = [p for p in patch["parameters"] if p["in"] == "header"]
    assert header["name"] == "If-Match" and header["required"] is False
    assert listed_codes(_problem_schema(patch, "412")) == ["precondition_failed"]
    assert "malformed_if_match" in (listed_codes(_problem_schema(patch, "400")) or [])
    # Only the PATCH and the DELETE of an account take it (test_admin_delete_if_match).
    for path, methods in app.openapi.for_mount("/auth")["paths"].items():
        for method, operation in methods.items():
            if (path, method) not in {
                ("/admin/users/{user_id}", "patch"),
                ("/admin/users/{user_id}", "delete"),
            }:
                assert "412" not in operation["responses"], (path, method)


def _problem_schema(operation: dict[str, Any], status: str) -> dict[str, Any]:
    schema: dict[str, Any] = operation["responses"][status]["content"][PROBLEM_CONTENT_TYPE][
        "schema"
    ]
    return schema
