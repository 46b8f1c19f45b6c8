"""Password reset and email verification in the service: no enumeration (the same store
requests, to the same kinds of object, and no wait for the mail, whoever is asked about),
the request budgets, single use under concurrency on memory, file and S3 (moto), purpose
binding, expiry, and what the store keeps (never the token)."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from conftest import make_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import Clock, StoreWrapper

from s3auth_asgi import S3AuthService, WeakPasswordError
from s3auth_asgi.account_tokens import InvalidAccountTokenError, Purpose
from s3auth_asgi.mail import FileMailer, Message
from s3auth_asgi.storage import ObjectStore, Store, keys

pytestmark = pytest.mark.anyio
R = TypeVar("R")
PASSWORD = "Secret123!"
NEW_PASSWORD = "Brand-new-pass-7"


class KindLog(StoreWrapper):
    """Records each request and the kind of object it is for (never which one)."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.log: list[str] = []
        self.current = ""

    async def call(self, name: str, run: Callable[[], Awaitable[R]]) -> R:
        self.log.append(f"{name} {self.current}")
        return await run()

    def _kind(self, key: str) -> str:
        parts = key.split("/")
        return "/".join(parts[:2]) if parts[0] in ("index", "account-tokens") else parts[0]

    async def get(self, key: str, type_: type[Any]) -> Any:
        self.current = self._kind(key)
        return await super().get(key, type_)

    async def create(self, key: str, value: Any) -> str:
        self.current = self._kind(key)
        return await super().create(key, value)


