"""No user enumeration, swept across the auth app: wherever a caller names an account it may
not see, by username, email or refresh token, the answer (status, body, every header, the
RateLimit fields included), the store requests it makes (in order, by kind of object), the
password hashes it runs, and the hooks it runs (after the answer, never before) are the same
whether the account is active, verified or not, disabled, deleted, never finished, a
look-alike's or nobody's, and whichever way its name is folded. No answer waits for the mail
server. What must differ (a mail goes to an account that can use it) is asserted as such;
what differs on purpose is in docs/security.md (6.3.8).

Each case runs in a world of its own, a new process as far as the auth app can tell, so
that no case inherits another's limits, memory of refusals or one-time work."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, fields, replace
from typing import Any, get_args

import anyio
import httpx
import msgspec
import pytest
from conftest import make_settings
from pwdlib.hashers.argon2 import Argon2Hasher
from support import Clock, late_session
from test_app import PASSWORD, client_for, declared_for, mounted
from test_password_change_faults import RequestLog
from test_recovery import HeldMailer

from s3auth_asgi import S3AuthService
from s3auth_asgi.account_tokens import Purpose
from s3auth_asgi.app import DEFAULT_AUTH_LIMITS
from s3auth_asgi.events import AuthEvent
from s3auth_asgi.hooks import HookName, Hooks
from s3auth_asgi.identifiers import new_id, normalise_username
from s3auth_asgi.models import IndexEntry, User
from s3auth_asgi.storage import ObjectInfo, ObjectStore, Store, keys
from s3auth_asgi.totp import new_seed
from s3auth_asgi.types import Message, Receive, Scope, Send

pytestmark = pytest.mark.anyio

WRONG = "Wrong-horse-9"
LINKS: dict[Purpose, str] = {
    "password-reset": "/auth/password/reset",
    "email-verification": "/auth/email/verify",
    "email-change": "/auth/email/verify",
}
PER_ACCOUNT = DEFAULT_AUTH_LIMITS["login_account"].max_requests
SETTINGS = make_settings(rate_limit_store="store", public_url="https://app.example.com")
DECLARED = declared_for(SETTINGS, rate_limit=True)
"""What the app of every world declares: each answer is one of those."""


def _kind(key: str) -> str:
    parts = key.split("/")
    return "/".join(parts[:2]) if parts[0] in ("index", "account-tokens", "ratelimit") else parts[0]


class Recorder(RequestLog):
    """Records each request and the kind of object it is for (never which one, nor whether
    it was found: an object found is read whole, the documented fraction of a millisecond)."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner, _kind)

    async def delete(self, key: str) -> None:
        self.log.append(f"delete {self.kind(key)}")
        await super().delete(key)

    async def list_page(
        self, prefix: str, after: str | None, limit: int
    ) -> tuple[list[ObjectInfo], bool]:
        self.log.append(f"list {self.kind(prefix)}")
        return await super().list_page(prefix, after, limit)


