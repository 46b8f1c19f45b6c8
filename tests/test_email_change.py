"""A user's own change of address: the new address waits (`pending_email`) until a link
mailed to it is opened, and the account keeps its address, verified or not, for logins,
resets and mail until then. The old address is told of the request. The change completes
with conditional writes, the new address's index entry claimed only then, so a request
reserves nothing and a claim that loses its address changes nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import make_service, make_settings
from support import AfterRequest, RacedUserWrite, held_index_keys
from test_app import PASSWORD, assert_problem, bearer, client_for, login, mounted, register
from test_app_lifecycle import NEW_PASSWORD, mailed_token, service_with
from test_app_verification import TokenWritesFail

from s3auth_asgi import S3AuthService, User
from s3auth_asgi.account_tokens import InvalidAccountTokenError
from s3auth_asgi.errors import ConflictError, EmailTakenError
from s3auth_asgi.events import AuthEvent
from s3auth_asgi.hooks import Hooks
from s3auth_asgi.identifiers import fold
from s3auth_asgi.mail import FileMailer
from s3auth_asgi.storage import ObjectStore, Store, keys

pytestmark = pytest.mark.anyio

OLD = "alice@example.com"
NEW = "alice@new.example"
TYPO = "alice@exmaple.com"


async def verified_alice(service: S3AuthService, client: httpx.AsyncClient) -> dict[str, Any]:
    """Alice, registered and verified by her link, and logged in: her tokens."""
    await register(client, "alice")
    token = await mailed_token(service, "email_verification", OLD)
    assert (await client.post("/auth/email/verify", json={"token": token})).status_code == 204
    return await login(client, "alice")


async def ask_for(client: httpx.AsyncClient, tokens: dict[str, Any], address: str) -> Any:
    return await client.patch(
        "/auth/me", json={"email": address, "current_password": PASSWORD}, headers=bearer(tokens)
    )


async def mail_to(service: S3AuthService, to: str) -> list[tuple[str, str]]:
    await service.mail.drain()
    assert isinstance(service.mail.mailer, FileMailer)
    # Not those of the logins that got the caller its tokens (`test_login_notices`).
    mails = service.mail.mailer.messages(100)
    return [(m.kind, m.text) for m in mails if m.to == to and m.kind != "new_device_notice"]


def index_key(address: str) -> str:
    return keys.email_index(fold(address))


async def test_a_mistyped_address_locks_nobody_out(tmp_path: Path) -> None:
    service = service_with(tmp_path, settings={"require_verified_email": True})
    async with client_for(mounted(service)) as client:
        tokens = await verified_alice(service, client)
        await service.ensure_fresh()  # the revocations, synced
        service.store.reset_counts()
        asked = await ask_for(client, tokens, TYPO)
        assert asked.status_code == 200, asked.text
        # The caller's record GET (its password), the change's own GET, the new address's
        # index GET (is it taken?), the link's token PUT and its GET (its Last-Modified,
        # which bounds its expiry), the record PUT and the audit event's: nothing is
        # reserved, nothing released.
        assert dict(service.store.requests) == {"get": 4, "put": 3}
        shown = asked.json()
        assert (shown["email"], shown["email_verified"], shown["pending_email"]) == (
            OLD,
            True,
            TYPO,
        )
        me = (await client.get("/auth/me", headers=bearer(tokens))).json()
        assert (me["email"], me["email_verified"], me["pending_email"]) == (OLD, True, TYPO)
        # The owner still logs in, by name and by the old address; the typo is nobody's.
        for name in ("alice", OLD):
            again = await client.post("/auth/login", data={"username": name, "password": PASSWORD})
            assert again.status_code == 200, again.text
        typo = await client.post("/auth/login", data={"username": TYPO, "password": PASSWORD})
        assert_problem(typo, 401, "invalid_credentials")
        assert await held_index_keys(service.store, keys.EMAIL_INDEX) == [index_key(OLD)]
        # A reset goes to the address the account has.
        await client.post("/auth/password/forgot", json={"username": "alice"})
        assert "password_reset" in [kind for kind, _ in await mail_to(service, OLD)]
        assert [kind for kind, _ in await mail_to(service, TYPO)] == ["email_change"]


async def test_the_old_address_is_told_and_a_new_password_ends_the_request(
    tmp_path: Path,
) -> None:
    """Whoever holds a session and the password can ask for an address of theirs, but the
    owner hears of it at the old address, and a reset from there ends the request."""
    service = service_with(tmp_path)
    async with client_for(mounted(service)) as client:
        tokens = await verified_alice(service, client)
        assert (await ask_for(client, tokens, "mallory@evil.example")).status_code == 200
        to_owner = await mail_to(service, OLD)
        assert [kind for kind, _ in to_owner] == ["email_change_notice", "email_verification"]
        notice = to_owner[0][1]
        assert "mallory@evil.example" in notice and "#token=" not in notice
        link = await mailed_token(service, "email_change", "mallory@evil.example")
        assert link.startswith("ec1.")
        await client.post("/auth/password/forgot", json={"username": OLD})
        reset = await mailed_token(service, "password_reset", OLD)
        done = await client.post(
            "/auth/password/reset", json={"token": reset, "new_password": NEW_PASSWORD}
        )
        assert done.status_code == 204
        late = await client.post("/auth/email/verify", json={"token": link})
        assert_problem(late, 400, "invalid_account_token")
        user = await service.get_user_by_username("alice")
        assert user is not None and (user.email, user.pending_email) == (OLD, "")


async def test_the_new_addresss_link_completes_the_change(tmp_path: Path) -> None:
    hooks = Hooks()
    seen: list[AuthEvent] = []

    @hooks.on("user_updated")
    async def record(event: AuthEvent) -> None:
        seen.append(event)

    service = service_with(tmp_path, hooks=hooks)
    async with client_for(mounted(service)) as client:
        tokens = await verified_alice(service, client)
        assert (await ask_for(client, tokens, NEW)).status_code == 200
        link = await mailed_token(service, "email_change", NEW)
        service.store.reset_counts()
        done = await client.post("/auth/email/verify", json={"token": link})
        assert done.status_code == 204, done.text
        # Token GET, record GET, the old address's index GET (the version to release), the
        # new one's create, the record PUT (If-Match), the release (a PUT and a DELETE),
        # the audit event's PUT, the token's DELETE.
        assert dict(service.store.requests) == {"get": 3, "put": 4, "delete": 2}
        me = (await client.get("/auth/me", headers=bearer(tokens))).json()
        assert (me["email"], me["email_verified"], me["pending_email"]) == (NEW, True, None)
        assert await held_index_keys(service.store, keys.EMAIL_INDEX) == [index_key(NEW)]
        assert (await login(client, NEW))["access_token"]
        gone = await client.post("/auth/login", data={"username": OLD, "password": PASSWORD})
        assert_problem(gone, 401, "invalid_credentials")
        again = await client.post("/auth/email/verify", json={"token": link})
        assert_problem(again, 400, "invalid_account_token")
        events = (await client.get("/auth/me/events", headers=bearer(tokens))).json()["events"]
    # The spent link's failure names no account: no trail keeps it.
    assert [
        (e["event"]["name"], e["event"]["previous_email"])
        for e in events
        if e["event"]["name"].startswith("email_change")
    ] == [("email_change", OLD), ("email_change_request", OLD)]
    assert [(e.name, e.outcome, e.previous_email) for e in seen] == [
        ("email_change_request", "success", OLD),
        ("email_change", "success", OLD),
    ]


async def test_only_the_latest_request_and_the_same_password_keep_a_link(
    tmp_path: Path,
) -> None:
    service = service_with(tmp_path)
    async with client_for(mounted(service)) as client:
        tokens = await verified_alice(service, client)
        await ask_for(client, tokens, NEW)
        first = await mailed_token(service, "email_change", NEW)
        await ask_for(client, tokens, "alice@other.example")
        await ask_for(client, tokens, NEW)  # the same address again: a new link
        for token in (first, await mailed_token(service, "email_change", "alice@other.example")):
            stale = await client.post("/auth/email/verify", json={"token": token})
            assert_problem(stale, 400, "invalid_account_token")
        messages = [text for kind, text in await mail_to(service, NEW) if kind == "email_change"]
        latest = messages[0].split("#token=")[1].split()[0]
        changed = await client.post(
            "/auth/password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            headers=bearer(tokens),
        )
        assert changed.status_code == 200
        ended = await client.post("/auth/email/verify", json={"token": latest})
        assert_problem(ended, 400, "invalid_account_token")
        me = (await client.get("/auth/me", headers=bearer(changed.json()))).json()
        assert (me["email"], me["pending_email"]) == (OLD, None)
        # Asking for the address it has withdraws a request.
        await ask_for(client, changed.json(), NEW)
        back = await client.patch(
            "/auth/me",
            json={"email": OLD, "current_password": NEW_PASSWORD},
            headers=bearer(changed.json()),
        )
        assert back.status_code == 200 and back.json()["pending_email"] is None
        withdrawn = await mailed_token(service, "email_change", NEW)
        refused = await client.post("/auth/email/verify", json={"token": withdrawn})
        assert_problem(refused, 400, "invalid_account_token")


async def test_an_address_taken_before_the_link_is_opened_is_409_and_changes_nothing(
    tmp_path: Path,
) -> None:
    service = service_with(tmp_path)
    async with client_for(mounted(service)) as client:
        tokens = await verified_alice(service, client)
        assert (await ask_for(client, tokens, NEW)).status_code == 200
        link = await mailed_token(service, "email_change", NEW)
        await service.create_user("bob", NEW, PASSWORD)
        alice = keys.user(await login_id(client, tokens))
        before = await service.store.get(alice, User)
        taken = await client.post("/auth/email/verify", json={"token": link})
        assert_problem(taken, 409, "email_taken")
        after = await service.store.get(alice, User)
        assert before is not None and after is not None and after.etag == before.etag
        assert await held_index_keys(service.store, keys.EMAIL_INDEX) == sorted(
            [index_key(OLD), index_key(NEW)]
        )
        owner = await service.get_user_by_email(NEW)
        assert owner is not None and owner.username == "bob"
        # Asking for an address that is taken is refused at once.
        refused = await ask_for(client, tokens, NEW)
        assert_problem(refused, 409, "account_exists")


async def login_id(client: httpx.AsyncClient, tokens: dict[str, Any]) -> str:
    me = await client.get("/auth/me", headers=bearer(tokens))
    return str(me.json()["id"])


def mailing(store: Store, tmp_path: Path) -> S3AuthService:
    return S3AuthService(make_settings(), store=store, mailer=FileMailer(tmp_path / "outbox"))


async def test_an_address_claimed_as_the_link_is_used_is_409_and_changes_nothing(
    tmp_path: Path,
) -> None:
    """Bob registers the address between the link's token read and the claim of its entry:
    the claim is refused, the record is not written, nothing is released."""
    inner = ObjectStore.from_url("memory://")
    late: list[S3AuthService] = []

    async def bob_registers() -> None:
        await late[0].create_user("bob", NEW, PASSWORD)

    store = AfterRequest(inner, "get", keys.ACCOUNT_TOKENS, bob_registers)
    service = mailing(store, tmp_path)
    late.append(make_service(store=inner))
    alice = await service.create_user("alice", OLD, PASSWORD, email_verified=True)
    await service.request_email_change(alice.id, NEW)
    link = await mailed_token(service, "email_change", NEW)
    with pytest.raises(EmailTakenError):
        await service.confirm_email_change(link)
    user = await service.get_user_by_id(alice.id)
    assert user is not None
    assert (user.email, user.email_verified, user.pending_email) == (OLD, True, NEW)
    assert await held_index_keys(inner, keys.EMAIL_INDEX) == sorted(
        [index_key(OLD), index_key(NEW)]
    )


async def test_of_two_uses_of_a_link_one_changes_the_address(tmp_path: Path) -> None:
    """The second use runs while the first has claimed the new address and not yet written
    the record: it loses the claim and writes nothing. Used again once the first is done,
    the link is spent."""
    inner = ObjectStore.from_url("memory://")
    outcomes: list[object] = []
    service = mailing(inner, tmp_path)
    alice = await service.create_user("alice", OLD, PASSWORD, email_verified=True)
    await service.request_email_change(alice.id, NEW)
    link = await mailed_token(service, "email_change", NEW)

    async def second_use() -> None:
        try:
            outcomes.append(await twin.confirm_email_change(link))
        except (EmailTakenError, InvalidAccountTokenError) as error:
            outcomes.append(type(error))

    store = AfterRequest(inner, "create", keys.EMAIL_INDEX, second_use)
    twin = make_service(store=inner)
    first = make_service(store=store)
    change = await first.confirm_email_change(link)
    assert outcomes == [EmailTakenError]
    assert (change.user.email, change.previous_email) == (NEW, OLD)
    with pytest.raises(InvalidAccountTokenError):
        await twin.confirm_email_change(link)
    user = await service.get_user_by_id(alice.id)
    assert user is not None
    assert (user.email, user.email_verified, user.pending_email) == (NEW, True, "")
    assert await held_index_keys(inner, keys.EMAIL_INDEX) == [index_key(NEW)]


async def test_concurrent_uses_of_a_link_leave_one_owner_of_one_address(
    tmp_path: Path,
) -> None:
    inner = ObjectStore.from_url("memory://")
    service = mailing(inner, tmp_path)
    alice = await service.create_user("alice", OLD, PASSWORD, email_verified=True)
    await service.request_email_change(alice.id, NEW)
    link = await mailed_token(service, "email_change", NEW)
    hosts = [mailing(inner, tmp_path) for _ in range(5)]
    results = await asyncio.gather(
        *(host.confirm_email_change(link) for host in hosts), return_exceptions=True
    )
    done = [r for r in results if not isinstance(r, BaseException)]
    assert len(done) == 1, results
    for host in hosts:
        await host.mail.drain()
    # The one use that moved the account tells the old address; the others tell nothing.
    told = [kind for kind, _ in await mail_to(service, OLD)]
    assert told == ["email_change_confirmed_notice", "email_change_notice"]
    assert all(
        isinstance(r, EmailTakenError | InvalidAccountTokenError)
        for r in results
        if isinstance(r, BaseException)
    ), results
    assert await held_index_keys(inner, keys.EMAIL_INDEX) == [index_key(NEW)]


async def test_without_a_mailer_the_change_applies_at_once_unless_it_would_lock_out() -> None:
    """No link can be mailed: the address changes at once, unverified, as it always has;
    where a verified address is required that would lock the owner out, so it is refused
    and nothing changes."""
    plain = make_service()
    async with client_for(mounted(plain)) as client:
        await register(client, "alice")
        tokens = await login(client, "alice")
        moved = await ask_for(client, tokens, NEW)
        assert moved.status_code == 200
        assert (moved.json()["email"], moved.json()["pending_email"]) == (NEW, None)
    strict = make_service(require_verified_email=True)
    alice = await strict.create_user("alice", OLD, PASSWORD, email_verified=True)
    async with client_for(mounted(strict)) as client:
        tokens = await login(client, "alice")
        refused = await ask_for(client, tokens, NEW)
        assert_problem(refused, 403, "email_change_unavailable")
    user = await strict.get_user_by_id(alice.id)
    assert user is not None and (user.email, user.email_verified) == (OLD, True)


async def test_a_link_the_store_fails_to_keep_fails_the_request_and_writes_nothing(
    tmp_path: Path,
) -> None:
    """The link is made before the record is written, so without it nothing waits and
    nothing is mailed; asked again once the store is back, it works."""
    store = TokenWritesFail(ObjectStore.from_url("memory://"))
    store.failing = False
    service = service_with(tmp_path, store=store)
    async with client_for(mounted(service)) as client:
        tokens = await verified_alice(service, client)
        alice = keys.user(await login_id(client, tokens))
        before = await store.get(alice, User)
        store.failing = True
        failed = await ask_for(client, tokens, NEW)
        assert_problem(failed, 503, "store_unavailable")
        after = await store.get(alice, User)
        assert before is not None and after is not None and after.etag == before.etag
        assert await mail_to(service, NEW) == []
        assert [kind for kind, _ in await mail_to(service, OLD)] == ["email_verification"]
        store.failing = False
        assert (await ask_for(client, tokens, NEW)).status_code == 200
        link = await mailed_token(service, "email_change", NEW)
        assert (await client.post("/auth/email/verify", json={"token": link})).status_code == 204


async def test_a_request_that_loses_to_another_is_409_and_its_link_works_for_nobody(
    tmp_path: Path,
) -> None:
    inner = ObjectStore.from_url("memory://")
    other = mailing(inner, tmp_path / "other")
    alice = await other.create_user("alice", OLD, PASSWORD, email_verified=True)
    store = RacedUserWrite(
        inner, lambda: other.request_email_change(alice.id, "alice@other.example")
    )
    service = mailing(store, tmp_path)
    with pytest.raises(ConflictError):
        await service.request_email_change(alice.id, NEW)
    user = await service.get_user_by_id(alice.id)
    assert user is not None and (user.email, user.pending_email) == (OLD, "alice@other.example")
    await service.mail.drain()
    assert isinstance(service.mail.mailer, FileMailer)
    assert service.mail.mailer.messages() == []  # nothing mailed for the request that lost
    winner = await mailed_token(other, "email_change", "alice@other.example")
    assert (await service.confirm_email_change(winner)).user.email == "alice@other.example"


async def test_an_administrators_change_applies_at_once_and_withdraws_a_request(
    tmp_path: Path,
) -> None:
    service = mailing(ObjectStore.from_url("memory://"), tmp_path)
    alice = await service.create_user("alice", OLD, PASSWORD, email_verified=True)
    await service.request_email_change(alice.id, NEW)
    link = await mailed_token(service, "email_change", NEW)
    moved = await service.update_user(alice.id, email="alice@admin.example")
    assert (moved.email, moved.email_verified, moved.pending_email) == (
        "alice@admin.example",
        False,
        "",
    )
    with pytest.raises(InvalidAccountTokenError):
        await service.confirm_email_change(link)
    assert await held_index_keys(service.store, keys.EMAIL_INDEX) == [
        index_key("alice@admin.example")
    ]


async def test_a_record_written_before_has_nothing_waiting_and_can_ask(tmp_path: Path) -> None:
    service = mailing(ObjectStore.from_url("memory://"), tmp_path)
    alice = await service.create_user("alice", OLD, PASSWORD, email_verified=True)
    stored = await service.store.get(keys.user(alice.id), dict[str, object])
    assert stored is not None
    older = {k: v for k, v in stored.value.items() if k not in ("pending_email", "email_requests")}
    await service.store.replace(keys.user(alice.id), older, stored.etag)
    user = await service.get_user_by_id(alice.id)
    assert user is not None and (user.pending_email, user.email_requests) == ("", 0)
    assert user.public().pending_email is None
    asked = await service.request_email_change(alice.id, NEW)
    assert (asked.user.pending_email, asked.user.email_requests) == (NEW, 1)
    link = await mailed_token(service, "email_change", NEW)
    assert (await service.confirm_email_change(link)).completed


@pytest.mark.parametrize(
    "change",
    [{"is_active": False}, {"scopes": ["reports"]}, {"is_admin": True}],
    ids=["disabled", "rescoped", "made-administrator"],
)
async def test_a_change_that_ends_the_sessions_ends_the_address_waiting_too(
    tmp_path: Path, change: dict[str, Any]
) -> None:
    """An administrator's change that ends the account's sessions writes a new session
    generation, which the link to a new address dies with: the address no longer waits,
    as after a new password or a logout everywhere, rather than being shown as waiting
    for a link that can never work (even once the account is enabled again)."""
    service = mailing(ObjectStore.from_url("memory://"), tmp_path)
    alice = await service.create_user("alice", OLD, PASSWORD, email_verified=True)
    await service.request_email_change(alice.id, NEW)
    link = await mailed_token(service, "email_change", NEW)
    await service.update_user(alice.id, **change)
    await service.update_user(alice.id, is_active=True)
    user = await service.get_user_by_id(alice.id)
    assert user is not None and (user.email, user.pending_email) == (OLD, "")
    with pytest.raises(InvalidAccountTokenError):
        await service.confirm_email_change(link)
