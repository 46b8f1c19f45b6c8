"""A change of an account that loses to a concurrent one is a 409 `conflict`, and every
operation that can answer so says it can, in the OpenAPI document: a client generated from
it must expect the answer it will get."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings
from support import StoreWrapper
from test_app import PASSWORD, assert_problem, bearer, client_for, login, mounted, register
from test_app_lifecycle import admin_tokens, mailed_token

from s3auth_asgi import S3AuthService
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.mail import FileMailer
from s3auth_asgi.storage import ObjectStore, Store, StoreConflict, keys

pytestmark = pytest.mark.anyio


def declared_operation(service: S3AuthService, method: str, path: str) -> dict[str, Any]:
    document = create_auth_app(service, rate_limit=False).openapi.for_mount("/auth")
    operation: dict[str, Any] = document["paths"][path][method.lower()]
    return operation


def declared_statuses(service: S3AuthService, method: str, path: str) -> set[int]:
    return {int(status) for status in declared_operation(service, method, path)["responses"]}


def declared_conflicts(service: S3AuthService, method: str, path: str) -> set[str]:
    """The codes the operation's 409 may carry, as its problem schema lists them."""
    conflict = declared_operation(service, method, path)["responses"]["409"]
    schema = conflict["content"]["application/problem+json"]["schema"]
    (code,) = [part["properties"]["code"] for part in schema["allOf"] if "properties" in part]
    assert all(f"`{name}`" in conflict["description"] for name in code["enum"])
    return set(code["enum"])


class HeldWrites(StoreWrapper):
    """Holds the first writes of user records until `together` of them wait, then lets them
    go at once: requests that all read the record before any of them writes."""

    def __init__(self, inner: Store, together: int) -> None:
        super().__init__(inner)
        self.together = together
        self.waiting = 0
        self.all_read = asyncio.Event()

    async def replace(self, key: str, value: Any, etag: str) -> str:
        if key.startswith(keys.USERS) and not self.all_read.is_set():
            self.waiting += 1
            if self.waiting == self.together:
                self.all_read.set()
            await self.all_read.wait()
        return await super().replace(key, value, etag)


async def test_concurrent_password_changes_one_wins_the_others_get_a_declared_409(
    tmp_path: Path,
) -> None:
    store = HeldWrites(ObjectStore.from_url("memory://"), together=3)
    service = S3AuthService(make_settings(), store=store, mailer=FileMailer(tmp_path))
    async with client_for(mounted(service)) as client:
        await register(client, "alice")
        tokens = await login(client, "alice")
        answers = await asyncio.gather(
            *(
                client.post(
                    "/auth/password",
                    json={"current_password": PASSWORD, "new_password": f"Newer-pass-{n}"},
                    headers=bearer(tokens),
                )
                for n in range(3)
            )
        )
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [200, 409, 409], [answer.text for answer in answers]
        for answer in answers:
            if answer.status_code == 409:
                assert_problem(answer, 409, "conflict")
        assert set(statuses) <= declared_statuses(service, "POST", "/password")
        # The winner's password is the account's.
        (won,) = [n for n, answer in enumerate(answers) if answer.status_code == 200]
        await login(client, "alice", f"Newer-pass-{won}")


class LosingWrites(StoreWrapper):
    """Every write of a user record loses, as to a flood of concurrent changes."""

    async def replace(self, key: str, value: Any, etag: str) -> str:
        if key.startswith(keys.USERS):
            raise StoreConflict(key)
        return await super().replace(key, value, etag)


