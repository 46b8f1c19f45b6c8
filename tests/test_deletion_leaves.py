"""What a deleted account leaves in the store: an account given everything (sessions, a
device cookie, a link of each kind mailed, a change of address made and another waiting,
wrong passwords counted against it in the store, an audit trail), deleted by an
administrator, then the sweep run past every retention the documentation states. Every
object left is then read, key and body, for the person's names, addresses and id, as typed
and as the package keeps them (folded, a look's skeleton, digested for the index, the
limits and the decoy of a name that is nobody's). Nothing may be left of them: what the
deletion does not remove, the sweep does once its time has passed ("What a deletion
leaves", docs/accounts.md). On memory://, file:// and moto's S3."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from conftest import make_settings
from support import AfterRequest, Clock, held_index_keys, make_clocked_service
from test_app import PASSWORD, bearer, client_for, login, mounted
from test_app_lifecycle import mailed_token
from test_faults import FaultyStore

from s3auth_asgi import S3AuthService, StoreUnavailableError, User, UsernameTakenError
from s3auth_asgi.consistency import StateCheck
from s3auth_asgi.findings import Finding
from s3auth_asgi.identifiers import fold, username_skeleton
from s3auth_asgi.mail import FileMailer
from s3auth_asgi.models import IndexEntry
from s3auth_asgi.ratelimit.identity import account_digest
from s3auth_asgi.storage import ObjectStore, Store, keys
from s3auth_asgi.storage.keys import revocation_subject

pytestmark = pytest.mark.anyio

NAME = "Zebulon_Q7x"
EMAIL = "Zebulon.Q7x@Purge.example"
MOVED = "zq7x.moved@purge.example"
"""The address a change of the account's own moved it to (its link opened)."""
ASKED = "zq7x.asked@purge.example"
"""The address it asked for last, whose link is never opened."""
WRONG = "Wrong-Pass-99!"


def traces(user_id: str) -> set[str]:
    """Every form of the person's names and id that the store could hold, lower-cased."""
    names = {NAME, fold(NAME), username_skeleton(fold(NAME))}
    addresses = {EMAIL, fold(EMAIL), MOVED, ASKED}
    found = {*names, *addresses, user_id, revocation_subject(user_id)}
    found |= {
        keys.digest(fold(NAME), domain="username"),
        keys.digest(username_skeleton(fold(NAME)), domain="skeleton"),
        *(keys.digest(fold(address), domain="email") for address in addresses),
    }
    # What limits are counted against (`NameLookup.account_key`, `owner_account`), and
    # the decoy record and trail of a name that is nobody's (`NameLookup.decoy_user_key`).
    counted = [f"user:{user_id}", f"username:{fold(NAME)}"]
    counted += [f"email:{fold(address)}" for address in addresses]
    found |= {account_digest(name) for name in (*names, *addresses, *counted)}
    for key in counted:
        found |= {
            keys.digest(key, domain="ratelimit"),
            keys.digest(f"account:{key}", domain="ratelimit-budget"),
            hashlib.sha256(key.encode()).hexdigest()[:32],
        }
    return {trace.lower() for trace in found}


async def holding(store: Store, found: set[str]) -> dict[str, list[str]]:
    """Each object whose key or body holds one of `found`, and which it holds."""
    assert isinstance(store, ObjectStore)
    held: dict[str, list[str]] = {}
    async for info in store.list(""):
        read = await store._read(info.key)
        body = read[0].decode("utf-8", "replace") if read is not None else ""
        text = f"{info.key}\n{body}".lower()
        hits = sorted(trace for trace in found if trace in text)
        if hits:
            held[info.key] = hits
    return held


