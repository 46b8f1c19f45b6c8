"""The auth app driven at random, as its clients would, through two instances on one store
whose clocks differ by a few seconds (within the configured skew), a request going to
either: register, log in, refresh (with the current refresh token and with a spent one),
log out (one session, every session), list and end sessions, change the profile, the
password and the address, reset it and verify it by the links mailed, and the
administrators' operations; time passes between them (a week, at times: every session
idles out). Each run draws the second host's offset, a refresh grace of 0 or 10 s, a
session cap of 2 or 100, and whether it runs in browser mode (the refresh token in a cookie
only, each request from a page of the app's own origin, and other sites' pages making the
browser send some: refused), requires a verified address for a login, and runs the rate
limits (each limit too large to be reached); revocations are synced at every request, so
an ended session's access token is refused at once on both hosts.

A model of the accounts says what each answer must be, and after every step:

- every answer is one the OpenAPI document declares for the operation (`DeclaredAnswers`),
  an error a problem with a code, never a 500;
- the current password logs in and an old one does not; a refresh token whose session
  ended (a logout, a reuse, a new password, a disabling) never works again, nor its access
  tokens; GET /sessions lists exactly the sessions the model has live, and the store holds
  exactly those (and sessions idled out, until swept), and none of a deleted account;
- the user records and the name index agree (`StateCheck`: what `s3auth doctor` checks);
- in browser mode, no answer has a refresh token in its body, and every answer that ends the
  caller's session (a refused refresh, a logout, the end of one's own session) clears the
  cookie, and no other does.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
from conftest import make_settings
from declared_answers import DeclaredAnswers
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from starlette.applications import Starlette
from starlette.routing import Mount
from support import SharedTime, SkewedClock, StoreOnSharedTime
from test_app import auth_app, client_for

from s3auth_asgi import S3AuthService
from s3auth_asgi.auth_limits import DEFAULT_AUTH_LIMITS
from s3auth_asgi.consistency import StateCheck
from s3auth_asgi.findings import Finding
from s3auth_asgi.identifiers import session_age
from s3auth_asgi.mail import FileMailer
from s3auth_asgi.storage import ObjectStore, keys

NAMES = ("ann", "bob", "cat")
PASSWORDS = ("Secret123!", "Second456?", "Third789#x")
ROOT_PASSWORD = "RootPass123!"
PROBLEM = "application/problem+json"
RESET_SECONDS = make_settings().password_reset_minutes * 60
ACCESS_SECONDS = make_settings().access_token_expire_minutes * 60
LINK_SECONDS = make_settings().email_verification_hours * 3600
WEEK = make_settings().refresh_token_expire_days * 86400 + 60
MARGIN = 30
"""Seconds either side of an expiry in which the model accepts either answer: the hosts'
clocks differ by a few."""
OWN = "https://testserver"
EVIL = "https://evil.example"
REFRESH_COOKIE = "s3auth_refresh"
GENEROUS = ",".join(f"{name}=100000/60" for name in DEFAULT_AUTH_LIMITS)
"""Every limit on, none ever reached: the limiter's headers are checked, not its refusals."""
_TOKEN = re.compile(r"#token=((pr1|ev1|ec1)\.[A-Za-z0-9._-]+)")


def claims(token: str) -> dict[str, Any]:
    """An access token's claims, unverified (the service verifies them)."""
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


class SessionEnded(Exception):
    """The session refreshed beyond the cap, and ended."""


@dataclass
class Session:
    sid: str
    refresh: str
    access: str
    issued: float
    """The shared time its access token was issued at."""
    spent: list[str] = field(default_factory=list)
    rotated: float = 0.0
    """When its last rotation was made, by the clock of the host that made it."""


@dataclass
class Mailed:
    kind: str
    token: str
    to: str
    issued: float
    generation: int
    email_changes: int
    requests: int


@dataclass
class Account:
    name: str
    id: str
    email: str
    password: str
    verified: bool = False
    active: bool = True
    scopes: tuple[str, ...] = ()
    pending: str = ""
    old_passwords: set[str] = field(default_factory=set)
    generation: int = 0
    email_changes: int = 0
    requests: int = 0
    sessions: dict[str, Session] = field(default_factory=dict)
    ended: list[str] = field(default_factory=list)
    mailed: list[Mailed] = field(default_factory=list)


class AuthAppMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.outbox = Path(tempfile.mkdtemp(prefix="s3auth-stateful-"))
        self.portal_cm = anyio.from_thread.start_blocking_portal()
        self.portal = self.portal_cm.__enter__()
        self.accounts: dict[str, Account] = {}
        self.dead_refresh: list[str] = []
        self.dead_access: list[str] = []
        self.dead_mailed: list[str] = []
        self.gone_ids: list[str] = []
        self.expired: set[tuple[str, str]] = set()
        self.seen_mail: set[str] = set()
        self.turn = 0

    def teardown(self) -> None:
        try:
            if hasattr(self, "clients"):
                for client in self.clients:
                    self.portal.call(client.aclose)
        finally:
            self.portal_cm.__exit__(None, None, None)
            shutil.rmtree(self.outbox, ignore_errors=True)

    # The world ---------------------------------------------------------------------------

    @initialize(
        offset=st.sampled_from([-4.0, 0.0, 4.0]),
        grace=st.sampled_from([0, 10]),
        cap=st.sampled_from([100, 2]),
        browser=st.booleans(),
        verified_only=st.booleans(),
        limits=st.booleans(),
    )
    def start(
        self,
        offset: float,
        grace: int,
        cap: int,
        browser: bool,
        verified_only: bool,
        limits: bool,
    ) -> None:
        self.cap = cap
        self.browser = browser
        self.verified_only = verified_only
        self.time = SharedTime()
        # Last-Modified by the shared time, as a store whose clock is right: a mailed link
        # is judged by its read's.
        self.store = StoreOnSharedTime(ObjectStore.from_url("memory://"), lambda: self.time.now)
        self.offsets = (0.0, offset)
        self.grace = grace
        options = {
            "refresh_grace_seconds": grace,
            "revocation_sync_seconds": 0,
            "max_sessions_per_user": cap,
            "refresh_cookie": browser,
            "require_verified_email": verified_only,
            "rate_limits": GENEROUS,
        }
        self.services = [
            S3AuthService(
                make_settings(**options),
                store=self.store,
                clock=SkewedClock(self.time, at),
                mailer=FileMailer(self.outbox),
            )
            for at in (0.0, offset)
        ]
        self.clients = []
        for service in self.services:
            app = auth_app(service, rate_limit=limits)
            host = Starlette(routes=[Mount("/auth", app=app)])
            declared = DeclaredAnswers.of(app)
            self.clients.append(client_for(host, base_url=OWN, declared=declared))
        create = self.services[0].create_user
        root = self.portal.call(
            lambda: create(
                "root", "root@example.com", ROOT_PASSWORD, is_admin=True, email_verified=True
            )
        )
        self.root_id = root.id
        self.root = self._login_pair("root", ROOT_PASSWORD)
        # ann, logged in on each host: sessions to act on from the first step.
        if verified_only:
            self.admin_create("ann", verified=True, instance=1)
        else:
            self.register("ann", upper=False, instance=1)
        for instance in (0, 1):
            self.login("ann", "current", by_email=False, instance=instance)

    def send(
        self, instance: int, method: str, path: str, *, origin: str = OWN, **options: Any
    ) -> httpx.Response:
        """A request to one host; in browser mode, from a page of `origin` (a state-changing
        one says where it comes from, as browsers do)."""
        self._read_mail()  # the last step's, now that the model has taken it in
        client = self.clients[instance % 2]
        if self.browser and method != "GET":
            options["headers"] = {"Origin": origin, **options.get("headers", {})}

        async def call() -> httpx.Response:
            # Each session's cookie is the model's to send, never the client's jar.
            client.cookies.clear()
            answer = await client.request(method, f"/auth{path}", **options)
            for service in self.services:
                await service.mail.drain()
            return answer

        answer = self.portal.call(call)
        assert answer.status_code < 500 or answer.status_code == 503, answer.text
        assert answer.status_code != 503, f"{method} {path}: {answer.text}"
        if answer.status_code >= 400:
            assert answer.headers["content-type"] == PROBLEM, answer.text
            assert isinstance(answer.json().get("code"), str), answer.text
        return answer

    def _read_mail(self) -> None:
        for path in sorted(self.outbox.glob("*.json")):
            if path.name in self.seen_mail:
                continue
            self.seen_mail.add(path.name)
            message = json.loads(path.read_text())
            found = _TOKEN.search(message["text"])
            if found is None:
                continue
            owner = next(
                (a for a in self.accounts.values() if message["to"] in (a.email, a.pending)),
                None,
            )
            if owner is None:
                self.dead_mailed.append(found[1])
                continue
            owner.mailed.append(
                Mailed(
                    found[2],
                    found[1],
                    message["to"],
                    self.time.now,
                    owner.generation,
                    owner.email_changes,
                    owner.requests,
                )
            )

    def _login_pair(self, name: str, password: str) -> dict[str, Any]:
        answer = self.send(0, "POST", "/login", data={"username": name, "password": password})
        assert answer.status_code == 200, answer.text
        return self.pair(answer)

    def pair(self, answer: httpx.Response) -> dict[str, Any]:
        """The tokens an answer gives: in browser mode the refresh token in its cookie only."""
        pair: dict[str, Any] = answer.json()
        if self.browser:
            assert "refresh_token" not in pair, answer.text
            cookie = self.refresh_cookie(answer)
            assert cookie is not None and cookie[1] > 0, answer.headers
            pair["refresh_token"] = cookie[0]
        return pair

    def refresh_cookie(self, answer: httpx.Response) -> tuple[str, int] | None:
        """The refresh cookie an answer sets, and its Max-Age (0: cleared); None if none."""
        found = []
        for header in answer.headers.get_list("set-cookie"):
            value, *attributes = (part.strip() for part in header.split(";"))
            if value.startswith(f"{REFRESH_COOKIE}="):
                age = next(a for a in attributes if a.lower().startswith("max-age="))
                found.append((value.partition("=")[2].strip('"'), int(age.partition("=")[2])))
        assert len(found) <= 1, answer.headers
        return found[0] if found else None

    def cookie_cleared(self, answer: httpx.Response, cleared: bool) -> None:
        """In browser mode, the answer tells the browser to forget its refresh cookie, or
        leaves it alone."""
        if not self.browser:
            return
        cookie = self.refresh_cookie(answer)
        if cleared:
            assert cookie is not None and cookie[1] == 0, answer.headers
        else:
            assert cookie is None, answer.headers

    def refresh_with(self, instance: int, token: str) -> httpx.Response:
        """A refresh with `token`: in browser mode, in the cookie and an empty body. A
        refusal clears the cookie (no refresh here races another)."""
        if not self.browser:
            return self.send(instance, "POST", "/refresh", json={"refresh_token": token})
        cookie = {"Cookie": f"{REFRESH_COOKIE}={token}"}
        answer = self.send(instance, "POST", "/refresh", headers=cookie)
        if answer.status_code == 401:
            self.cookie_cleared(answer, True)
        return answer

    def bearer(self, session: Session, instance: int) -> dict[str, str]:
        """The session's access token, refreshed first when it may have expired."""
        if self.time.now - session.issued > ACCESS_SECONDS - MARGIN:
            self._rotate(session, instance)
        return {"Authorization": f"Bearer {session.access}"}

    def root_bearer(self, instance: int) -> dict[str, str]:
        if self.time.now - claims(self.root["access_token"])["iat"] > ACCESS_SECONDS - 60:
            answer = self.refresh_with(instance, self.root["refresh_token"])
            assert answer.status_code == 200, answer.text
            self.root = self.pair(answer)
        return {"Authorization": f"Bearer {self.root['access_token']}"}

    def _rotate(self, session: Session, instance: int) -> None:
        """A refresh: SessionEnded when the session is beyond the cap, which ends it."""
        account = next(a for a in self.accounts.values() if session.sid in a.sessions)
        beyond = self.beyond_cap(account)
        answer = self.refresh_with(instance, session.refresh)
        if session.sid in beyond:
            self.expect_problem(answer, 401, "token_revoked")
            raise SessionEnded
        assert answer.status_code == 200, answer.text
        pair = self.pair(answer)
        session.spent.append(session.refresh)
        session.refresh, session.access = pair["refresh_token"], pair["access_token"]
        session.issued = self.time.now
        session.rotated = self.time.now + self.offsets[instance % 2]
        assert claims(session.access)["sid"] == session.sid

    def beyond_cap(self, account: Account) -> list[str]:
        """End the account's sessions beyond the newest `cap`, as a refresh or a listing
        does (a login does not); their ids."""
        ranked = sorted(account.sessions, key=session_age, reverse=True)
        for sid in ranked[self.cap :]:
            self.end(account, sid)
        return ranked[self.cap :]

    def end(self, account: Account, sid: str) -> None:
        session = account.sessions.pop(sid)
        account.ended.append(sid)
        self.dead_refresh.extend([session.refresh, *session.spent[-1:]])
        self.dead_access.append(session.access)

    def end_all(self, account: Account) -> None:
        """Every session of `account` ends, with a new session generation, which ends the
        links mailed for a reset or a new address (that address waits no more)."""
        for sid in list(account.sessions):
            self.end(account, sid)
        account.generation += 1
        account.pending = ""

    def account(self, data: st.DataObject) -> Account:
        return self.accounts[data.draw(st.sampled_from(sorted(self.accounts)))]

    def session(self, data: st.DataObject) -> tuple[Account, Session]:
        owners = sorted(name for name, a in self.accounts.items() if a.sessions)
        account = self.accounts[data.draw(st.sampled_from(owners))]
        return account, account.sessions[data.draw(st.sampled_from(sorted(account.sessions)))]

    def has_sessions(self) -> bool:
        return any(a.sessions for a in self.accounts.values())

    def expect_problem(self, answer: httpx.Response, status: int, code: str | None = None) -> None:
        assert answer.status_code == status, answer.text
        if code is not None:
            assert answer.json()["code"] == code, answer.text

    # Accounts ----------------------------------------------------------------------------

    @rule(name=st.sampled_from(NAMES), upper=st.booleans(), instance=st.integers(0, 1))
    def register(self, name: str, upper: bool, instance: int) -> None:
        body = {
            "username": name.upper() if upper else name,
            "email": f"{name}@example.com",
            "password": PASSWORDS[0],
        }
        answer = self.send(instance, "POST", "/register", json=body)
        self._created(name, answer, PASSWORDS[0], "account_exists", verified=False)

    @rule(
        name=st.sampled_from(NAMES),
        verified=st.booleans(),
        instance=st.integers(0, 1),
    )
    def admin_create(self, name: str, verified: bool, instance: int) -> None:
        body = {
            "username": name,
            "email": f"{name}@example.com",
            "password": PASSWORDS[1],
            "email_verified": verified,
        }
        headers = self.root_bearer(instance)
        answer = self.send(instance, "POST", "/admin/users", json=body, headers=headers)
        self._created(name, answer, PASSWORDS[1], "username_taken", verified=verified)

    def _created(
        self, name: str, answer: httpx.Response, password: str, taken: str, *, verified: bool
    ) -> None:
        if name in self.accounts:
            self.expect_problem(answer, 409, taken)
            return
        assert answer.status_code == 201, answer.text
        user = answer.json()
        assert user["username"].casefold() == name and user["email_verified"] is verified
        self.accounts[name] = Account(name, user["id"], f"{name}@example.com", password, verified)

    @rule(
        name=st.sampled_from(NAMES),
        which=st.sampled_from(["current", "current", "current", "old", "wrong"]),
        by_email=st.booleans(),
        instance=st.integers(0, 1),
    )
    def login(self, name: str, which: str, by_email: bool, instance: int) -> None:
        account = self.accounts.get(name)
        password = {"current": account.password if account else PASSWORDS[0], "wrong": "Nope1234!"}
        if which == "old":
            if account is None or not account.old_passwords:
                return
            password["old"] = sorted(account.old_passwords)[0]
        username = account.email if account is not None and by_email else name
        body = {"username": username, "password": password[which]}
        answer = self.send(instance, "POST", "/login", data=body)
        if account is None or not account.active or which != "current":
            self.expect_problem(answer, 401, "invalid_credentials")
            return
        if self.verified_only and not account.verified:
            self.expect_problem(answer, 403, "email_not_verified")
            return
        assert answer.status_code == 200, answer.text
        pair = self.pair(answer)
        sid = claims(pair["access_token"])["sid"]
        assert claims(pair["access_token"])["sub"] == account.id
        account.sessions[sid] = Session(
            sid, pair["refresh_token"], pair["access_token"], self.time.now
        )

    # Tokens ------------------------------------------------------------------------------

    @precondition(lambda self: self.has_sessions())
    @rule(
        data=st.data(),
        act=st.sampled_from(
            [
                "refresh",
                "refresh_spent",
                "logout",
                "logout_bearer",
                "logout_all",
                "list_sessions",
                "end_session",
                "me",
                "rename",
                "ask_new_address",
                "change_password",
            ]
        ),
        instance=st.integers(0, 1),
    )
    def with_a_session(self, data: st.DataObject, act: str, instance: int) -> None:
        self._act(data, act, instance)

    @precondition(lambda self: self.has_sessions())
    @rule(
        data=st.data(),
        act=st.sampled_from(["refresh_spent", "logout_all", "list_sessions", "end_session"]),
        instance=st.integers(0, 1),
    )
    def with_a_session_again(self, data: st.DataObject, act: str, instance: int) -> None:
        self._act(data, act, instance)

    def _act(self, data: st.DataObject, act: str, instance: int) -> None:
        with contextlib.suppress(SessionEnded):  # beyond the cap when it refreshed
            self._act_on_a_session(data, act, instance)

    def _act_on_a_session(self, data: st.DataObject, act: str, instance: int) -> None:
        right = data.draw(st.sampled_from([True, True, False]))
        if act in ("refresh", "refresh_spent"):
            self._refresh(data, act == "refresh_spent", instance)
        elif act in ("logout", "logout_bearer"):
            self._logout(data, act == "logout", instance)
        elif act == "rename":
            self._rename(data, data.draw(st.sampled_from(["A. N. Other", None])), instance)
        elif act == "ask_new_address":
            domain = data.draw(st.sampled_from(["example.com", "new.example", "other.example"]))
            self._ask_new_address(data, domain, right, instance)
        elif act == "change_password":
            self._change_password(data, right, data.draw(st.sampled_from(PASSWORDS)), instance)
        else:
            getattr(self, f"_{act}")(data, instance)

    def _refresh(self, data: st.DataObject, spent: bool, instance: int) -> None:
        account, session = self.session(data)
        if not spent:
            self._rotate(session, instance)
            return
        # A spent token presented to one host as soon as the other rotated it, most often
        # the one just spent (which a grace may answer), else any older one.
        self._rotate(session, 1 - instance)
        token = data.draw(st.sampled_from([session.spent[-1], *session.spent]))
        answer = self.refresh_with(instance, token)
        # The previous token within the grace (widened by the allowance, by at most the
        # grace) of the rotation, by the clock of the host it reaches, gets the current pair.
        since = self.time.now + self.offsets[instance] - session.rotated
        if token == session.spent[-1] and self.grace and since < 2 * self.grace:
            assert answer.status_code == 200, answer.text
            assert self.pair(answer)["refresh_token"] == session.refresh
            session.access, session.issued = answer.json()["access_token"], self.time.now
            return
        self.expect_problem(answer, 401, "refresh_token_reused")
        self.end(account, session.sid)

    def _refresh_dead(self, data: st.DataObject, instance: int) -> None:
        token = data.draw(st.sampled_from(self.dead_refresh))
        answer = self.refresh_with(instance, token)
        self.expect_problem(answer, 401)

    def _logout(self, data: st.DataObject, by_refresh: bool, instance: int) -> None:
        account, session = self.session(data)
        if by_refresh:
            body = {"refresh_token": session.refresh}
            answer = self.send(instance, "POST", "/logout", json=body)
        else:
            answer = self.send(instance, "POST", "/logout", headers=self.bearer(session, instance))
        assert answer.status_code == 204, answer.text
        self.cookie_cleared(answer, True)
        self.end(account, session.sid)

    def _logout_all(self, data: st.DataObject, instance: int) -> None:
        account, session = self.session(data)
        answer = self.send(instance, "POST", "/logout-all", headers=self.bearer(session, instance))
        assert answer.status_code == 200, answer.text
        assert answer.json()["sessions_ended"] == len(account.sessions), answer.text
        self.cookie_cleared(answer, True)
        self.end_all(account)

    def _list_sessions(self, data: st.DataObject, instance: int) -> None:
        account, session = self.session(data)
        answer = self.send(instance, "GET", "/sessions", headers=self.bearer(session, instance))
        assert answer.status_code == 200, answer.text
        self.beyond_cap(account)
        listed = {s["id"]: s["current"] for s in answer.json()["sessions"]}
        assert set(listed) == set(account.sessions), (listed, sorted(account.sessions))
        mine = [session.sid] if session.sid in account.sessions else []
        assert [sid for sid, current in listed.items() if current] == mine

    def _end_session(self, data: st.DataObject, instance: int) -> None:
        account, session = self.session(data)
        headers = self.bearer(session, instance)
        target = data.draw(st.sampled_from(sorted(account.sessions) + account.ended[-3:]))
        answer = self.send(instance, "DELETE", f"/sessions/{target}", headers=headers)
        self._one_ended(account, target, answer)
        self.cookie_cleared(answer, answer.status_code == 204 and target == session.sid)

    def _one_ended(self, account: Account, target: str, answer: httpx.Response) -> None:
        if target in account.sessions:
            assert answer.status_code == 204, answer.text
            self.end(account, target)
        elif (account.id, target) in self.expired and answer.status_code == 204:
            # Idle past its lifetime, not swept yet: ending it again is answered as ending
            # a live one (it is not listed, and nothing of it works).
            self.expired.discard((account.id, target))
        else:
            self.expect_problem(answer, 404, "session_not_found")

    @precondition(lambda self: getattr(self, "browser", False) and self.has_sessions())
    @rule(
        data=st.data(),
        act=st.sampled_from(["refresh", "logout", "logout_all", "end_session", "password", "me"]),
        cross_site=st.booleans(),
        instance=st.integers(0, 1),
    )
    def from_another_site(
        self, data: st.DataObject, act: str, cross_site: bool, instance: int
    ) -> None:
        """Another site's page makes the browser of a session send a state-changing request
        with the session's credentials: refused before anything is read or written, and no
        cookie set; the session goes on as the model has it."""
        with contextlib.suppress(SessionEnded):
            account, session = self.session(data)
            headers = self.bearer(session, instance)
            origin = OWN if cross_site else EVIL
            if cross_site:  # Fetch Metadata outranks the Origin
                headers["Sec-Fetch-Site"] = "cross-site"
            new = PASSWORDS[2]
            method, path, body = {
                "refresh": ("POST", "/refresh", None),
                "logout": ("POST", "/logout", {"refresh_token": session.refresh}),
                "logout_all": ("POST", "/logout-all", None),
                "end_session": ("DELETE", f"/sessions/{session.sid}", None),
                "password": (
                    "POST",
                    "/password",
                    {"current_password": account.password, "new_password": new},
                ),
                "me": (
                    "PATCH",
                    "/me",
                    {"email": f"{account.name}@evil.example", "current_password": account.password},
                ),
            }[act]
            if act == "refresh":
                headers = {"Cookie": f"{REFRESH_COOKIE}={session.refresh}", **headers}
            answer = self.send(instance, method, path, origin=origin, headers=headers, json=body)
            self.expect_problem(answer, 403, "cross_origin_request")
            assert "set-cookie" not in answer.headers, answer.headers

    # The caller's account ----------------------------------------------------------------

    def _me(self, data: st.DataObject, instance: int) -> None:
        account, session = self.session(data)
        answer = self.send(instance, "GET", "/me", headers=self.bearer(session, instance))
        assert answer.status_code == 200, answer.text
        self._agrees(account, answer.json())

    def _agrees(self, account: Account, user: dict[str, Any]) -> None:
        assert user["id"] == account.id
        assert user["email"] == account.email, (user, account)
        assert user["email_verified"] is account.verified, (user, account)
        assert (user["pending_email"] or "") == account.pending, (user, account)
        assert user["is_active"] is account.active
        assert tuple(user["scopes"]) == account.scopes

    def _rename(self, data: st.DataObject, full_name: str | None, instance: int) -> None:
        account, session = self.session(data)
        headers = self.bearer(session, instance)
        answer = self.send(instance, "PATCH", "/me", json={"full_name": full_name}, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["full_name"] == full_name
        self._agrees(account, answer.json())

    def _ask_new_address(
        self, data: st.DataObject, domain: str, right: bool, instance: int
    ) -> None:
        account, session = self.session(data)
        headers = self.bearer(session, instance)
        address = f"{account.name}@{domain}"
        body = {"email": address, "current_password": account.password if right else "Nope1234!"}
        answer = self.send(instance, "PATCH", "/me", json=body, headers=headers)
        if not right:
            self.expect_problem(answer, 403, "wrong_password")
            return
        assert answer.status_code == 200, answer.text
        if address == account.email:
            account.pending = ""
        else:
            account.pending = address
            account.requests += 1
        self._agrees(account, answer.json())

    def _change_password(self, data: st.DataObject, right: bool, new: str, instance: int) -> None:
        account, session = self.session(data)
        headers = self.bearer(session, instance)
        current = account.password if right else "Nope1234!"
        body = {"current_password": current, "new_password": new}
        answer = self.send(instance, "POST", "/password", json=body, headers=headers)
        if not right:
            self.expect_problem(answer, 403, "wrong_password")
            return
        assert answer.status_code == 200, answer.text
        self.end_all(account)
        self._new_password(account, new)
        pair = self.pair(answer)
        sid = claims(pair["access_token"])["sid"]
        account.sessions[sid] = Session(
            sid, pair["refresh_token"], pair["access_token"], self.time.now
        )

    def _new_password(self, account: Account, new: str) -> None:
        if new != account.password:
            account.old_passwords.add(account.password)
        account.old_passwords.discard(new)
        account.password = new

    # Mailed links ------------------------------------------------------------------------

    @rule(
        data=st.data(),
        name=st.sampled_from(NAMES),
        act=st.sampled_from(["forgot", "resend", "reset", "verify", "refresh_dead"]),
        instance=st.integers(0, 1),
    )
    def by_mail(self, data: st.DataObject, name: str, act: str, instance: int) -> None:
        if act == "forgot":
            self._forgot(name, data.draw(st.booleans()), instance)
        elif act == "resend":
            self._resend(name, instance)
        elif act == "reset":
            self._reset(data, data.draw(st.sampled_from(PASSWORDS)), instance)
        elif act == "verify":
            self._verify(data, instance)
        elif self.dead_refresh:
            self._refresh_dead(data, instance)

    def _forgot(self, name: str, by_email: bool, instance: int) -> None:
        account = self.accounts.get(name)
        username = account.email if account is not None and by_email else name
        answer = self.send(instance, "POST", "/password/forgot", json={"username": username})
        assert answer.status_code == 202, answer.text

    def _resend(self, name: str, instance: int) -> None:
        answer = self.send(instance, "POST", "/email/verify/resend", json={"username": name})
        assert answer.status_code == 202, answer.text

    def _valid(self, account: Account, mailed: Mailed) -> bool | None:
        """Whether the link works now; None when it is about to expire (either answer)."""
        if not account.active or mailed.email_changes != account.email_changes:
            return False
        if mailed.kind != "pr1" and self.time.now - mailed.issued > LINK_SECONDS:
            return False
        if mailed.kind == "ev1":
            return not account.verified and mailed.to == account.email
        if mailed.generation != account.generation:
            return False
        if mailed.kind == "ec1":
            return mailed.to == account.pending and mailed.requests == account.requests
        age = self.time.now - mailed.issued
        if abs(age - RESET_SECONDS) < MARGIN:
            return None
        return age < RESET_SECONDS

    def _link(
        self, data: st.DataObject, kinds: tuple[str, ...]
    ) -> tuple[Account | None, Mailed | str]:
        links: list[tuple[Account | None, Mailed | str]] = [
            (account, mailed)
            for account in self.accounts.values()
            for mailed in account.mailed
            if mailed.kind in kinds
        ]
        links += [(None, token) for token in self.dead_mailed[-3:] if token[:3] in kinds]
        return data.draw(st.sampled_from(links)) if links else (None, "")

    def _reset(self, data: st.DataObject, new: str, instance: int) -> None:
        account, mailed = self._link(data, ("pr1",))
        if mailed == "":
            return
        token = mailed.token if isinstance(mailed, Mailed) else mailed
        body = {"token": token, "new_password": new}
        answer = self.send(instance, "POST", "/password/reset", json=body)
        valid = account is not None and isinstance(mailed, Mailed) and self._valid(account, mailed)
        if answer.status_code == 204:
            assert account is not None and valid is not False, answer.text
            self.end_all(account)
            self._new_password(account, new)
            account.verified = True
        else:
            assert not valid, answer.text
            self.expect_problem(answer, 400, "invalid_account_token")

    def _verify(self, data: st.DataObject, instance: int) -> None:
        account, mailed = self._link(data, ("ev1", "ec1"))
        if mailed == "":
            return
        token = mailed.token if isinstance(mailed, Mailed) else mailed
        answer = self.send(instance, "POST", "/email/verify", json={"token": token})
        if account is None or not isinstance(mailed, Mailed) or not self._valid(account, mailed):
            self.expect_problem(answer, 400, "invalid_account_token")
            return
        assert answer.status_code == 204, answer.text
        account.verified = True
        if mailed.kind == "ec1":
            account.email, account.pending = account.pending, ""
            account.email_changes += 1

    # Administrators ----------------------------------------------------------------------

    @precondition(lambda self: self.accounts)
    @rule(
        data=st.data(),
        change=st.sampled_from(["toggle", "scopes", "email", "delete", "revoke", "set_password"]),
        instance=st.integers(0, 1),
    )
    def admin_change(self, data: st.DataObject, change: str, instance: int) -> None:
        getattr(self, f"_admin_{change}")(self.account(data), data, instance)

    @precondition(lambda self: self.accounts or self.gone_ids)
    @rule(
        data=st.data(),
        look=st.sampled_from(["sessions", "end_session", "on_deleted"]),
        instance=st.integers(0, 1),
    )
    def admin_look(self, data: st.DataObject, look: str, instance: int) -> None:
        if look == "on_deleted" or not self.accounts:
            if self.gone_ids:
                self._admin_on_deleted(data, instance)
            return
        getattr(self, f"_admin_{look}")(self.account(data), data, instance)

    def _admin_toggle(self, account: Account, data: st.DataObject, instance: int) -> None:
        body = {"is_active": not account.active}
        headers = self.root_bearer(instance)
        answer = self.send(
            instance, "PATCH", f"/admin/users/{account.id}", json=body, headers=headers
        )
        assert answer.status_code == 200, answer.text
        if account.active:
            self.end_all(account)
        account.active = not account.active
        self._agrees(account, answer.json())

    def _admin_scopes(self, account: Account, data: st.DataObject, instance: int) -> None:
        scopes: tuple[str, ...] = data.draw(st.sampled_from([(), ("reports",)]))
        headers = self.root_bearer(instance)
        path = f"/admin/users/{account.id}"
        answer = self.send(instance, "PATCH", path, json={"scopes": list(scopes)}, headers=headers)
        assert answer.status_code == 200, answer.text
        if scopes != account.scopes:
            self.end_all(account)
            account.scopes = scopes
        self._agrees(account, answer.json())

    def _admin_email(self, account: Account, data: st.DataObject, instance: int) -> None:
        domain = data.draw(st.sampled_from(["example.com", "new.example", "other.example"]))
        headers = self.root_bearer(instance)
        address = f"{account.name}@{domain}"
        path = f"/admin/users/{account.id}"
        answer = self.send(instance, "PATCH", path, json={"email": address}, headers=headers)
        assert answer.status_code == 200, answer.text
        if address != account.email:
            # At once, which withdraws the user's own request waiting (even for this one).
            account.email = address
            account.email_changes += 1
            account.verified = False
            account.pending = ""
        self._agrees(account, answer.json())

    def _admin_delete(self, account: Account, data: st.DataObject, instance: int) -> None:
        headers = self.root_bearer(instance)
        answer = self.send(instance, "DELETE", f"/admin/users/{account.id}", headers=headers)
        assert answer.status_code == 204, answer.text
        self.end_all(account)
        del self.accounts[account.name]
        self.gone_ids.append(account.id)
        self.dead_mailed.extend(m.token for m in account.mailed)

    def _admin_on_deleted(self, data: st.DataObject, instance: int) -> None:
        user_id = data.draw(st.sampled_from(self.gone_ids))
        headers = self.root_bearer(instance)
        method, path = data.draw(
            st.sampled_from(
                [("GET", ""), ("DELETE", ""), ("POST", "/revoke"), ("GET", "/sessions")]
            )
        )
        answer = self.send(instance, method, f"/admin/users/{user_id}{path}", headers=headers)
        self.expect_problem(answer, 404)

    def _admin_revoke(self, account: Account, data: st.DataObject, instance: int) -> None:
        headers = self.root_bearer(instance)
        answer = self.send(instance, "POST", f"/admin/users/{account.id}/revoke", headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["sessions_ended"] == len(account.sessions), answer.text
        self.end_all(account)

    def _admin_set_password(self, account: Account, data: st.DataObject, instance: int) -> None:
        new = data.draw(st.sampled_from(PASSWORDS))
        headers = self.root_bearer(instance)
        path = f"/admin/users/{account.id}/password"
        answer = self.send(instance, "POST", path, json={"new_password": new}, headers=headers)
        assert answer.status_code == 204, answer.text
        self.end_all(account)
        self._new_password(account, new)

    def _admin_sessions(self, account: Account, data: st.DataObject, instance: int) -> None:
        headers = self.root_bearer(instance)
        answer = self.send(instance, "GET", f"/admin/users/{account.id}/sessions", headers=headers)
        assert answer.status_code == 200, answer.text
        self.beyond_cap(account)
        assert {s["id"] for s in answer.json()["sessions"]} == set(account.sessions)
        user = self.send(instance, "GET", f"/admin/users/{account.id}", headers=headers)
        assert user.status_code == 200, user.text
        self._agrees(account, user.json())

    def _admin_end_session(self, account: Account, data: st.DataObject, instance: int) -> None:
        if not account.sessions and not account.ended:
            return
        target = data.draw(st.sampled_from(sorted(account.sessions) + account.ended[-3:]))
        headers = self.root_bearer(instance)
        path = f"/admin/users/{account.id}/sessions/{target}"
        answer = self.send(instance, "DELETE", path, headers=headers)
        self._one_ended(account, target, answer)
        self.cookie_cleared(answer, False)  # not the caller's own session

    # Time --------------------------------------------------------------------------------

    @rule(seconds=st.sampled_from([1, 3, 11, 125, 1500, 1900, WEEK]))
    def time_passes(self, seconds: int) -> None:
        self.time.advance(seconds)
        if seconds < WEEK:
            return
        # Every session is idle a week or more: ended, though the store may hold it until
        # the sweep.
        for account in self.accounts.values():
            self.expired.update((account.id, sid) for sid in account.sessions)
            for sid in list(account.sessions):
                self.end(account, sid)
        self.root = self._login_pair("root", ROOT_PASSWORD)

    # What holds after every step -----------------------------------------------------------

    @invariant()
    def passwords_agree(self) -> None:
        if not hasattr(self, "services"):
            return
        self._read_mail()
        check = self.services[self.turn % 2].authenticate_user
        self.turn += 1
        for account in self.accounts.values():
            found = self.portal.call(check, account.name, account.password)
            assert (found is not None) is account.active, account
            for old in account.old_passwords:
                assert self.portal.call(check, account.name, old) is None, account

    @invariant()
    def ended_tokens_stay_ended(self) -> None:
        if not hasattr(self, "services"):
            return
        for token in self.dead_access[-2:]:
            answer = self.send(
                self.turn, "GET", "/me", headers={"Authorization": f"Bearer {token}"}
            )
            self.expect_problem(answer, 401)

    @invariant()
    def store_agrees(self) -> None:
        if not hasattr(self, "services"):
            return
        found: list[Finding] = []
        service = self.services[0]
        self.portal.call(StateCheck(service.names, found.append).run)

        async def sessions() -> dict[str, set[str]]:
            held: dict[str, set[str]] = {}
            async for info in self.store.list(keys.SESSIONS):
                user_id, name = info.key.removeprefix(keys.SESSIONS).split("/", 1)
                if not keys.is_session_marker(info.key):
                    held.setdefault(user_id, set()).add(keys.id_from_key(name))
            return held

        assert found == []
        held = self.portal.call(sessions)
        held.pop(self.root_id, None)
        for user_id, sid in self.expired:
            held.get(user_id, set()).discard(sid)
        expected = {a.id: set(a.sessions) for a in self.accounts.values() if a.sessions}
        assert {user: sids for user, sids in held.items() if sids} == expected


AuthAppMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestAuthApp = AuthAppMachine.TestCase
