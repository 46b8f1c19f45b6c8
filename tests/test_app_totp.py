"""The second factor through the auth app: turned on with the password and a first code,
a login with it in two steps, a code that works once on every instance, wrong codes charged
as wrong passwords, the second step's token bound to its login, turning it off."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
import pytest
from conftest import make_service
from support import AfterRequest, Clock, StoreWrapper, make_clocked_service
from test_app import PASSWORD, assert_problem, bearer, client_for, login, mounted, register
from test_app_lifecycle import admin_tokens, service_with
from test_change_notices import notices

from s3auth_asgi import S3AuthService
from s3auth_asgi.app.devices import DEVICE_HEADER
from s3auth_asgi.app.totp_schemas import TOTP_GRANT
from s3auth_asgi.events import AuthEvent
from s3auth_asgi.hooks import Hooks
from s3auth_asgi.settings import new_secret_key
from s3auth_asgi.storage import ObjectStore, Store, keys
from s3auth_asgi.totp import decode_secret, totp

pytestmark = pytest.mark.anyio

AGENT = {"User-Agent": "pytest"}


async def start(client: httpx.AsyncClient, tokens: dict[str, Any]) -> bytes:
    """The seed of a new factor of the caller's (not on yet)."""
    response = await client.post(
        "/auth/me/totp", json={"current_password": PASSWORD}, headers=bearer(tokens)
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return decode_secret(response.json()["secret"])


async def turn_on(client: httpx.AsyncClient, service: S3AuthService, name: str) -> bytes:
    """A factor of `name`'s, on, its first code spent."""
    tokens = await login(client, name)
    seed = await start(client, tokens)
    response = await client.post(
        "/auth/me/totp/confirm", json={"code": totp(seed, service.clock())}, headers=bearer(tokens)
    )
    assert response.status_code == 200, response.text
    return seed


async def first_step(client: httpx.AsyncClient, name: str, **headers: str) -> str:
    response = await client.post(
        "/auth/login", data={"username": name, "password": PASSWORD}, headers=AGENT | headers
    )
    body = assert_problem(response, 403, "mfa_required")
    assert body["error"] == "mfa_required" and "access_token" not in body
    token: str = body["mfa_token"]
    return token


async def second_step(
    client: httpx.AsyncClient, token: str, code: str, **headers: str
) -> httpx.Response:
    return await client.post(
        "/auth/login/totp", data={"mfa_token": token, "code": code}, headers=AGENT | headers
    )


async def test_a_user_turns_the_factor_on_and_then_logs_in_with_a_code(tmp_path: Path) -> None:
    clock = Clock()
    service = service_with(tmp_path, clock=clock)
    async with client_for(mounted(service)) as client:
        alice = await register(client, "alice")
        tokens = await login(client, "alice")
        wrong = await client.post(
            "/auth/me/totp", json={"current_password": "Wrong123!"}, headers=bearer(tokens)
        )
        assert_problem(wrong, 403, "wrong_password")
        response = await client.post(
            "/auth/me/totp", json={"current_password": PASSWORD}, headers=bearer(tokens)
        )
        enrolment = response.json()
        seed = decode_secret(enrolment["secret"])
        assert enrolment["otpauth_uri"].startswith("otpauth://totp/s3auth:alice?secret=")
        assert enrolment["expires_in"] == 600
        # Pending: the password alone still logs in, and the seed is kept sealed.
        assert (await client.get("/auth/me", headers=bearer(tokens))).json()[
            "totp_enabled"
        ] is False
        await login(client, "alice")
        stored = await service.store.get(keys.user(alice["id"]), dict)
        assert stored is not None
        raw = msgspec.json.encode(stored.value)
        assert enrolment["secret"].encode() not in raw and seed.hex().encode() not in raw
        assert stored.value["pending_totp_secret"].startswith("ts1.")

        confirm = "/auth/me/totp/confirm"
        later = totp(seed, clock() + 90)
        assert_problem(
            await client.post(confirm, json={"code": later}, headers=bearer(tokens)),
            403,
            "wrong_totp_code",
        )
        response = await client.post(
            confirm, json={"code": totp(seed, clock())}, headers=bearer(tokens)
        )
        assert response.status_code == 200 and response.json()["totp_enabled"] is True
        me = (await client.get("/auth/me", headers=bearer(tokens))).text
        assert "ts1." not in me and enrolment["secret"] not in me
        assert [kind for kind, _ in await notices(service, "alice@example.com")] == [
            "totp_enabled_notice"
        ]

        token = await first_step(client, "alice")
        # The step of the code that turned it on is spent: the next one's works.
        assert_problem(
            await second_step(client, token, totp(seed, clock())), 403, "wrong_totp_code"
        )
        clock.advance(30)
        response = await second_step(client, token, totp(seed, clock()))
        assert response.status_code == 200, response.text
        assert response.json()["token_type"] == "bearer" and "s3auth_device" in response.cookies
        me = await client.get("/auth/me", headers=bearer(response.json()))
        assert me.json()["username"] == "alice"
        # The token was spent with its code; a new login's cannot reuse the code either.
        assert_problem(
            await second_step(client, token, totp(seed, clock() + 30)), 401, "invalid_mfa_token"
        )
        again = await first_step(client, "alice")
        assert_problem(
            await second_step(client, again, totp(seed, clock())), 403, "wrong_totp_code"
        )
        # The step grant's own type, as an OAuth client sends it, is taken.
        response = await client.post(
            "/auth/login/totp",
            data={"mfa_token": again, "code": totp(seed, clock() + 30), "grant_type": TOTP_GRANT},
            headers=AGENT,
        )
        assert response.status_code == 200, response.text


async def test_the_second_steps_token_is_bound_to_its_login() -> None:
    clock = Clock()
    service = make_clocked_service(clock=clock)
    async with client_for(mounted(service)) as client:
        await register(client, "alice")
        await register(client, "bob")
        seed = await turn_on(client, service, "alice")
        clock.advance(30)
        code = totp(seed, clock())
        token = await first_step(client, "alice")
        refused = {
            "another client": await second_step(client, token, code, **{"User-Agent": "curl"}),
            "forged": await second_step(client, token[:-2] + "AA", code),
            "another kind of token": await second_step(
                client, (await login(client, "bob"))["refresh_token"], code
            ),
        }
        clock.advance(301)
        refused["expired"] = await second_step(client, token, totp(seed, clock()))
        fresh = await first_step(client, "alice")
        tokens = await login_with(client, service, fresh, seed, clock)
        # A new password (which ends the sessions) ends a token issued before it.
        stale = await first_step(client, "alice")
        response = await client.post(
            "/auth/password",
            json={"current_password": PASSWORD, "new_password": "Newer123!"},
            headers=bearer(tokens),
        )
        assert response.status_code == 200, response.text
        clock.advance(30)
        refused["after a new password"] = await second_step(client, stale, totp(seed, clock()))
        assert {label: r.json()["code"] for label, r in refused.items()} == dict.fromkeys(
            refused, "invalid_mfa_token"
        )
        # None of them was a code's failure: the code still works, once, after a login.
        fresh = await client.post(
            "/auth/login", data={"username": "alice", "password": "Newer123!"}, headers=AGENT
        )
        response = await second_step(client, fresh.json()["mfa_token"], code_at(seed, clock))
        assert response.status_code == 200, response.text


def code_at(seed: bytes, clock: Clock) -> str:
    """The code of the step after the last one spent: the clock moved on a step first."""
    clock.advance(30)
    return totp(seed, clock())


async def login_with(
    client: httpx.AsyncClient, service: S3AuthService, token: str, seed: bytes, clock: Clock
) -> dict[str, Any]:
    response = await second_step(client, token, code_at(seed, clock))
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


async def test_wrong_codes_are_charged_to_the_account_as_wrong_passwords_are() -> None:
    clock = Clock()
    service = make_clocked_service(clock=clock, rate_limits="login_account=4/600")
    async with client_for(mounted(service, rate_limit=True)) as client:
        await register(client, "alice")
        seed = await turn_on(client, service, "alice")
        token = await first_step(client, "alice")
        answers = []
        for _ in range(2):
            wrong = await client.post(
                "/auth/login", data={"username": "alice", "password": "Wrong123!"}
            )
            answers.append(wrong.status_code)
        for _ in range(3):
            answers.append((await second_step(client, token, "000000")).status_code)
        assert answers == [401, 401, 403, 403, 429]
        # The right code is refused as the right password would be: the budget is spent.
        response = await second_step(client, token, code_at(seed, clock))
        assert_problem(response, 429, "rate_limited")


async def test_a_budget_spent_by_wrong_codes_is_kept_in_the_trail() -> None:
    """As one spent by wrong passwords is (`test_login_limit_trail`): the failure whose
    charge leaves no room keeps the refusal the attempts after it meet."""
    clock = Clock()
    service = make_clocked_service(clock=clock, rate_limits="login_account=3/600")
    async with client_for(mounted(service, rate_limit=True)) as client:
        alice = await register(client, "alice")
        await turn_on(client, service, "alice")
        token = await first_step(client, "alice")
        statuses = [(await second_step(client, token, "000000")).status_code for _ in range(4)]
        assert statuses == [403, 403, 403, 429]
    trail, _ = await service.audit.page(alice["id"], limit=20)
    told = [(e.event.name, e.event.outcome, e.event.reason) for e in trail]
    assert told.count(("login", "refused", "rate_limited")) == 1
    assert told.count(("login_totp", "failure", "wrong_totp_code")) == 3


class BothRead(StoreWrapper):
    """Holds each write of a user record until `readers` reads of it have been answered:
    two instances that both read the record before either writes."""

    def __init__(self, inner: Store, shared: dict[str, Any]) -> None:
        super().__init__(inner)
        self.shared = shared

    async def get(self, key: str, type_: Any) -> Any:
        found = await super().get(key, type_)
        if self.shared["armed"] and key.startswith(keys.USERS):
            self.shared["reads"] += 1
            if self.shared["reads"] >= 2:
                self.shared["event"].set()
        return found

    async def replace(self, key: str, value: Any, etag: str) -> str:
        if self.shared["armed"] and key.startswith(keys.USERS):
            with anyio.fail_after(5):
                await self.shared["event"].wait()
        return await super().replace(key, value, etag)


@pytest.mark.parametrize(
    ("backend", "kind"), [("memory", "totp"), ("file", "totp"), ("memory", "recovery")]
)
async def test_one_code_given_to_two_instances_at_once_is_accepted_once(
    backend: str, kind: str, tmp_path: Path
) -> None:
    clock = Clock()
    url = "memory://" if backend == "memory" else f"file://{tmp_path / 'store'}"
    one = ObjectStore.from_url(url)
    shared: dict[str, Any] = {"armed": False, "reads": 0, "event": anyio.Event()}
    services = [
        make_clocked_service(
            url,
            clock=clock,
            store=BothRead(one if backend == "memory" else ObjectStore.from_url(url), shared),
        )
        for _ in range(2)
    ]
    apps = [mounted(service) for service in services]
    async with client_for(apps[0]) as client:
        await register(client, "alice")
        seed = await turn_on(client, services[0], "alice")
        if kind == "recovery":
            recovery = await new_codes(
                client,
                await login_with(
                    client, services[0], await first_step(client, "alice"), seed, clock
                ),
            )
    tokens = []
    for app in apps:
        async with client_for(app) as client:
            tokens.append(await first_step(client, "alice"))
    code = code_at(seed, clock) if kind == "totp" else recovery[4]
    shared["armed"] = True
    answers: list[httpx.Response] = []

    async def second(i: int) -> None:
        async with client_for(apps[i]) as client:
            answers.append(await second_step(client, tokens[i], code))

    async with anyio.create_task_group() as tasks:
        for i in range(2):
            tasks.start_soon(second, i)
    assert sorted(response.status_code for response in answers) == [200, 403]
    assert_problem(next(r for r in answers if r.status_code == 403), 403, "wrong_totp_code")


async def test_the_requests_of_a_login_with_a_code() -> None:
    """The second step: the user GET, the If-Match PUT that spends the step, the session's
    create and the record read back, and the audit event: 2 GETs, 3 PUTs; and, where the
    revocation snapshot is overdue, its sync first (a LIST, a GET)."""
    clock = Clock()
    service = make_clocked_service(clock=clock)
    async with client_for(mounted(service)) as client:
        await register(client, "alice")
        seed = await turn_on(client, service, "alice")
        token = await first_step(client, "alice")
        code = code_at(seed, clock)  # 30 s on: the snapshot is overdue
        service.store.reset_counts()
        assert (await second_step(client, token, code)).status_code == 200
        assert dict(service.store.requests) == {"list": 1, "get": 3, "put": 3}
        token = await first_step(client, "alice")
        code = code_at(seed, clock)
        await service.blacklist.sync()  # fresh, as under steady traffic
        service.store.reset_counts()
        assert (await second_step(client, token, code)).status_code == 200
        assert dict(service.store.requests) == {"get": 2, "put": 3}
        token = await first_step(client, "alice")
        service.store.reset_counts()
        assert (await second_step(client, token, "000000")).status_code == 403
        assert dict(service.store.requests) == {"get": 1, "put": 1}  # the GET, the event


async def test_the_owner_turns_it_off_with_a_code_an_administrator_without(
    tmp_path: Path,
) -> None:
    clock = Clock()
    service = service_with(tmp_path, clock=clock)
    async with client_for(mounted(service)) as client:
        alice = await register(client, "alice")
        seed = await turn_on(client, service, "alice")
        tokens = await login_with(client, service, await first_step(client, "alice"), seed, clock)
        off = "/auth/me/totp/disable"
        again = await client.post(
            "/auth/me/totp", json={"current_password": PASSWORD}, headers=bearer(tokens)
        )
        assert_problem(again, 409, "totp_enabled")
        code = code_at(seed, clock)
        for body, code_expected in (
            ({"current_password": "Wrong123!", "code": code}, "wrong_password"),
            ({"current_password": PASSWORD, "code": "000000"}, "wrong_totp_code"),
        ):
            response = await client.post(off, json=body, headers=bearer(tokens))
            assert_problem(response, 403, code_expected)
        response = await client.post(
            off, json={"current_password": PASSWORD, "code": code}, headers=bearer(tokens)
        )
        assert response.status_code == 200 and response.json()["totp_enabled"] is False
        assert_problem(
            await client.post(
                off, json={"current_password": PASSWORD, "code": code}, headers=bearer(tokens)
            ),
            409,
            "totp_not_enabled",
        )
        await login(client, "alice")  # the password alone again

        # A lost device: an administrator turns it off, and the owner is told.
        await turn_on(client, service, "alice")
        admin = await admin_tokens(service, client)
        path = f"/auth/admin/users/{alice['id']}/totp"
        response = await client.delete(path, headers=bearer(admin))
        assert response.status_code == 200 and response.json()["totp_enabled"] is False
        assert_problem(await client.delete(path, headers=bearer(admin)), 409, "totp_not_enabled")
        assert_problem(await client.delete(path, headers=bearer(tokens)), 403, "insufficient_scope")
        await login(client, "alice")
    kinds = [kind for kind, _ in await notices(service, "alice@example.com")]
    assert kinds == ["totp_enabled_notice", "totp_disabled_notice"] * 2


async def test_a_start_not_confirmed_in_time_turns_nothing_on() -> None:
    clock = Clock()
    service = make_clocked_service(clock=clock)
    async with client_for(mounted(service)) as client:
        await register(client, "alice")
        tokens = await login(client, "alice")
        confirm = "/auth/me/totp/confirm"
        assert_problem(
            await client.post(confirm, json={"code": "123456"}, headers=bearer(tokens)),
            409,
            "totp_not_pending",
        )
        seed = await start(client, tokens)
        clock.advance(601)
        response = await client.post(
            confirm, json={"code": totp(seed, clock())}, headers=bearer(tokens)
        )
        assert_problem(response, 409, "totp_not_pending")
        await login(client, "alice")


def test_a_service_with_another_secret_key_opens_no_seed() -> None:
    sealed = make_service().seeds.seal(b"x" * 20, "u1")
    assert make_service(secret_key=new_secret_key()).seeds.open(sealed, "u1") is None


async def test_a_new_password_leaves_the_factor_on() -> None:
    clock = Clock()
    service = make_clocked_service(clock=clock)
    async with client_for(mounted(service)) as client:
        alice = await register(client, "alice")
        seed = await turn_on(client, service, "alice")
        await service.set_password(alice["id"], "Newer123!")  # an administrator's, a reset's
        response = await client.post(
            "/auth/login", data={"username": "alice", "password": "Newer123!"}, headers=AGENT
        )
        token = assert_problem(response, 403, "mfa_required")["mfa_token"]
        await login_with(client, service, token, seed, clock)


async def test_a_login_that_showed_a_device_needs_it_again_at_its_second_step() -> None:
    clock = Clock()
    service = make_clocked_service(clock=clock)
    async with client_for(mounted(service)) as client:
        await register(client, "alice")
        seed = await turn_on(client, service, "alice")
        answer = await second_step(client, await first_step(client, "alice"), code_at(seed, clock))
        device = {DEVICE_HEADER: answer.cookies["s3auth_device"]}
        client.cookies.clear()
        token = await first_step(client, "alice", **device)
        code = code_at(seed, clock)
        assert_problem(await second_step(client, token, code), 401, "invalid_mfa_token")
        answer = await second_step(client, token, code, **device)
        assert answer.status_code == 200, answer.text


async def new_codes(client: httpx.AsyncClient, tokens: dict[str, Any]) -> list[str]:
    response = await client.post(
        "/auth/me/totp/recovery-codes", json={"current_password": PASSWORD}, headers=bearer(tokens)
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    codes: list[str] = response.json()["codes"]
    return codes


async def test_a_recovery_code_works_once_in_place_of_the_apps() -> None:
    clock = Clock()
    service = make_clocked_service(clock=clock)
    async with client_for(mounted(service)) as client:
        alice = await register(client, "alice")
        seed = await turn_on(client, service, "alice")
        tokens = await login_with(client, service, await first_step(client, "alice"), seed, clock)
        path = "/auth/me/totp/recovery-codes"
        wrong = await client.post(
            path, json={"current_password": "Wrong123!"}, headers=bearer(tokens)
        )
        assert_problem(wrong, 403, "wrong_password")
        earlier = await new_codes(client, tokens)
        codes = await new_codes(client, tokens)  # the earlier ones stop working
        assert len(codes) == 10 and not set(codes) & set(earlier)
        stored = await service.store.get(keys.user(alice["id"]), dict)
        assert stored is not None
        raw = msgspec.json.encode(stored.value).decode()
        hashes = stored.value["totp_recovery"]
        assert len(hashes) == 10 and all(h.startswith("$argon2id$") for h in hashes)
        assert not any(code[2:].replace("-", "") in raw for code in codes)

        token = await first_step(client, "alice")
        assert_problem(await second_step(client, token, earlier[0]), 403, "wrong_totp_code")
        service.store.reset_counts()
        assert (await second_step(client, token, codes[0])).status_code == 200
        assert dict(service.store.requests) == {"get": 2, "put": 3}
        again = await first_step(client, "alice")
        assert_problem(await second_step(client, again, codes[0]), 403, "wrong_totp_code")
        typed = codes[1].upper().replace("-", " ")
        assert (await second_step(client, again, typed)).status_code == 200
        # The factor turned off with one; off, it keeps none.
        off = {"current_password": PASSWORD, "code": codes[2]}
        response = await client.post("/auth/me/totp/disable", json=off, headers=bearer(tokens))
        assert response.status_code == 200 and response.json()["totp_enabled"] is False
        assert_problem(await new_codes_answer(client, tokens), 409, "totp_not_enabled")


async def new_codes_answer(client: httpx.AsyncClient, tokens: dict[str, Any]) -> httpx.Response:
    return await client.post(
        "/auth/me/totp/recovery-codes", json={"current_password": PASSWORD}, headers=bearer(tokens)
    )


async def test_the_login_hooks_see_the_second_step_as_the_login() -> None:
    """`after_login` runs for the login that opened a session, the second step's; a right
    password waiting for its code is no failed login, a wrong code is."""
    hooks = Hooks()
    seen: list[tuple[str, str, str | None]] = []

    @hooks.on("after_login")
    @hooks.on("login_failed")
    @hooks.on("user_updated")
    async def record(event: AuthEvent) -> None:
        seen.append((event.name, event.outcome, event.reason))

    clock = Clock()
    service = make_clocked_service(clock=clock)
    service.hooks = hooks
    async with client_for(mounted(service)) as client:
        await register(client, "alice")
        seed = await turn_on(client, service, "alice")
        seen.clear()
        token = await first_step(client, "alice")
        assert_problem(await second_step(client, token, "000000"), 403, "wrong_totp_code")
        await login_with(client, service, token, seed, clock)
    assert (
        seen
        == [
            ("login", "success", None),  # the first login, before the factor was on
            ("totp_confirm", "success", None),
            ("login_totp", "failure", "wrong_totp_code"),
            ("login_totp", "success", None),
        ][2:]
    )


async def test_a_password_login_racing_the_factor_turned_on_opens_no_session() -> None:
    """A login that read the record before its factor was turned on, and writes its session
    after, finds the factor on when it reads the record back: refused, no token, as the
    login after the change would be without its code."""
    clock = Clock()
    store = ObjectStore.from_url("memory://")
    service = make_clocked_service(clock=clock, store=store)
    async with client_for(mounted(service)) as client:
        alice = await register(client, "alice")
        enrolment = await service.start_totp(alice["id"], issuer="test")
        seed = decode_secret(enrolment.secret)

        async def turned_on() -> None:
            await service.confirm_totp(alice["id"], totp(seed, clock()))

        raced = make_clocked_service(
            clock=clock, store=AfterRequest(store, "get", keys.USERS, turned_on)
        )
        async with client_for(mounted(raced)) as other:
            response = await other.post(
                "/auth/login", data={"username": "alice", "password": PASSWORD}, headers=AGENT
            )
        assert_problem(response, 401, "invalid_credentials")
        assert await service.get_user_active_sessions(alice["id"]) == []
        await first_step(client, "alice")  # now the factor is asked for


async def test_an_address_unverified_between_the_two_steps_opens_no_session() -> None:
    # With a verified address required, the second step answers as a login does: an
    # administrator's new address (unverified) or cleared mark lands between the steps.
    clock = Clock()
    service = make_clocked_service(clock=clock, require_verified_email=True)
    async with client_for(mounted(service)) as client:
        alice = await register(client, "alice")
        await service.update_user(alice["id"], email_verified=True)
        seed = await turn_on(client, service, "alice")
        token = await first_step(client, "alice")
        await service.update_user(alice["id"], email="alice.new@example.com")
        before = await service.get_user_active_sessions(alice["id"])
        answer = await second_step(client, token, code_at(seed, clock))
        assert_problem(answer, 403, "email_not_verified")
        assert "access_token" not in answer.json()
        assert await service.get_user_active_sessions(alice["id"]) == before