async def test_every_change_of_an_account_declares_the_409_it_answers_when_it_keeps_losing(
    tmp_path: Path,
) -> None:
    inner = ObjectStore.from_url("memory://")
    service = S3AuthService(make_settings(), store=inner, mailer=FileMailer(tmp_path))
    async with client_for(mounted(service)) as client:
        root = await admin_tokens(service, client)
        alice = await register(client, "alice")
        tokens = await login(client, "alice")
        await client.post("/auth/password/forgot", json={"username": "alice"})
        reset = await mailed_token(service, "password_reset", "alice@example.com")
        verify = await mailed_token(service, "email_verification", "alice@example.com")
    losing = S3AuthService(make_settings(), store=LosingWrites(inner))
    user = f"/admin/users/{alice['id']}"
    changes = [
        ("PATCH", "/me", {"full_name": "A"}, bearer(tokens)),
        ("PATCH", "/me", {"email": "a@example.org", "current_password": PASSWORD}, bearer(tokens)),
        ("POST", "/password", {"current_password": PASSWORD, "new_password": "Newer-pass-1"},
         bearer(tokens)),
        ("PATCH", user, {"scopes": ["reports"]}, bearer(root)),
        ("POST", f"{user}/password", {"new_password": "Newer-pass-2"}, bearer(root)),
        ("POST", "/password/reset", {"token": reset, "new_password": "Newer-pass-3"}, {}),
        ("POST", "/email/verify", {"token": verify}, {}),
    ]  # fmt: skip
    template = {
        user: "/admin/users/{user_id}",
        f"{user}/password": "/admin/users/{user_id}/password",
    }
    undeclared = []
    async with client_for(mounted(losing)) as client:
        for method, path, body, headers in changes:
            answer = await client.request(method, f"/auth{path}", json=body, headers=headers)
            assert_problem(answer, 409, "conflict")
            if "conflict" not in declared_conflicts(losing, method, template.get(path, path)):
                undeclared.append(f"{method} {template.get(path, path)}")
    assert undeclared == []
    # Nothing changed: the account is as it was.
    stored = await service.get_user_by_id(alice["id"])
    assert stored is not None
    assert (stored.full_name, stored.email, stored.scopes) == (None, "alice@example.com", [])
    assert stored.email_verified is False


@pytest.mark.parametrize("protection", [True, False])
async def test_the_admin_endpoints_say_which_name_is_taken_and_declare_it(
    tmp_path: Path, protection: bool
) -> None:
    # Administrators can list every account, so hiding which name is taken would hide
    # nothing from them: their answers name it, with enumeration protection on or off.
    service = S3AuthService(
        make_settings(enumeration_protection=protection), mailer=FileMailer(tmp_path)
    )
    taken = {"username": "alice", "email": "alice@example.com", "password": PASSWORD}
    async with client_for(mounted(service)) as client:
        root = bearer(await admin_tokens(service, client))
        root_id = (await client.get("/auth/me", headers=root)).json()["id"]
        await register(client, "alice")
        bob = await register(client, "bob")
        answers = [
            ("POST", "/admin/users", {**taken, "email": "new@example.com"}, "username_taken"),
            ("POST", "/admin/users", {**taken, "username": "newbie"}, "email_taken"),
            ("PATCH", f"/admin/users/{bob['id']}", {"email": "alice@example.com"}, "email_taken"),
            ("PATCH", f"/admin/users/{root_id}", {"is_admin": False}, "own_account"),
            ("DELETE", f"/admin/users/{root_id}", None, "own_account"),
        ]
        for method, path, body, code in answers:
            answer = await client.request(method, f"/auth{path}", json=body, headers=root)
            assert_problem(answer, 409, code)
        # Registration hides which, unless told not to.
        hidden = await client.post("/auth/register", json=taken)
        assert_problem(hidden, 409, "account_exists" if protection else "username_taken")
    user = "/admin/users/{user_id}"
    assert declared_conflicts(service, "POST", "/admin/users") == {"username_taken", "email_taken"}
    assert declared_conflicts(service, "PATCH", user) == {"email_taken", "conflict", "own_account"}
    assert declared_conflicts(service, "DELETE", user) == {"own_account", "conflict"}
    names = {"account_exists"} if protection else {"username_taken", "email_taken"}
    assert declared_conflicts(service, "POST", "/register") == names
    for method, path in (("POST", "/admin/users"), ("PATCH", user)):
        assert "account_exists" not in str(declared_operation(service, method, path)), method
