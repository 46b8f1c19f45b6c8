"""The rate-limit fields in the OpenAPI document are the ones the app sends: every
operation is asked for real (until it refuses, where it can), and each answer carries
only `RateLimit-Policy`, `RateLimit`, `X-RateLimit-*` and `Retry-After` fields its
document declares for that status (a success or a 429: all of them), under the limiter's
settings (legacy fields on or off, browser mode, no limiter at all); no operation declares
one that none of its answers sends, nor a 429 that it never answers."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from itertools import count, pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import make_settings
from declared_answers import DeclaredAnswers
from starlette.applications import Starlette
from starlette.routing import Mount
from test_app import PASSWORD, bearer, client_for
from test_app_lifecycle import NEW_PASSWORD, mailed_token

from s3auth_asgi import S3AuthService, User
from s3auth_asgi.app import DEFAULT_AUTH_LIMITS, create_auth_app
from s3auth_asgi.app.cookies import REFRESH_COOKIE
from s3auth_asgi.app.operations import Operation
from s3auth_asgi.mail import FileMailer
from s3auth_asgi.ratelimit import RateLimit, RateLimiter
from s3auth_asgi.totp import decode_secret, totp

pytestmark = pytest.mark.anyio

LIMIT_FIELDS = {
    "ratelimit-policy",
    "ratelimit",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
}
LEGACY_FIELDS = {name for name in LIMIT_FIELDS if name.startswith("x-")}
FAMILY = {*LIMIT_FIELDS, "retry-after"}
FORGED = "rt1.00000000000000000000000000000000.00000000000000000000000000000000.forged"
ONE_EACH = {name: RateLimit(max_requests=1, window_seconds=600) for name in DEFAULT_AUTH_LIMITS}
"""Every limit of the app, spent by one request: the second one is refused."""


class Run:
    """An auth app over memory://, the document it serves, and every answer its operations
    gave, by operation id; each client is another address, each user another account."""

    def __init__(self, tmp_path: Path, *, limited: bool, legacy: bool, browser: bool) -> None:
        settings = make_settings(refresh_cookie=browser)
        self.service = S3AuthService(settings, mailer=FileMailer(tmp_path / "outbox"))
        limiter = RateLimiter(ONE_EACH, legacy_headers=legacy)
        self.app = create_auth_app(self.service, limiter=limiter, rate_limit=limited)
        self.host = Starlette(routes=[Mount("/auth", app=self.app)])
        self.operations = {op.operation_id: op for op in self.app.operations}
        self.answers: dict[str, list[httpx.Response]] = defaultdict(list)
        self.stack = AsyncExitStack()
        self._numbers = count(1)

    async def client(self) -> httpx.AsyncClient:
        peer = (f"192.0.2.{next(self._numbers)}", 1)
        client = client_for(self.host, base_url="https://testserver", peer=peer)
        return await self.stack.enter_async_context(client)

    def name(self) -> str:
        return f"user{next(self._numbers)}"

    async def user(self, *, admin: bool = False) -> tuple[User, dict[str, str]]:
        name = self.name()
        user = await self.service.create_user(name, f"{name}@example.com", PASSWORD, is_admin=admin)
        return user, bearer(
            {"access_token": (await self.service.create_token_pair(user)).access_token}
        )

    async def send(
        self,
        client: httpx.AsyncClient,
        operation_id: str,
        path_ids: dict[str, str] | None = None,
        **options: Any,
    ) -> httpx.Response:
        op = self.operations[operation_id]
        url = "/auth" + op.path.format(**(path_ids or {}))
        response = await client.request(op.method, url, **options)
        self.answers[operation_id].append(response)
        return response

    async def document(self) -> dict[str, Any]:
        response = await (await self.client()).get("/auth/openapi.json")
        assert response.status_code == 200
        document: dict[str, Any] = response.json()
        return document


Scenario = Callable[[Run], Awaitable[None]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(operation_id: str) -> Callable[[Scenario], Scenario]:
    def add(function: Scenario) -> Scenario:
        SCENARIOS[operation_id] = function
        return function

    return add


def _registration(name: str) -> dict[str, Any]:
    return {"json": {"username": name, "email": f"{name}@example.com", "password": PASSWORD}}


@scenario("register")
async def _register(run: Run) -> None:
    client = await run.client()
    await run.send(client, "register", **_registration("rhea"))
    await run.send(client, "register", **_registration("remy"))


@scenario("login")
async def _login(run: Run) -> None:
    user, _ = await run.user()
    client = await run.client()
    for password in (PASSWORD, "Wrong123!", "Wrong123!", PASSWORD):
        await run.send(client, "login", data={"username": user.username, "password": password})
    # Another address, without the device cookie the first one was given.
    other = await run.client()
    await run.send(other, "login", data={"username": user.username, "password": "Wrong123!"})


@scenario("refresh")
async def _refresh(run: Run) -> None:
    user, _ = await run.user()
    pair = await run.service.create_token_pair(user)
    client = await run.client()
    # In browser mode the first answer sets the cookie, which the second then carries: from
    # a page of the app's own origin, as a browser says.
    own = {"origin": "https://testserver"}
    await run.send(client, "refresh", data={"refresh_token": pair.refresh_token}, headers=own)
    await run.send(client, "refresh", data={"refresh_token": FORGED}, headers=own)
    # A refused cookie: in browser mode the answer clears it, and is the handler's (a
    # refused token in the body leaves the cookie, and is raised).
    cookie = {"cookie": f"{REFRESH_COOKIE}={FORGED}", **own}
    await run.send(await run.client(), "refresh", json={}, headers=cookie)


@scenario("logout")
async def _logout(run: Run) -> None:
    client = await run.client()
    _, first = await run.user()
    _, second = await run.user()
    await run.send(client, "logout", headers=first)
    await run.send(client, "logout", headers=second)


@scenario("logout_all")
async def _logout_all(run: Run) -> None:
    client = await run.client()
    _, first = await run.user()
    _, second = await run.user()
    await run.send(client, "logout_all", headers=first)
    await run.send(client, "logout_all", headers=second)


@scenario("list_sessions")
async def _list_sessions(run: Run) -> None:
    _, headers = await run.user()
    await run.send(await run.client(), "list_sessions", headers=headers)


@scenario("end_session")
async def _end_session(run: Run) -> None:
    user, headers = await run.user()
    other = await run.service.create_token_pair(user)
    session_id = run.service.tokens.parse_refresh_token(other.refresh_token).session_id
    await run.send(await run.client(), "end_session", {"session_id": session_id}, headers=headers)


@scenario("get_me")
async def _get_me(run: Run) -> None:
    _, headers = await run.user()
    await run.send(await run.client(), "get_me", headers=headers)


@scenario("update_me")
async def _update_me(run: Run) -> None:
    _, headers = await run.user()
    client = await run.client()
    await run.send(client, "update_me", headers=headers, json={"full_name": "Una"})
    await run.send(client, "update_me", headers=headers, json={"full_name": "Una"})
    # A new address needs the password, checked as a login's: its answers show that too.
    for password in ("Wrong123!", PASSWORD):
        _, headers = await run.user()
        change = {"email": f"{run.name()}@example.com", "current_password": password}
        await run.send(await run.client(), "update_me", headers=headers, json=change)


@scenario("change_password")
async def _change_password(run: Run) -> None:
    _, headers = await run.user()
    client = await run.client()
    for current in ("Wrong123!", PASSWORD):
        change = {"current_password": current, "new_password": NEW_PASSWORD}
        await run.send(client, "change_password", headers=headers, json=change)
    _, headers = await run.user()
    change = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    await run.send(await run.client(), "change_password", headers=headers, json=change)


async def _as_admin(run: Run, operation_id: str, **options: Any) -> None:
    target, _ = await run.user()
    _, headers = await run.user(admin=True)
    ids = {"user_id": target.id}
    if "{session_id}" in run.operations[operation_id].path:
        pair = await run.service.create_token_pair(target)
        ids["session_id"] = run.service.tokens.parse_refresh_token(pair.refresh_token).session_id
    client = await run.client()
    for _ in range(2):  # the second refused where a limit counts the call
        await run.send(client, operation_id, ids, headers=headers, **options)


ADMIN_CALLS: dict[str, dict[str, Any]] = {
    "list_users": {},
    "create_user": {
        "json": {"username": "made", "email": "made@example.com", "password": PASSWORD}
    },
    "get_user": {},
    "update_user": {"json": {"full_name": "Changed"}},
    "delete_user": {},
    "revoke_user": {},
    "set_user_password": {"json": {"new_password": NEW_PASSWORD}},
    "start_user_password_reset": {},
    "list_user_sessions": {},
    "end_user_session": {},
    "list_user_events": {},
    "end_all_sessions": {},  # the admin's own session too: the second call is a 401
}
for _operation_id, _options in ADMIN_CALLS.items():
    scenario(_operation_id)(functools.partial(_as_admin, operation_id=_operation_id, **_options))


@scenario("jwks")
async def _jwks(run: Run) -> None:
    await run.send(await run.client(), "jwks")


@scenario("forgot_password")
async def _forgot_password(run: Run) -> None:
    user, _ = await run.user()
    client = await run.client()
    for _ in range(2):
        await run.send(client, "forgot_password", json={"username": user.username})


@scenario("resend_verification")
async def _resend_verification(run: Run) -> None:
    user, _ = await run.user()
    client = await run.client()
    for _ in range(2):
        await run.send(client, "resend_verification", json={"username": user.username})


@scenario("reset_password")
async def _reset_password(run: Run) -> None:
    user, _ = await run.user()
    await run.service.request_password_reset(user.username)
    token = await mailed_token(run.service, "password_reset", user.email)
    client = await run.client()
    for _ in range(2):
        reset = {"token": token, "new_password": NEW_PASSWORD}
        await run.send(client, "reset_password", json=reset)


@scenario("verify_email")
async def _verify_email(run: Run) -> None:
    user, _ = await run.user()
    await run.service.send_email_verification(user)
    token = await mailed_token(run.service, "email_verification", user.email)
    client = await run.client()
    for _ in range(2):
        await run.send(client, "verify_email", json={"token": token})


@scenario("list_my_events")
async def _list_my_events(run: Run) -> None:
    _, headers = await run.user()
    client = await run.client()
    for _ in range(2):
        await run.send(client, "list_my_events", headers=headers)


async def _with_factor(run: Run) -> tuple[User, dict[str, str], bytes]:
    """A user whose second factor is on, its first code spent, and its seed."""
    user, headers = await run.user()
    enrolment = await run.service.start_totp(user.id, issuer="test")
    seed = decode_secret(enrolment.secret)
    await run.service.confirm_totp(user.id, totp(seed, run.service.clock()))
    return user, headers, seed


def _next_code(run: Run, seed: bytes) -> str:
    """A code of the step after the one spent: within the window, not used yet."""
    return totp(seed, run.service.clock() + 30)


@scenario("start_totp")
async def _start_totp(run: Run) -> None:
    _, headers = await run.user()
    client = await run.client()
    # Right, wrong (charged), then refused where the budget of one is spent.
    for password in (PASSWORD, "Wrong123!", PASSWORD):
        body = {"current_password": password}
        await run.send(client, "start_totp", headers=headers, json=body)


@scenario("confirm_totp")
async def _confirm_totp(run: Run) -> None:
    for codes in (("right",), ("000000", "right")):
        user, headers = await run.user()
        seed = decode_secret((await run.service.start_totp(user.id, issuer="test")).secret)
        client = await run.client()
        for code in codes:
            code = totp(seed, run.service.clock()) if code == "right" else code
            await run.send(client, "confirm_totp", headers=headers, json={"code": code})


@scenario("new_totp_recovery_codes")
async def _new_totp_recovery_codes(run: Run) -> None:
    # Right, then wrong (charged) on an account of its own; then the first account again,
    # refused by its own limit of one.
    first = None
    for password in (PASSWORD, "Wrong123!"):
        _, headers, _ = await _with_factor(run)
        first = first or headers
        body = {"current_password": password}
        await run.send(await run.client(), "new_totp_recovery_codes", headers=headers, json=body)
    body = {"current_password": PASSWORD}
    await run.send(await run.client(), "new_totp_recovery_codes", headers=first, json=body)


@scenario("disable_totp")
async def _disable_totp(run: Run) -> None:
    for codes in (("right",), ("000000", "right")):
        _, headers, seed = await _with_factor(run)
        client = await run.client()
        for code in codes:
            code = _next_code(run, seed) if code == "right" else code
            body = {"current_password": PASSWORD, "code": code}
            await run.send(client, "disable_totp", headers=headers, json=body)


@scenario("login_totp")
async def _login_totp(run: Run) -> None:
    for codes in (("right",), ("000000", "right")):
        user, _, seed = await _with_factor(run)
        client = await run.client()
        login = {"username": user.username, "password": PASSWORD}
        token = (await client.post("/auth/login", data=login)).json()["mfa_token"]
        for code in codes:
            code = _next_code(run, seed) if code == "right" else code
            await run.send(client, "login_totp", data={"mfa_token": token, "code": code})


@scenario("reauthenticate")
async def _reauthenticate(run: Run) -> None:
    _, headers = await run.user()
    client = await run.client()
    for password in (PASSWORD, "Wrong123!", PASSWORD):
        body = {"current_password": password}
        await run.send(client, "reauthenticate", headers=headers, json=body)


@scenario("admin_disable_totp")
async def _admin_disable_totp(run: Run) -> None:
    target, _, _ = await _with_factor(run)
    _, headers = await run.user(admin=True)
    client = await run.client()
    for _ in range(2):  # the second finds it off
        await run.send(client, "admin_disable_totp", {"user_id": target.id}, headers=headers)


def _declared(document: dict[str, Any], op: Operation, status: int) -> set[str]:
    responses = document["paths"][op.path][op.method.lower()]["responses"]
    assert str(status) in responses, f"{op.operation_id} answered {status}, not declared"
    return {name.lower() for name in responses[str(status)].get("headers", {})} & FAMILY


SETTINGS = {
    "limited": {"limited": True, "legacy": False, "browser": False},
    "legacy fields, browser mode": {"limited": True, "legacy": True, "browser": True},
    "no limiter": {"limited": False, "legacy": False, "browser": False},
}


@pytest.mark.parametrize("options", SETTINGS.values(), ids=SETTINGS.keys())
async def test_every_operation_sends_the_rate_limit_fields_its_document_declares(
    tmp_path: Path, options: dict[str, bool]
) -> None:
    run = Run(tmp_path, **options)
    assert set(SCENARIOS) == set(run.operations)
    async with run.stack:
        document = await run.document()
        for operation_id, play in SCENARIOS.items():
            await play(run)
            assert run.answers[operation_id], operation_id
    for operation_id, op in run.operations.items():
        answers = run.answers[operation_id]
        assert op.success_status in {answer.status_code for answer in answers}, operation_id
        sent_by_status: dict[int, set[str]] = defaultdict(set)
        for answer in answers:
            status = answer.status_code
            declared = _declared(document, op, status)
            sent = {name.lower() for name in answer.headers} & FAMILY
            where = (operation_id, status, sent, declared)
            assert sent <= declared, where
            if status in (op.success_status, 429):
                assert sent == declared, where
            for name in sent & LEGACY_FIELDS:  # one policy: one whole number
                assert len(answer.headers.get_list(name)) == 1, where
                assert int(answer.headers[name]) >= 0, where
            sent_by_status[status] |= sent
        item = document["paths"][op.path][op.method.lower()]
        for status, response in item["responses"].items():
            wanted = LIMIT_FIELDS | ({"retry-after"} if status == "429" else set())
            declared = {name.lower() for name in response.get("headers", {})} & wanted
            # Every field declared is sent, by some answer of that status.
            assert declared <= sent_by_status.get(int(status), set()), (
                operation_id,
                status,
                declared,
            )
    if not options["limited"]:
        # Nothing is ever refused: no operation says it may be.
        refusals = [
            (path, method)
            for path, item in document["paths"].items()
            for method, operation in item.items()
            if "429" in operation["responses"]
        ]
        assert refusals == []


MAIL_BUDGETS = {name: ONE_EACH[name] for name in ("recovery_account", "recovery_inbox")}
"""The budgets of an inbox, alone: what a changed password's notice and a new address's
mails are counted against, refused with Retry-After alone (`check_mails`)."""


async def test_the_mail_budgets_alone_declare_the_429_they_answer(tmp_path: Path) -> None:
    service = S3AuthService(make_settings(), mailer=FileMailer(tmp_path / "outbox"))
    app = create_auth_app(service, limiter=RateLimiter(MAIL_BUDGETS))
    document = app.openapi.for_mount("/auth")
    host = Starlette(routes=[Mount("/auth", app=app)])
    answers = []
    async with client_for(host, declared=DeclaredAnswers(document)) as client:
        user = await service.create_user("alice", "alice@example.com", PASSWORD)
        tokens = bearer({"access_token": (await service.create_token_pair(user)).access_token})
        for old, new in pairwise([PASSWORD, NEW_PASSWORD, f"{NEW_PASSWORD}-2"]):
            change = {"current_password": old, "new_password": new}
            answers.append(await client.post("/auth/password", json=change, headers=tokens))
            if answers[-1].status_code == 200:
                tokens = bearer(answers[-1].json())
        for i in (1, 2):  # each tells alice@ of the request: her inbox's budget
            move = {"email": f"new{i}@example.com", "current_password": NEW_PASSWORD}
            answers.append(await client.patch("/auth/me", json=move, headers=tokens))
    assert [a.status_code for a in answers] == [200, 429, 200, 429]
    for path, method in [("/password", "post"), ("/me", "patch")]:
        refusal = document["paths"][path][method]["responses"]["429"]
        # Retry-After alone: no RateLimit field tells how often others had mails sent.
        assert {name.lower() for name in refusal["headers"]} & FAMILY == {"retry-after"}