class HeldMailer:
    """A mail server that answers only once released: an answer that waited for it would
    never come."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.released = anyio.Event()

    async def send(self, message: Message) -> None:
        await self.released.wait()
        self.sent.append(message)


def token_of(message: Message) -> str:
    found = re.search(r"#token=(\S+)", message.text)
    assert found is not None
    return found[1]


async def accounts(service: S3AuthService) -> None:
    await service.create_user("known", "known@example.com", PASSWORD)
    await service.create_user("sure", "sure@example.com", PASSWORD, email_verified=True)
    off = await service.create_user("off", "off@example.com", PASSWORD)
    await service.update_user(off.id, is_active=False)


ASKED = ("known", "known@example.com", "nobody", "nobody@example.com", "off", "sure")


@pytest.mark.parametrize("flow", ["request_password_reset", "request_email_verification"])
async def test_asking_costs_the_same_whoever_is_asked_about(flow: str) -> None:
    store = KindLog(ObjectStore.from_url("memory://"))
    mailer = HeldMailer()
    service = S3AuthService(
        make_settings(public_url="https://app.example.com"), store=store, mailer=mailer
    )
    await accounts(service)
    seen = {}
    for name in ASKED:
        store.log.clear()
        with anyio.fail_after(10):  # the held mail server is not waited for
            assert await getattr(service, flow)(name) is None
        assert mailer.sent == []
        seen[name] = list(store.log)
    for name, log in seen.items():
        index = "index/email" if "@" in name else "index/username"
        purpose = "password-reset" if "reset" in flow else "email-verification"
        assert log == [f"get {index}", "get users", f"create account-tokens/{purpose}"], name
    mailer.released.set()
    await service.mail.drain()
    # Mail went to the accounts that can use it, and only to them.
    receivers = sorted(m.to for m in mailer.sent)
    if flow == "request_password_reset":
        assert receivers == ["known@example.com"] * 2 + ["sure@example.com"]
    else:
        assert receivers == ["known@example.com"] * 2


@pytest.mark.parametrize("flow", ["request_password_reset", "request_email_verification"])
async def test_admit_decides_by_account_and_a_refusal_costs_the_same(flow: str) -> None:
    store = KindLog(ObjectStore.from_url("memory://"))
    mailer = HeldMailer()
    mailer.released.set()
    service = S3AuthService(
        make_settings(public_url="https://app.example.com"), store=store, mailer=mailer
    )
    await accounts(service)
    ids = {name: (await service.get_user_by_username(name)).id for name in ("known", "off", "sure")}  # type: ignore[union-attr]
    asked: list[str] = []

    async def refuse(account: str) -> bool:
        asked.append(account)
        return False

    purpose = "password-reset" if "reset" in flow else "email-verification"
    for name in ASKED:
        store.log.clear()
        assert await getattr(service, flow)(name, admit=refuse) is None
        index = "index/email" if "@" in name else "index/username"
        assert store.log == [f"get {index}", "get users", f"create account-tokens/{purpose}"]
    await service.mail.drain()
    assert mailer.sent == []
    # An account's two names are one account; a name that is nobody's is its own.
    assert asked == [
        f"user:{ids['known']}",
        f"user:{ids['known']}",
        "username:nobody",
        "email:nobody@example.com",
        f"user:{ids['off']}",
        f"user:{ids['sure']}",
    ]


async def test_request_budgets_of_reset_and_verify(tmp_path: Path) -> None:
    service = S3AuthService(make_settings(), mailer=FileMailer(tmp_path))
    user = await service.create_user("alice", "alice@example.com", PASSWORD)
    await service.create_token_pair(user)
    await service.request_password_reset("alice")
    assert await service.send_email_verification(user)
    await service.mail.drain()
    verify, reset = sorted(service.mail.mailer.messages(), key=lambda m: m.kind)  # type: ignore[union-attr]

    service.store.reset_counts()
    await service.verify_email(token_of(verify))  # type: ignore[arg-type]
    assert dict(service.store.requests) == {"get": 2, "put": 1, "delete": 1}
    service.store.reset_counts()
    await service.reset_password(token_of(reset), NEW_PASSWORD)  # type: ignore[arg-type]
    # token GET, user GET; the sessions' LIST, revocation PUT, batch DELETE; user PUT,
    # marker PUT, LIST, batch DELETE (the token)
    assert dict(service.store.requests) == {"get": 2, "put": 3, "list": 2, "delete": 2}


async def test_a_record_with_a_session_generation_costs_its_marker_put_more(
    tmp_path: Path,
) -> None:
    # Every read of a record for a change writes its generation's marker, if missing
    # (`user_records`): one conditional PUT more, once the password has ever changed.
    service = S3AuthService(make_settings(), mailer=FileMailer(tmp_path))
    user = await service.create_user("alice", "alice@example.com", PASSWORD)
    await service.change_password(user.id, PASSWORD, "Changed-pass-99")  # and one session
    changed = await service.get_user_by_id(user.id)
    assert changed is not None and changed.session_generation
    await service.request_password_reset("alice")
    assert await service.send_email_verification(changed)
    await service.mail.drain()
    linked = [m for m in service.mail.mailer.messages() if "_notice" not in m.kind]  # type: ignore[union-attr]
    verify, reset = sorted(linked, key=lambda m: m.kind)

    service.store.reset_counts()
    await service.verify_email(token_of(verify))  # type: ignore[arg-type]
    assert dict(service.store.requests) == {"get": 2, "put": 2, "delete": 1}
    service.store.reset_counts()
    await service.reset_password(token_of(reset), NEW_PASSWORD)  # type: ignore[arg-type]
    # token GET, user GET, marker PUT (of the generation read); the sessions' LIST,
    # revocation PUT, batch DELETE; user PUT, marker PUT (of the new generation), LIST,
    # batch DELETE (the token, the superseded marker)
    assert dict(service.store.requests) == {"get": 2, "put": 4, "list": 2, "delete": 2}


def _services(store_url: str, count: int) -> list[S3AuthService]:
    shared = ObjectStore.from_url(store_url) if store_url == "memory://" else None
    return [S3AuthService(make_settings(store_url), store=shared) for _ in range(count)]


@pytest.mark.parametrize("store_url", ["memory", "file", "s3"], indirect=True)
async def test_concurrent_uses_of_a_token_one_succeeds(store_url: str) -> None:
    services = _services(store_url, 8)
    user = await services[0].create_user("raced", "raced@example.com", PASSWORD)
    first = await services[0].account_tokens.issue("password-reset", user)
    other = await services[0].account_tokens.issue("password-reset", user)
    outcomes: list[str] = []

    async def use(i: int, service: S3AuthService) -> None:
        token = first if i % 4 else other  # two tokens of one account race too
        try:
            await service.reset_password(token, f"Raced-pass-{i}x")
            outcomes.append(f"Raced-pass-{i}x")
        except InvalidAccountTokenError:
            outcomes.append("refused")

    async with anyio.create_task_group() as tg:
        for i, service in enumerate(services):
            tg.start_soon(use, i, service)
    winners = [o for o in outcomes if o != "refused"]
    assert len(winners) == 1, outcomes
    assert await services[1].authenticate_user("raced", winners[0]) is not None
    for token in (first, other):  # spent, both: the account has moved on
        with pytest.raises(InvalidAccountTokenError):
            await services[2].reset_password(token, NEW_PASSWORD)


async def test_tokens_are_bound_to_purpose_account_state_and_time(tmp_path: Path) -> None:
    clock = Clock()
    service = S3AuthService(make_settings(), clock=clock)
    user = await service.create_user("alice", "alice@example.com", PASSWORD)
    reset = await service.account_tokens.issue("password-reset", user)
    verify = await service.account_tokens.issue("email-verification", user)
    with pytest.raises(InvalidAccountTokenError):
        await service.verify_email(reset)
    with pytest.raises(InvalidAccountTokenError):
        await service.reset_password(verify, NEW_PASSWORD)
    prefix, token_id, secret = reset.split(".")
    forged = f"{prefix}.{token_id}.{'A' if secret[0] != 'A' else 'B'}{secret[1:]}"
    with pytest.raises(InvalidAccountTokenError):
        await service.reset_password(forged, NEW_PASSWORD)
    # A refused password leaves the token unspent.
    with pytest.raises(WeakPasswordError):
        await service.reset_password(reset, "weak")
    # The store holds a keyed hash, never the token's secret.
    stored = [info.key async for info in service.store.list(keys.ACCOUNT_TOKENS)]
    for key in stored:
        raw = await service.store.get(key, dict)  # type: ignore[type-abstract]
        assert raw is not None and secret not in str(raw.value) and reset not in str(raw.value)
    # A new address: the tokens mailed to the old one stop working.
    await service.update_user(user.id, email="alice@elsewhere.example")
    with pytest.raises(InvalidAccountTokenError):
        await service.reset_password(reset, NEW_PASSWORD)
    with pytest.raises(InvalidAccountTokenError):
        await service.verify_email(verify)
    moved = await service.get_user_by_id(user.id)
    assert moved is not None and not moved.email_verified
    late = await service.account_tokens.issue("password-reset", moved)
    clock.advance(1801)
    with pytest.raises(InvalidAccountTokenError):
        await service.reset_password(late, NEW_PASSWORD)
    # Expired tokens go with the sweep, judged from the listing's time and the purpose's
    # lifetime: the two reset tokens after 30 minutes, the verification after 48 hours.
    hour = S3AuthService(make_settings(), store=service.store, clock=lambda: time.time() + 3600)
    assert await hour.account_tokens.cleanup() == 2
    later = S3AuthService(
        make_settings(), store=service.store, clock=lambda: time.time() + 49 * 3600
    )
    assert await later.cleanup_expired_tokens() == 1
    assert [i async for i in service.store.list(keys.ACCOUNT_TOKENS)] == []


async def _usable(service: S3AuthService, purpose: Purpose, token: str) -> bool:
    try:
        if purpose == "password-reset":
            await service.reset_password(token, NEW_PASSWORD)
        else:
            await service.verify_email(token)
    except InvalidAccountTokenError:
        return False
    return True


@pytest.mark.parametrize("purpose", ["password-reset", "email-verification"])
async def test_a_token_stays_dead_when_its_address_comes_back(purpose: Purpose) -> None:
    service = S3AuthService(make_settings())
    user = await service.create_user("alice", "alice@example.com", PASSWORD)
    gone = await service.account_tokens.issue(purpose, user)
    await service.update_user(user.id, email="alice@elsewhere.example")
    await service.update_user(user.id, email="alice@example.com")
    back = await service.get_user_by_id(user.id)
    assert back is not None and back.email == "alice@example.com" and not back.email_verified
    assert not await _usable(service, purpose, gone)
    # The address as stored, typed otherwise, is no change of address: its token works.
    fresh = await service.account_tokens.issue(purpose, back)
    await service.update_user(user.id, email=" alice@Example.COM")
    assert await _usable(service, purpose, fresh)
    # Another case before the @ is another address, which may be another mailbox.
    await service.update_user(user.id, email="Alice@example.com")
    assert not await _usable(service, purpose, fresh)

    # A user record and a token stored before either counted the changes of address.
    other = await service.create_user("bob", "bob@example.com", PASSWORD)
    token = await service.account_tokens.issue(purpose, other)
    for key in [
        keys.user(other.id),
        *[i.key async for i in service.store.list(keys.ACCOUNT_TOKENS)],
    ]:
        found = await service.store.get(key, dict)  # type: ignore[type-abstract]
        assert found is not None
        found.value.pop("email_changes", None)
        await service.store.replace(key, found.value, found.etag)
    assert await _usable(service, purpose, token)


async def test_a_reset_token_dies_with_a_new_password() -> None:
    service = S3AuthService(make_settings())
    user = await service.create_user("alice", "alice@example.com", PASSWORD)
    changed = await service.account_tokens.issue("password-reset", user)
    await service.change_password(user.id, PASSWORD, "Changed-pass-99")
    assert not await _usable(service, "password-reset", changed)
    current = await service.get_user_by_id(user.id)
    assert current is not None
    set_by_admin = await service.account_tokens.issue("password-reset", current)
    await service.set_password(user.id, "Set-by-admin-77")
    assert not await _usable(service, "password-reset", set_by_admin)


async def _issued(service: S3AuthService, user_id: str, purpose: Purpose) -> str:
    """A token of `purpose` for the account as it stands now."""
    user = await service.get_user_by_id(user_id)
    assert user is not None
    return await service.account_tokens.issue(purpose, user)


async def test_an_unused_verification_link_stays_dead_once_the_address_was_verified() -> None:
    """A verification link works only while the address is unverified as it was at its
    issue: verified meanwhile (by another link, a reset or an administrator) and marked
    unverified again (the mailbox is in doubt), the address brings back no link mailed
    before; one mailed since works."""
    service = S3AuthService(make_settings())
    user = await service.create_user("alice", "alice@example.com", PASSWORD)
    first = await _issued(service, user.id, "email-verification")
    second = await _issued(service, user.id, "email-verification")
    assert await _usable(service, "email-verification", second)
    await service.update_user(user.id, email_verified=False)
    assert not await _usable(service, "email-verification", first)

    by_admin = await _issued(service, user.id, "email-verification")
    await service.update_user(user.id, email_verified=True)
    await service.update_user(user.id, email_verified=False)
    assert not await _usable(service, "email-verification", by_admin)

    by_reset = await _issued(service, user.id, "email-verification")
    reset = await _issued(service, user.id, "password-reset")
    assert await _usable(service, "password-reset", reset)  # which verifies the address
    await service.update_user(user.id, email_verified=False)
    assert not await _usable(service, "email-verification", by_reset)

    fresh = await _issued(service, user.id, "email-verification")
    assert await _usable(service, "email-verification", fresh)
    # Stored before the mark's changes were counted, a record and a token count none.
    other = await service.create_user("bob", "bob@example.com", PASSWORD)
    token = await service.account_tokens.issue("email-verification", other)
    for key in [
        keys.user(other.id),
        *[i.key async for i in service.store.list(keys.ACCOUNT_TOKENS)],
    ]:
        found = await service.store.get(key, dict)  # type: ignore[type-abstract]
        assert found is not None
        found.value.pop("verified_changes", None)
        await service.store.replace(key, found.value, found.etag)
    assert await _usable(service, "email-verification", token)


@pytest.mark.parametrize("purpose", ["password-reset", "email-verification"])
async def test_no_link_works_on_a_disabled_account(purpose: Purpose) -> None:
    service = S3AuthService(make_settings())
    user = await service.create_user("alice", "alice@example.com", PASSWORD)
    token = await service.account_tokens.issue(purpose, user)
    await service.update_user(user.id, is_active=False)
    assert not await _usable(service, purpose, token)
    after = await service.get_user_by_id(user.id)
    assert after is not None
    assert (after.email_verified, after.hashed_password) == (False, user.hashed_password)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.text(max_size=120),
        st.from_regex(r"(pr1|ev1)\.[0-9a-f]{32}\.[A-Za-z0-9_-]{43}", fullmatch=True),
        st.integers(),
        st.none(),
    )
)
def test_any_token_that_was_not_issued_is_refused_alike(token: object) -> None:
    service = S3AuthService(make_settings())

    async def attempt() -> None:
        with pytest.raises(InvalidAccountTokenError):
            await service.reset_password(token, NEW_PASSWORD)
        with pytest.raises(InvalidAccountTokenError):
            await service.verify_email(token)

    anyio.run(attempt)