class Argon2Calls:
    """Every argon2 hash and verification any hasher runs, counted where pwdlib runs them."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def counting(self, run: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.count += 1
            return run(*args, **kwargs)

        return counted


@pytest.fixture(name="argon2")
def argon2_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[Argon2Calls]:
    calls = Argon2Calls()
    for name in ("hash", "verify"):
        monkeypatch.setattr(Argon2Hasher, name, calls.counting(getattr(Argon2Hasher, name)))
    yield calls


class Answered:
    """The auth app, noting when its answer has gone out in full."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.done = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.done = False

        async def sending(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.done = True

        await self.app(scope, receive, sending)


@dataclass
class World:
    """known (unverified), sure (verified), off (disabled) and gone (deleted), each with a
    session opened before; `orphan`, a username whose registration never finished. Every
    limit kept in the store, as on a fleet."""

    service: S3AuthService
    store: Recorder
    mailer: HeldMailer
    app: Answered
    hooks_run: list[tuple[str, str, str | None, bool]] = field(default_factory=list)
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    links: dict[str, dict[Purpose, str]] = field(default_factory=dict)

    async def post(self, path: str, body: dict[str, str], *, ip: str = "203.0.113.1") -> Any:
        async with client_for(self.app, peer=(ip, 4000), declared=DECLARED) as client:
            form = path.endswith("/login")
            return await (client.post(path, data=body) if form else client.post(path, json=body))


async def build_world() -> World:
    hooks = Hooks()
    store = Recorder(ObjectStore.from_url("memory://"))
    mailer = HeldMailer()
    service = S3AuthService(SETTINGS, store=store, clock=Clock(), mailer=mailer, hooks=hooks)
    world = World(service, store, mailer, Answered(mounted(service, rate_limit=True)))
    for hook in get_args(HookName):

        async def ran(event: AuthEvent, hook: str = hook) -> None:
            world.hooks_run.append((hook, event.outcome, event.reason, world.app.done))

        hooks.on(hook)(ran)
    users = {
        "known": await service.create_user("known", "known@example.com", PASSWORD),
        "sure": await service.create_user(
            "sure", "sure@example.com", PASSWORD, email_verified=True
        ),
        "off": await service.create_user("off", "off@example.com", PASSWORD),
        "gone": await service.create_user("gone", "gone@example.com", PASSWORD),
        "second": await service.create_user("second", "second@example.com", PASSWORD),
    }
    # Its second factor on (with no notice, which the held mailer would hold): a wrong
    # password is answered before the factor is looked at.
    second = users["second"]
    found = await store.get(keys.user(second.id), User)
    assert found is not None
    sealed = service.seeds.seal(new_seed(), second.id)
    factor = msgspec.structs.replace(found.value, totp_secret=sealed)
    await store.replace(keys.user(second.id), factor, found.etag)
    # Its session is opened from the record with the factor on, as its login's second step
    # opens it: one opened from the record read before would be refused (`session_opening`).
    users["second"] = factor
    for name, user in users.items():
        world.refresh_tokens[name] = (await service.create_token_pair(user)).refresh_token
        world.links[name] = {p: await service.account_tokens.issue(p, user) for p in LINKS}
    ended = await service.create_token_pair(users["known"])
    await service.revoke_refresh_token(ended.refresh_token)
    world.refresh_tokens["logged out"] = ended.refresh_token
    elsewhere = S3AuthService(SETTINGS, store=ObjectStore.from_url("memory://"))
    world.links["never"] = {
        p: await elsewhere.account_tokens.issue(p, users["known"]) for p in LINKS
    }
    # Signed with the same key, of a session in a store the account was never in (which
    # opens none from a record that is not there: written as an earlier version would).
    world.refresh_tokens["never"] = (await late_session(elsewhere, users["known"])).refresh_token
    await service.update_user(users["off"].id, is_active=False)
    await service.delete_user(users["gone"].id)
    orphan = keys.username_index(normalise_username("orphan"))
    await store.inner.create(orphan, IndexEntry(user_id=new_id(), claim=new_id()))
    await service.mail.drain()
    await service.ensure_fresh()
    return world


@dataclass(frozen=True)
class Outcome:
    status: int
    body: bytes
    headers: list[tuple[str, str]]
    requests: list[str]
    hashes: int
    hooks: list[tuple[str, str, str | None, bool]]


async def observe(
    argon2: Argon2Calls, send: Callable[[World], Awaitable[httpx.Response]]
) -> tuple[Outcome, World]:
    """`send` in a new world: what the caller sees and what it cost. No answer waits for the
    mail server, which answers only once the answer is in."""
    world = await build_world()
    world.store.log.clear()
    argon2.count = 0
    with anyio.fail_after(10):
        response = await send(world)
    outcome = Outcome(
        response.status_code,
        response.content,
        sorted(response.headers.items()),
        list(world.store.log),
        argon2.count,
        list(world.hooks_run),
    )
    world.mailer.released.set()
    await world.service.mail.drain()
    return outcome, world


def only(outcomes: dict[str, Outcome]) -> Outcome:
    """The one outcome of every case; else a failure naming each case that differs from the
    first and how."""
    first, reference = next(iter(outcomes.items()))
    differ = {
        label: {
            f.name: getattr(o, f.name)
            for f in fields(o)
            if getattr(o, f.name) != getattr(reference, f.name)
        }
        for label, o in outcomes.items()
        if o != reference
    }
    assert not differ, f"unlike {first!r}, {reference}: {differ}"
    return reference


LOGIN_NAMES = {
    "username": {
        "active": "known",
        "verified": "sure",
        "folded": "KNOWN",
        "disabled": "off",
        "deleted": "gone",
        "second factor": "second",
        "never finished": "orphan",
        "look-alike": "kn0wn",
        "nobody": "nobody",
    },
    "email": {
        "active": "known@example.com",
        "verified": "sure@example.com",
        "folded": "Known@Example.COM",
        "disabled": "off@example.com",
        "deleted": "gone@example.com",
        "second factor": "second@example.com",
        "nobody": "nobody@example.com",
    },
}


@pytest.mark.parametrize("shape", LOGIN_NAMES)
async def test_a_failed_login_is_the_same_for_every_name(shape: str, argon2: Argon2Calls) -> None:
    names = LOGIN_NAMES[shape]
    attempts = {label: (name, WRONG) for label, name in names.items()}
    attempts["disabled, right password"] = (names["disabled"], PASSWORD)
    outcomes = {}
    for label, (name, password) in attempts.items():
        body = {"username": name, "password": password}
        outcomes[label], _ = await observe(argon2, lambda w, b=body: w.post("/auth/login", b))
    seen = only(outcomes)
    assert seen.status == 401
    # One verification at the current cost, whoever the name is; the account's budget and
    # the address's read before it, charged after, and the event kept in a trail.
    assert seen.hashes == 1
    assert seen.requests == [
        f"get index/{shape}",
        "get ratelimit/login.account",
        "get ratelimit/login.address",
        "get users",
        *("create ratelimit/login.account", "create ratelimit/login.address"),
        "create audit",
    ]
    assert seen.hooks == [("login_failed", "failure", "invalid_credentials", True)]


@pytest.mark.parametrize("shape", LOGIN_NAMES)
async def test_a_spent_account_budget_is_refused_alike(shape: str, argon2: Argon2Calls) -> None:
    names = {k: v for k, v in LOGIN_NAMES[shape].items() if k in ("active", "disabled", "deleted")}
    names["nobody"] = LOGIN_NAMES[shape]["nobody"]
    outcomes = {}
    for label, name in names.items():
        for password in (WRONG, PASSWORD):

            async def past_the_budget(w: World, name: str = name, password: str = password) -> Any:
                for i in range(PER_ACCOUNT):
                    body = {"username": name, "password": WRONG}
                    assert (
                        await w.post("/auth/login", body, ip=f"198.51.100.{i}")
                    ).status_code == 401
                # The notice of the spent budget, after its answer: not this request's.
                w.mailer.released.set()
                await w.service.mail.drain()
                w.store.log.clear()
                w.hooks_run.clear()
                argon2.count = 0
                return await w.post("/auth/login", {"username": name, "password": password})

            outcomes[f"{label}, {password}"], _ = await observe(argon2, past_the_budget)
    seen = only(outcomes)
    assert seen.status == 429
    assert (seen.requests, seen.hashes) == (
        [f"get index/{shape}", "get ratelimit/login.account"],
        0,
    )


# Every username, and the active account's address after its name.
MAIL_NAMES = {
    "active": LOGIN_NAMES["username"]["active"],
    "active, by email": LOGIN_NAMES["email"]["active"],
    **LOGIN_NAMES["username"],
}
MAILED = {
    "/auth/password/forgot": {"active", "active, by email", "verified", "folded", "second factor"},
    "/auth/email/verify/resend": {"active", "active, by email", "folded", "second factor"},
}


@pytest.mark.parametrize("path", MAILED)
async def test_asking_for_a_mail_is_the_same_for_every_name(path: str, argon2: Argon2Calls) -> None:
    outcomes, mailed = {}, set()
    for label, name in MAIL_NAMES.items():
        outcome, world = await observe(argon2, lambda w, n=name: w.post(path, {"username": n}))
        # The index kind follows from the name's shape, which the caller chose.
        shapeless = [r.replace("index/email", "index/username") for r in outcome.requests]
        outcomes[label] = replace(outcome, requests=shapeless)
        if world.mailer.sent:
            mailed.add(label)
    seen = only(outcomes)
    assert (seen.status, seen.hashes, seen.hooks) == (202, 0, [])
    assert len(seen.requests) == 9  # the address's limit, index, user, two budgets, token
    # What must differ: the mail, to an account that can use the link, after the answer.
    assert mailed == MAILED[path]


TAKEN = {
    "username": ("known", "fresh@example.com"),
    "folded username": ("KNOWN", "fresh@example.com"),
    "disabled's username": ("off", "fresh@example.com"),
    "never finished": ("orphan", "fresh@example.com"),
    "both": ("known", "known@example.com"),
    "look-alike": ("kn0wn", "fresh@example.com"),
    "email": ("fresh", "known@example.com"),
    "folded email": ("fresh", "KNOWN@example.com"),
    "disabled's email": ("fresh", "off@example.com"),
}


async def test_a_taken_name_at_registration_gets_one_answer(argon2: Argon2Calls) -> None:
    outcomes, requests = {}, {}
    for label, (username, email) in TAKEN.items():
        body = {"username": username, "email": email, "password": PASSWORD}
        outcome, _ = await observe(argon2, lambda w, b=body: w.post("/auth/register", b))
        requests[label] = outcome.requests
        outcomes[label] = replace(outcome, requests=[])
    seen = only(outcomes)
    assert (seen.status, seen.hashes, seen.hooks) == (409, 1, [])
    # The requests stop at the name refused first (docs/security.md: the caller chose the
    # other one, so they tell nothing a registration with one fresh name would not).
    refused_at = {
        label: next(r for r in log if r.startswith("get index/")).removeprefix("get index/")
        for label, log in requests.items()
    }
    assert refused_at == {
        label: "email" if "email" in label else "skeleton" if label == "look-alike" else "username"
        for label in TAKEN
    }


@pytest.mark.parametrize("path", ["/auth/refresh", "/auth/logout"])
async def test_a_refresh_token_of_an_account_gone_is_answered_alike(
    path: str, argon2: Argon2Calls
) -> None:
    outcomes = {}
    for label in ("off", "gone", "logged out", "never"):
        outcomes[label], _ = await observe(
            argon2, lambda w, k=label: w.post(path, {"refresh_token": w.refresh_tokens[k]})
        )
    seen = only(outcomes)
    assert seen.status == (401 if path == "/auth/refresh" else 204)
    assert (seen.requests, seen.hashes) == (["get sessions"], 0)


@pytest.mark.parametrize("purpose", LINKS)
async def test_a_link_of_an_account_gone_is_refused_alike(
    purpose: Purpose, argon2: Argon2Calls
) -> None:
    outcomes, requests = {}, {}
    for label in ("off", "gone", "never"):

        async def use(w: World, label: str = label) -> Any:
            body = {"token": w.links[label][purpose], "new_password": "Brand-new-pass-7"}
            if purpose != "password-reset":
                del body["new_password"]
            return await w.post(LINKS[purpose], body)

        outcome, _ = await observe(argon2, use)
        requests[label] = outcome.requests
        outcomes[label] = replace(outcome, requests=[])
    seen = only(outcomes)
    assert (seen.status, seen.hashes) == (400, 0)
    assert b'"invalid_account_token"' in seen.body
    # The requests go as far as the link leads: only its holder, who was mailed it for the
    # account, can follow them there (docs/security.md).
    token = f"get account-tokens/{purpose}"
    assert requests == {
        "never": [token],
        "gone": [token, "get users"],
        "off": [token, "get users", "create sessions"],  # the generation's marker
    }
