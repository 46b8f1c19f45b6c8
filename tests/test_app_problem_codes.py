"""The problem codes of the auth app's OpenAPI document: every error answer of every
operation lists the codes it may carry (`problem_codes`, from the table), the endpoints
page lists the same codes under the same statuses, and what the table says a handler
raises, the app does answer, here through the real app with real parts (every answer is
checked against the document by `DeclaredAnswers`, so an answer with a code it does not
list fails too)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import make_service
from declared_answers import DeclaredAnswers, listed_codes
from starlette.applications import Starlette
from starlette.routing import Mount
from test_app import PASSWORD, bearer, client_for, login, register

from s3auth_asgi.app import create_auth_app
from s3auth_asgi.app.problem_codes import implied
from s3auth_asgi.problems import PROBLEM_CONTENT_TYPE

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
SETTINGS: dict[str, dict[str, Any]] = {
    "default": {},
    "browser mode": {"refresh_cookie": True},
    "names told": {"enumeration_protection": False},
    "verified email": {"require_verified_email": True},
    "no chosen passwords": {"admin_sets_passwords": False},
    "recent administrators": {"admin_max_age_seconds": 300},
}
APPS = {name: create_auth_app(make_service(**settings)) for name, settings in SETTINGS.items()}
"""With the default limiter, so that the 429s are declared too."""
NOT_AN_OPERATIONS = {
    "not_found": "a path the app lacks",
    "method_not_allowed": "a method a path lacks",
    "internal_error": "a bug, which no operation declares",
}


def _problem_answers(document: dict[str, Any]) -> list[tuple[str, int, list[str] | None]]:
    """Each error answer of `document`: its operation, its status, the codes it lists."""
    found = []
    for item in document["paths"].values():
        for op in item.values():
            for status, answer in op["responses"].items():
                if int(status) >= 400:
                    schema = answer["content"][PROBLEM_CONTENT_TYPE]["schema"]
                    found.append((op["operationId"], int(status), listed_codes(schema)))
    return found


@pytest.mark.parametrize("name", list(APPS))
def test_every_error_answer_of_the_document_lists_its_codes(name: str) -> None:
    answers = _problem_answers(APPS[name].openapi.for_mount("/auth"))  # type: ignore[union-attr]
    assert len(answers) > 100
    for operation, status, codes in answers:
        assert codes, f"{operation} {status} lists no code"
        assert len(set(codes)) == len(codes), f"{operation} {status}: {codes}"


def _endpoints_table() -> dict[int, set[str]]:
    page = (ROOT / "docs" / "endpoints.md").read_text()
    table = page.split("| status | codes | when |", 1)[1].split("\n\n", 1)[0]
    listed: dict[int, set[str]] = {}
    for row in table.splitlines()[2:]:
        status, codes = row.strip().strip("|").split("|")[:2]
        listed[int(status)] = set(re.findall(r"`([a-z_]+)`", codes))
    return listed


def test_the_endpoints_page_lists_the_codes_the_document_declares_by_status() -> None:
    declared: dict[int, set[str]] = {}
    for app in APPS.values():
        for _, status, codes in _problem_answers(app.openapi.for_mount("/auth")):  # type: ignore[union-attr]
            declared.setdefault(status, set()).update(codes or ())
    listed = _endpoints_table()
    for status, codes in listed.items():
        codes -= set(NOT_AN_OPERATIONS)
        assert codes == declared.pop(status, set()), f"the row of {status}"
    assert not declared, f"statuses the page does not list: {declared}"


class Seen(DeclaredAnswers):
    """DeclaredAnswers that also keeps the (operation id, code) of each problem answered."""

    def __init__(self, document: dict[str, Any]) -> None:
        super().__init__(document)
        self.seen: set[tuple[str, str]] = set()

    def check(self, response: httpx.Response) -> None:
        super().check(response)
        operation = self.operation(response.request.method, response.request.url.path)
        if operation is not None and response.status_code >= 400:
            self.seen.add((operation["operationId"], response.json()["code"]))


ELSEWHERE = {
    "conflict": "test_app_conflicts, the race sweep: a concurrent change",
    "server_busy": "test_hash_queue: every hashing place taken",
    "hook_failed": "test_registration_hooks",
    "token_too_large": "test_scope_bound: scopes given before they were bounded",
    "keys_unavailable": "test_keys_remote, test_keys_stored_records: no keys to sign with",
    "refresh_token_reused": "test_app: a spent refresh token past its grace",
    "email_change_unavailable": "test_email_change: no mailer, a verified address required",
    "token_revoked": "test_app: a refresh token of an ended session",
    "token_expired": "test_app_lifecycle: a refresh token past its lifetime",
    "email_taken": "test_app_lifecycle: an address taken before its link is opened",
    "email_not_verified": "test_app_lifecycle: S3AUTH_REQUIRE_VERIFIED_EMAIL",
    "reset_password weak_password": "test_app_lifecycle: with a mailed token",
    "password_breached": "test_breached_passwords: a range API that lists the password",
    "password_check_unavailable": "test_breached_passwords: a range API that does not answer",
    "account_disabled": "test_admin_password_reset: a mailer, a disabled account",
    "mfa_required": "test_app_totp: an account with its second factor on",
    "invalid_mfa_token": "test_app_totp: the second step's token bound to its login",
    "wrong_totp_code": "test_app_totp: a code of the authenticator app",
    "totp_enabled": "test_app_totp",
    "totp_not_enabled": "test_app_totp",
    "totp_not_pending": "test_app_totp",
    "start_totp wrong_password": "test_app_totp",
    "disable_totp wrong_password": "test_app_totp",
    "new_totp_recovery_codes wrong_password": "test_app_totp",
    "login_totp invalid_credentials": "test_session_generation: a change racing the opening",
}
"""The codes a handler raises (`Operation.raises`), of any operation or of one, that need
a clock, a race, a full queue, a hook, keys, settings or a mailed token this test does not
set up, and the tests that reach them."""


async def _drive(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    """Have each operation raise what its handler raises, one request for each."""
    alice = await register(client, "alice")
    tokens = await login(client, "alice")
    me = bearer(tokens)
    body = {"username": "bob", "email": "bob@example.com", "password": PASSWORD}
    for wrong in ({"password": "a"}, {"username": "-"}, {"email": "bob"}, {"username": "alice"}):
        await client.post("/auth/register", json={**body, **wrong})
    await client.post("/auth/login", data={"username": "alice", "password": "Wrong123!"})
    await client.post("/auth/login", data={"username": "carol", "password": PASSWORD})
    await client.post("/auth/refresh", data={"refresh_token": "x.y"})
    await client.post("/auth/refresh", data={"grant_type": "refresh_token"})
    change = {"email": "bob", "current_password": PASSWORD}
    for patch in ({"email": "a@example.com"}, {**change, "current_password": "no"}, change):
        await client.patch("/auth/me", json=patch, headers=me)
    await client.post("/auth/reauthenticate", json={"current_password": "no"}, headers=me)
    for new in ({"current_password": "no"}, {"current_password": PASSWORD, "new_password": "a"}):
        await client.post("/auth/password", json={"new_password": "Other123!", **new}, headers=me)
    await client.post("/auth/password/reset", json={"token": "x", "new_password": PASSWORD})
    await client.post("/auth/email/verify", json={"token": "x"})
    for wrong in ({"password": "a"}, {"username": "-"}, {"email": "bob"}, {"username": "alice"}):
        await client.post("/auth/admin/users", json={**body, **wrong}, headers=admin)
    await client.post(
        "/auth/admin/users", json={**body, "email": "alice@example.com"}, headers=admin
    )
    users = f"/auth/admin/users/{alice['id']}"
    await client.post(f"{users}/password", json={"new_password": "a"}, headers=admin)
    await client.post(f"{users}/password-reset", headers=admin)  # no mailer here
    await client.patch(users, json={"email": "bob"}, headers=admin)
    for if_match in ('"stale"', "stale, unquoted"):
        await client.patch(users, json={"full_name": "A"}, headers={**admin, "If-Match": if_match})
        await client.delete(users, headers={**admin, "If-Match": if_match})
    own = f"/auth/admin/users/{admin['X-Id']}"
    await client.patch(own, json={"is_admin": False}, headers=admin)
    await client.delete(own, headers=admin)


async def test_each_code_a_handler_is_declared_to_raise_is_answered() -> None:
    service = make_service(enumeration_protection=False)
    app = create_auth_app(service, rate_limit=False)
    seen = Seen(app.openapi.for_mount("/auth"))  # type: ignore[union-attr]
    admin_user = await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    host = Starlette(routes=[Mount("/auth", app=app)])
    async with client_for(host, declared=seen) as client:
        admin = {**bearer(await login(client, "root")), "X-Id": admin_user.id}
        await _drive(client, admin)
    declared = {
        (op.operation_id, error.code)
        for op in app.operations
        for error in (*op.raises, *op.conflicts)
        if error not in implied(op)
    }
    missed = {
        (op, code)
        for op, code in declared - seen.seen
        if code not in ELSEWHERE and f"{op} {code}" not in ELSEWHERE
    }
    assert not missed
    named = {code for _, code in declared} | {f"{op} {code}" for op, code in declared}
    assert set(ELSEWHERE) <= named, "an entry for a code no handler is declared to raise"


@pytest.mark.parametrize("name", list(APPS))
def test_a_503_speaks_of_busy_hashing_only_where_it_lists_server_busy(name: str) -> None:
    """The words of a 503 follow its codes: an operation that hashes no password is not
    said to wait for hashing."""
    document = APPS[name].openapi.for_mount("/auth")  # type: ignore[union-attr]
    said = {True: 0, False: 0}
    for item in document["paths"].values():
        for op in item.values():
            answer = op["responses"].get("503")
            if answer is None:
                continue
            codes = listed_codes(answer["content"][PROBLEM_CONTENT_TYPE]["schema"]) or []
            busy = "server_busy" in codes
            assert ("hashing" in answer["description"]) is busy, (op["operationId"], codes)
            said[busy] += 1
    assert said[True] >= 3 and said[False] >= 10, said
