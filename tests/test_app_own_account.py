"""An administrator cannot take their own administration away through the admin endpoints
(demote, disable or delete their own account): with no other administrator, nobody could
give it back through the API. The refusal is a 409 `own_account` that changes nothing;
another administrator, or the CLI, does it. Their other changes of their own account go
through as anyone's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from support import make_clocked_service
from test_app import PASSWORD, assert_problem, bearer, client_for, login, mounted, register
from test_app_conflicts import declared_statuses

from s3auth_asgi import S3AuthService
from s3auth_asgi.models import User
from s3auth_asgi.storage import keys

pytestmark = pytest.mark.anyio


@dataclass
class Admin:
    service: S3AuthService
    client: httpx.AsyncClient
    user_id: str
    headers: dict[str, str]

    @property
    def own(self) -> str:
        return f"/auth/admin/users/{self.user_id}"

    def requests(self) -> dict[str, int]:
        return dict(self.service.store.requests)

    async def record(self) -> User:
        user = await self.service.get_user_by_id(self.user_id)
        assert user is not None
        return user


@pytest.fixture
async def root() -> AsyncIterator[Admin]:
    service = make_clocked_service()  # a still clock: the revocations are read once
    async with client_for(mounted(service)) as client:
        user = await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
        headers = bearer(await login(client, "root"))
        assert (await client.get("/auth/me", headers=headers)).status_code == 200
        service.store.reset_counts()
        yield Admin(service, client, user.id, headers)


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("PATCH", {"is_admin": False}),
        ("PATCH", {"is_active": False}),
        ("PATCH", {"is_active": False, "full_name": "Gone"}),
        ("PATCH", {"is_admin": False, "scopes": ["read"]}),
        ("DELETE", None),
    ],
)
async def test_an_administrator_cannot_demote_disable_or_delete_themself(
    root: Admin, method: str, body: dict[str, Any] | None
) -> None:
    before = await root.record()
    root.service.store.reset_counts()
    refused = await root.client.request(method, root.own, json=body, headers=root.headers)
    problem = assert_problem(refused, 409, "own_account")
    assert "another administrator" in problem["detail"]
    # Refused before the account is touched: the caller's record, which every admin call
    # reads, and the audit event.
    assert root.requests() == {"get": 1, "put": 1}
    assert await root.record() == before
    assert (await root.client.get("/auth/me", headers=root.headers)).status_code == 200


async def test_their_other_changes_of_their_own_account_go_through(root: Admin) -> None:
    changed = await root.client.patch(
        root.own,
        json={"full_name": "Root", "is_admin": True, "is_active": True, "scopes": ["read"]},
        headers=root.headers,
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["full_name"], changed.json()["is_admin"]) == ("Root", True)
    assert changed.json()["scopes"] == ["read"]


async def test_another_administrator_may_do_it(root: Admin) -> None:
    other = await register(root.client, "ops")
    promoted = await root.client.patch(
        f"/auth/admin/users/{other['id']}", json={"is_admin": True}, headers=root.headers
    )
    assert promoted.status_code == 200
    ops = bearer(await login(root.client, "ops"))
    demoted = await root.client.patch(root.own, json={"is_admin": False}, headers=ops)
    assert demoted.status_code == 200 and demoted.json()["is_admin"] is False
    deleted = await root.client.delete(f"/auth/admin/users/{root.user_id}", headers=ops)
    assert deleted.status_code == 204


async def test_an_administrator_by_a_scope_of_an_older_record_keeps_it_too(root: Admin) -> None:
    # A record written before `is_admin` and the `admin` scope became one rule may make an
    # administrator by its scopes alone: a change of the scopes would then end it.
    found = await root.service.store.get(keys.user(root.user_id), User)
    assert found is not None
    found.value.is_admin, found.value.scopes = False, ["admin", "read"]
    await root.service.store.replace(keys.user(root.user_id), found.value, found.etag)
    root.service.store.reset_counts()
    refused = await root.client.patch(root.own, json={"scopes": ["read"]}, headers=root.headers)
    assert_problem(refused, 409, "own_account")
    # Learnt from the caller's record, which every admin call reads: no request more.
    assert root.requests() == {"get": 1, "put": 1}
    kept = await root.client.patch(
        root.own, json={"scopes": ["admin", "write"]}, headers=root.headers
    )
    assert kept.status_code == 200, kept.text
    assert (kept.json()["is_admin"], kept.json()["scopes"]) == (True, ["write"])


def test_the_openapi_document_declares_the_refusal() -> None:
    service = make_clocked_service()
    for method in ("PATCH", "DELETE"):
        assert 409 in declared_statuses(service, method, "/admin/users/{user_id}"), method