async def given_everything(service: S3AuthService, clock: Clock) -> tuple[str, dict[str, str]]:
    """The account, with all of the above; its id, and an administrator's tokens."""
    await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    app = mounted(service, rate_limit=True)
    async with client_for(app, base_url="https://testserver") as client:
        registered = await client.post(
            "/auth/register", json={"username": NAME, "email": EMAIL, "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text
        user_id: str = registered.json()["id"]
        sessions = [await login(client, NAME) for _ in range(2)]
        assert client.cookies.get("s3auth_device")  # a device cookie: its own budget
        for name in (NAME, EMAIL):
            wrong = await client.post("/auth/login", data={"username": name, "password": WRONG})
            assert wrong.status_code == 401
        forgot = await client.post("/auth/password/forgot", json={"username": NAME})
        assert forgot.status_code == 202
        for address in (MOVED, ASKED):
            asked = await client.patch(
                "/auth/me",
                json={"email": address, "current_password": PASSWORD},
                headers=bearer(sessions[-1]),
            )
            assert asked.status_code == 200, asked.text
            if address == MOVED:
                link = await mailed_token(service, "email_change", MOVED)
                opened = await client.post("/auth/email/verify", json={"token": link})
                assert opened.status_code == 204, opened.text
                sessions.append(await login(client, NAME))
        clock.advance(60)
        admin = await login(client, "root")
        deleted = await client.delete(f"/auth/admin/users/{user_id}", headers=bearer(admin))
        assert deleted.status_code == 204, deleted.text
    await service.mail.drain()
    return user_id, admin


@pytest.mark.parametrize("store_url", ["memory", "file", "s3"], indirect=True)
async def test_a_deleted_account_leaves_nothing_of_its_owner_once_swept(
    store_url: str, tmp_path: Path
) -> None:
    clock = Clock()
    store = ObjectStore.from_url(store_url)
    service = S3AuthService(
        make_settings(store_url, rate_limit_store="store"),
        store=store,
        clock=clock,
        mailer=FileMailer(tmp_path / "outbox"),
    )
    user_id, _ = await given_everything(service, clock)
    found = traces(user_id)
    left = await holding(store, found)
    # What the deletion leaves for the sweep, each kept for a time the documentation
    # states: no name's index entry is among them.
    kinds = {key.split("/", 1)[0] for key in left}
    assert kinds == {"sessions", "revocations", "account-tokens", "audit"}, left
    # Past the longest of them, the audit trail's retention.
    clock.advance(service.settings.audit_retention_days * 86400 + 2 * 86400)
    await service.cleanup_expired_tokens()
    assert await holding(store, found) == {}
    # Nor anything else: what is left is the administrator's and the store's own.
    root = await service.get_user_by_username("root")
    assert root is not None
    kept = {keys.user(root.id), *service.names.name_keys(root), keys.STORE_VERDICT}
    assert {info.key async for info in store.list("")} <= kept


async def test_a_deletion_removes_the_index_entries_of_every_name_it_held() -> None:
    clock = Clock()
    service = make_clocked_service(clock=clock)
    user = await service.create_user(NAME, EMAIL, PASSWORD)
    await service.update_user(user.id, email=MOVED)
    first = keys.email_index(fold(EMAIL))  # its entry, let go: removed
    assert first not in {info.key async for info in service.store.list(keys.EMAIL_INDEX)}
    await service.create_token_pair(user)
    service.store.reset_counts()
    assert await service.delete_user(user.id) is True
    # The record read, the closing marker written and the record closed; the session
    # and the record deleted in one batch, the `deleted` generation marker written; then
    # the three names' entries read and retired (a GET and a PUT each), and deleted in one
    # batch; the address the change let go read too, and found gone.
    assert dict(service.store.requests) == {"get": 5, "put": 7, "list": 1, "delete": 2}
    assert [key for key in await holding(service.store, traces(user.id)) if "index/" in key] == []
    service.store.reset_counts()
    again = await service.create_user(NAME, EMAIL, PASSWORD)
    assert again.id != user.id
    # Names never used, as far as the store can tell: a create each, and the record.
    assert dict(service.store.requests) == {"put": 4}


async def _deletion_steps() -> int:
    """How many store requests the deletion of the account of the test below makes."""
    clock = Clock()
    faulty = FaultyStore(ObjectStore.from_url("memory://"))
    service = make_clocked_service(clock=clock, store=faulty)
    user = await service.create_user(NAME, EMAIL, PASSWORD)
    await service.update_user(user.id, email=MOVED)
    await service.create_token_pair(user)
    faulty.calls = 0
    assert await service.delete_user(user.id) is True
    return faulty.calls


DELETION_STEPS = 15
"""`_deletion_steps()`: the record's GET, the closing marker, the closing write, the
sessions' LIST, the revocation, the batch DELETE, the `deleted` marker; 4 entries' GETs
(three names and the address let go), 3 retirements, their batch DELETE."""


async def test_the_steps_of_a_deletion_are_counted() -> None:
    assert await _deletion_steps() == DELETION_STEPS


@pytest.mark.parametrize("after", [False, True], ids=["before", "after"])
@pytest.mark.parametrize("step", range(1, DELETION_STEPS + 1))
async def test_a_deletion_cut_short_leaves_nothing_once_retried_swept_and_repaired(
    step: int, after: bool
) -> None:
    clock = Clock()
    inner = ObjectStore.from_url("memory://")
    healthy = make_clocked_service(clock=clock, store=inner)
    user = await healthy.create_user(NAME, EMAIL, PASSWORD)
    await healthy.update_user(user.id, email=MOVED)
    await healthy.create_token_pair(user)
    faulty = FaultyStore(inner)
    failing = make_clocked_service(clock=clock, store=faulty)
    faulty.calls, faulty.fail_at, faulty.after = 0, step, after
    try:
        await failing.delete_user(user.id)
    except StoreUnavailableError:
        # What the documentation says of a deletion that failed: try it again.
        await healthy.delete_user(user.id)
    assert faulty.calls >= step  # the fault was met
    assert await healthy.get_user_by_id(user.id) is None
    clock.advance(healthy.settings.audit_retention_days * 86400 + 2 * 86400)
    await healthy.cleanup_expired_tokens()
    found: list[Finding] = []
    await StateCheck(healthy.names, found.append, repair=True).run()
    assert all(item.repaired for item in found), found
    assert await holding(inner, traces(user.id)) == {}
    assert await healthy.create_user(NAME, MOVED, PASSWORD)


async def _deletion_with(
    meanwhile: Callable[[S3AuthService, Clock], Awaitable[object]],
) -> S3AuthService:
    """An account deleted, `meanwhile` run by another host between the retirement of its
    username's entry and the DELETE that follows; that host."""
    clock = Clock()
    inner = ObjectStore.from_url("memory://")
    other = make_clocked_service(clock=clock, store=inner)
    user = await other.create_user(NAME, EMAIL, PASSWORD)
    raced = AfterRequest(inner, "replace", keys.USERNAME_INDEX, lambda: meanwhile(other, clock))
    deleting = make_clocked_service(clock=clock, store=raced)
    assert await deleting.delete_user(user.id) is True
    assert raced.meanwhile is None  # it ran
    return other


async def test_a_registration_between_a_retirement_and_its_delete_is_refused() -> None:
    async def register(other: S3AuthService, clock: Clock) -> None:
        with pytest.raises(UsernameTakenError):  # as a moment before: the name was held
            await other.create_user(NAME, MOVED, PASSWORD)

    other = await _deletion_with(register)
    other.store.reset_counts()
    assert await other.create_user(NAME, MOVED, PASSWORD)
    assert dict(other.store.requests) == {"put": 4}  # the entries are gone


async def test_a_release_that_stalled_past_a_reservation_deletes_nothing() -> None:
    heir: list[User] = []

    async def stall_then_register(other: S3AuthService, clock: Clock) -> None:
        clock.advance(other.settings.name_reservation_seconds + 1)
        heir.append(await other.create_user(NAME, MOVED, PASSWORD))  # taken over

    other = await _deletion_with(stall_then_register)
    # The registration that took the retired entries over keeps them; the deletion's
    # other entry is left retired, naming nobody (taken over, or repaired, once abandoned).
    named = {}
    for key in await held_index_keys(other.store):
        entry = await other.store.get(key, IndexEntry)
        assert entry is not None
        named[key] = entry.value.user_id
    assert named == {
        **dict.fromkeys(other.names.name_keys(heir[0]), heir[0].id),
        keys.email_index(fold(EMAIL)): "",
    }
    found = await other.authenticate_user(NAME, PASSWORD)
    assert found is not None and found.id == heir[0].id
