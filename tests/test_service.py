"""S3AuthService on every backend: behaviour and object-store request budgets. The tests
marked `on_every_store` run on Azure and GCS too; GCS deletes one key a request, so its
budgets count a DELETE per key where the others count one batch."""

from __future__ import annotations

import math
import time

import anyio
import pytest
from conftest import make_service, make_settings, on_every_store
from support import held_index_keys

from benchmarks.bench_login import populate
from s3auth_asgi import (
    ConfigurationError,
    ConflictError,
    EmailTakenError,
    InvalidTokenError,
    RefreshTokenReuseError,
    S3AuthService,
    S3ValidationError,
    TokenRevokedError,
    UsernameTakenError,
    WeakPasswordError,
)
from s3auth_asgi.models import Session
from s3auth_asgi.storage import keys

pytestmark = pytest.mark.anyio
PASSWORD = "SecurePass123!"


@on_every_store
async def test_register_login_refresh_logout(service: S3AuthService) -> None:
    user = await service.create_user("john", "john@example.com", PASSWORD, "John Doe")
    assert user.full_name == "John Doe" and user.hashed_password.startswith("$argon2id$")
    assert await service.authenticate_user("john", "wrong-Password1") is None
    found = await service.authenticate_user("JOHN@Example.com", PASSWORD)
    assert found is not None and found.id == user.id
    pair = await service.create_token_pair(found, device_info="Web Browser", ip_address="1.2.3.4")
    assert pair["token_type"] == "bearer" and pair.expires_in == 1800
    claims = service.decode_token(pair.access_token)
    assert claims["sub"] == user.id and claims["preferred_username"] == "john"
    sessions = await service.get_user_active_sessions(user.id, claims["sid"])
    assert [(s.device_info, s.ip_address, s.current) for s in sessions] == [
        ("Web Browser", "1.2.3.4", True)
    ]
    assert sessions[0]["device_info"] == "Web Browser"  # the guide reads them as mappings
    new = await service.refresh_access_token(pair.refresh_token)
    assert new.refresh_token != pair.refresh_token
    assert await service.revoke_refresh_token(new.refresh_token) is True
    assert await service.get_user_active_sessions(user.id) == []
    with pytest.raises(TokenRevokedError):
        service.decode_token(new.access_token)
    with pytest.raises(TokenRevokedError):
        await service.refresh_access_token(new.refresh_token)
    assert await service.revoke_refresh_token(new.refresh_token) is False


# Not on moto: writing 3,000 objects there takes ~15 s and shows nothing about the request
# count that memory:// and file:// do not (the count is the service's, not the backend's).
@pytest.mark.parametrize("store_url", ["memory", "file"], indirect=True)
async def test_login_costs_four_requests_whatever_the_user_count(service: S3AuthService) -> None:
    """s3verless makes 1 + U requests per login; this makes 4 with 1 or 1,000 users: the
    name's index entry, the user, the session, and the user read back
    (`session_opening`)."""
    user = await service.create_user("target", "target@example.com", PASSWORD)
    for ids in (range(0, 1), range(1, 1001)):
        await populate(service.store, ids, user.hashed_password)
        service.store.reset_counts()
        found = await service.authenticate_user("target", PASSWORD)
        assert found is not None
        await service.create_token_pair(found)
        assert dict(service.store.requests) == {"get": 3, "put": 1}
        service.store.reset_counts()
        assert await service.authenticate_user("user-0@example.com", PASSWORD) is not None
        assert dict(service.store.requests) == {"get": 2}


async def test_login_with_ten_thousand_users_still_four_requests() -> None:
    service = make_service()
    user = await service.create_user("target", "target@example.com", PASSWORD)
    await populate(service.store, range(10_000), user.hashed_password)
    service.store.reset_counts()
    found = await service.authenticate_user("target", PASSWORD)
    assert found is not None
    await service.create_token_pair(found)
    assert sum(service.store.requests.values()) == 4


@on_every_store
async def test_request_budgets(service: S3AuthService, backend: str) -> None:
    # As its start does (the store checked, the revocations read): the budgets are of a
    # running service.
    await service.check_store()
    await service.ensure_fresh()
    service.store.reset_counts()
    user = await service.create_user("budget", "budget@example.com", PASSWORD)
    # The username's index, its skeleton's (no look-alikes), the email's, the user.
    assert dict(service.store.requests) == {"put": 4}
    pairs = [await service.create_token_pair(user) for _ in range(10)]
    service.store.reset_counts()
    await service.refresh_access_token(pairs[0].refresh_token)
    # The session, the LIST that checks the session cap, the rotation.
    assert dict(service.store.requests) == {"get": 1, "list": 1, "put": 1}
    service.store.reset_counts()
    assert await service.revoke_all_user_tokens(user.id) == 10
    # The user record's GET and PUT (a new session generation) and the generation's
    # marker, then the LIST, the revocation and the DELETE.
    assert dict(service.store.requests) == {
        "get": 1,
        "list": 1,
        "delete": 10 if backend == "gcs" else 1,
        "put": 3,
    }
    for pair in pairs:
        with pytest.raises(TokenRevokedError):
            service.decode_token(pair.access_token)


@on_every_store
async def test_uniqueness_is_case_and_unicode_insensitive(service: S3AuthService) -> None:
    await service.create_user("alice", "alice@example.com", PASSWORD)
    for name in ("ALICE", "Alice", "ａｌｉｃｅ", " alice "):
        with pytest.raises(UsernameTakenError):
            await service.create_user(name, f"{abs(hash(name))}@example.com", PASSWORD)
    with pytest.raises(EmailTakenError):
        await service.create_user("alice2", "ALICE@EXAMPLE.COM", PASSWORD)
    # The failed email reservation released the username it had taken.
    await service.create_user("alice2", "alice2@example.com", PASSWORD)
    assert (await service.get_user_by_username("ＡＬＩＣＥ")) is not None


@pytest.mark.parametrize(
    "name",
    [
        "al\u200bice", "bob\x00", "car\u202eol", "a b c", "x@y", "ab", "n" * 65, "",
        "0123456789abcdef0123456789abcdef", " 0123456789ABCDEF0123456789ABCDEF",  # an id's shape
    ],
)  # fmt: skip
async def test_invisible_and_malformed_usernames_are_refused(name: str) -> None:
    service = make_service()
    with pytest.raises(S3ValidationError) as info:
        await service.create_user(name, "someone@example.com", PASSWORD)
    assert info.value.code == "invalid_username"
    assert sum(service.store.requests.values()) == 0


async def test_password_policy_is_checked_before_anything_is_written() -> None:
    service = make_service()
    for weak in ("short1A", "alllowercase1", "ALLUPPERCASE1", "NoDigitsHere", "x" * 129 + "A1"):
        with pytest.raises(WeakPasswordError):
            await service.create_user("weak", "weak@example.com", weak)
    assert sum(service.store.requests.values()) == 0
    await service.create_user("unicode", "u@example.com", "ÄÖÜäöü1234")  # any letter counts


@on_every_store
async def test_refresh_reuse_revokes_the_session(service: S3AuthService) -> None:
    user = await service.create_user("reuse", "reuse@example.com", PASSWORD)
    first = await service.create_token_pair(user)
    second = await service.refresh_access_token(first.refresh_token)
    # Inside the grace window the previous token gets the current pair, no new one.
    again = await service.refresh_access_token(first.refresh_token)
    assert again.refresh_token == second.refresh_token
    third = await service.refresh_access_token(second.refresh_token)
    with pytest.raises(RefreshTokenReuseError):
        await service.refresh_access_token(first.refresh_token)  # two rotations old
    with pytest.raises(TokenRevokedError):
        await service.refresh_access_token(third.refresh_token)
    with pytest.raises(TokenRevokedError):
        service.decode_token(third.access_token)


# With no skew allowance the window is the grace alone (the allowance widens it:
# test_refresh_grace_clocks).
NO_SKEW = {"revocation_skew_seconds": 0, "leeway_seconds": 0}


async def test_previous_token_after_the_grace_window_is_reuse() -> None:
    # On the store's clock (the real one): a host days ahead of it, with no allowance, is
    # held to it, and its sessions reach their absolute lifetime by the store's time.
    now = [float(int(time.time()))]
    service = S3AuthService(make_settings(**NO_SKEW), clock=lambda: now[0])
    user = await service.create_user("grace", "grace@example.com", PASSWORD)
    first = await service.create_token_pair(user)
    await service.refresh_access_token(first.refresh_token)
    now[0] += service.settings.refresh_grace_seconds + 1
    with pytest.raises(RefreshTokenReuseError):
        await service.refresh_access_token(first.refresh_token)


@pytest.mark.parametrize("fraction", [0.01, 0.5, 0.99])
async def test_the_grace_window_is_its_length_to_the_sub_second(fraction: float) -> None:
    # Whole seconds made a 10 s grace anything from 9 to 11: a rotation at x.99 and a retry
    # 9.5 s later was taken for reuse, and the whole session ended.
    # On the store's clock (the real one), which holds the rotation's time: a clock ahead
    # of it by more than the allowance (none here) would shorten the grace.
    now = [int(time.time()) + fraction]
    service = S3AuthService(make_settings(**NO_SKEW), clock=lambda: now[0])
    user = await service.create_user("grace", "grace@example.com", PASSWORD)
    first = await service.create_token_pair(user)
    second = await service.refresh_access_token(first.refresh_token)
    grace = service.settings.refresh_grace_seconds
    now[0] += grace - 0.05
    again = await service.refresh_access_token(first.refresh_token)
    assert again.refresh_token == second.refresh_token
    now[0] += 0.1  # now past the grace: a replay
    with pytest.raises(RefreshTokenReuseError):
        await service.refresh_access_token(first.refresh_token)


@on_every_store
async def test_forged_refresh_tokens_do_not_revoke(service: S3AuthService) -> None:
    user = await service.create_user("forged", "forged@example.com", PASSWORD)
    pair = await service.create_token_pair(user)
    head, mac = pair.refresh_token.rsplit(".", 1)
    forged = head + "." + ("A" if mac[0] != "A" else "B") + mac[1:]
    with pytest.raises(InvalidTokenError) as info:
        await service.refresh_access_token(forged)
    assert info.value.code == "invalid_token"
    future = pair.refresh_token.replace(".0.", ".7.", 1)
    with pytest.raises(InvalidTokenError):
        await service.refresh_access_token(future)
    assert await service.refresh_access_token(pair.refresh_token)  # the session survived


async def test_expired_session_is_refused_and_cleaned_up() -> None:
    now = [1_800_000_000.0]
    base = make_service()
    service = S3AuthService(base.settings, store=base.store, clock=lambda: now[0])
    user = await service.create_user("expiry", "expiry@example.com", PASSWORD)
    pair = await service.create_token_pair(user)
    sid = service.decode_token(pair.access_token)["sid"]
    now[0] += service.settings.refresh_token_seconds + 1
    with pytest.raises(InvalidTokenError) as info:
        await service.refresh_access_token(pair.refresh_token)
    assert info.value.code == "token_expired"
    assert await service.store.get(keys.session(user.id, sid), Session) is None


@on_every_store
async def test_cleanup_decides_from_listings(service: S3AuthService, backend: str) -> None:
    user = await service.create_user("cleanup", "cleanup@example.com", PASSWORD)
    pairs = [await service.create_token_pair(user) for _ in range(3)]
    await service.revoke_refresh_token(pairs[0].refresh_token)
    # Nothing has expired yet: cleanup deletes nothing and reads no object.
    service.store.reset_counts()
    assert await service.cleanup_expired_tokens() == 0
    # sessions, revocations, mailed tokens, audit events, rate-limit objects: a LIST each;
    # the cut-off of every session: a GET
    assert dict(service.store.requests) == {"list": 5, "get": 1}
    # Seen from past the refresh lifetime, the two live sessions and the revocation
    # entry have expired; still no GET.
    settings = service.settings
    later = S3AuthService(
        settings,
        store=service.store,
        clock=lambda: (
            service.clock() + settings.refresh_token_seconds + settings.revocation_skew_seconds + 60
        ),
    )
    service.store.reset_counts()
    assert await later.cleanup_expired_tokens() == 3
    # A LIST each, the cut-off of every session read, and the expired deleted.
    assert dict(service.store.requests) == {
        "list": 5,
        "get": 1,
        "delete": 3 if backend == "gcs" else 2,
    }
    assert [i async for i in service.store.list(keys.SESSIONS)] == []
    assert [i async for i in service.store.list(keys.REVOCATIONS)] == []


MANY_SESSIONS = 2100


async def _user_with_many_sessions(backend: str, store_url: str) -> tuple[S3AuthService, str]:
    if backend in ("s3", "seaweedfs"):
        pytest.skip(f"2,000 PUTs to {backend} add nothing the memory and file runs do not show")
    # A clock that stands still: the ending's second revocation, written when its deletes
    # land late (`late_deletes`), would otherwise count or not by how loaded the machine is.
    now = time.time()
    service = S3AuthService(make_settings(store_url), clock=lambda: now)
    user = await service.create_user("many", "many@example.com", PASSWORD)
    # Several logins at a time: a file:// store's writes run in worker threads, which
    # overlap.
    pending = iter(range(MANY_SESSIONS))

    async def log_in() -> None:
        for _ in pending:
            await service.create_token_pair(user)

    async with anyio.create_task_group() as group:
        for _ in range(8):
            group.start_soon(log_in)
    service.store.reset_counts()
    return service, user.id


async def test_revoke_all_pages_through_many_sessions(backend: str, store_url: str) -> None:
    service, user_id = await _user_with_many_sessions(backend, store_url)
    count = MANY_SESSIONS
    assert await service.revoke_all_user_tokens(user_id) == count
    # Besides the pages: the record's GET and PUT and the marker, as `test_request_budgets`.
    assert dict(service.store.requests) == {
        "get": 1,
        "list": math.ceil(count / 1000),
        "delete": math.ceil(count / 1000),
        "put": 3,
    }


@on_every_store
async def test_update_user_and_deactivation_revokes(service: S3AuthService) -> None:
    user = await service.create_user("upd", "upd@example.com", PASSWORD)
    pair = await service.create_token_pair(user)
    service.store.reset_counts()
    updated = await service.update_user(user.id, full_name="New Name", email="new@example.com")
    assert updated.full_name == "New Name" and updated.email == "new@example.com"
    # The user and the old address's entry read; the new address's entry, the user and the
    # old entry's release written, and the old entry deleted.
    assert dict(service.store.requests) == {"get": 2, "put": 3, "delete": 1}
    assert await service.get_user_by_email("upd@example.com") is None
    assert (await service.get_user_by_email("NEW@example.com")) is not None
    service.decode_token(pair.access_token)  # a profile change revokes nothing
    await service.update_user(user.id, is_active=False)
    with pytest.raises(TokenRevokedError):
        service.decode_token(pair.access_token)
    assert await service.authenticate_user("upd", PASSWORD) is None
    with pytest.raises(TokenRevokedError):
        await service.refresh_access_token(pair.refresh_token)


@on_every_store
async def test_change_password_revokes_everything_and_returns_a_new_pair(
    service: S3AuthService,
) -> None:
    user = await service.create_user("pwd", "pw@example.com", PASSWORD)
    old = await service.create_token_pair(user)
    service.store.reset_counts()
    new = await service.change_password(user.id, PASSWORD, "BrandNewPass456")
    # One read of the user; a logout everywhere (the user and a generation marker written,
    # the sessions listed, revoked and deleted); then the password (the user and another
    # marker written, the sessions listed again, none, and the first marker deleted); the
    # new session, and the user read back (`session_opening`).
    assert dict(service.store.requests) == {"get": 2, "put": 6, "list": 2, "delete": 2}
    with pytest.raises(TokenRevokedError):
        service.decode_token(old.access_token)
    assert service.decode_token(new.access_token)["sub"] == user.id
    assert await service.authenticate_user("pwd", PASSWORD) is None
    assert await service.authenticate_user("pwd", "BrandNewPass456") is not None


@on_every_store
async def test_delete_user_frees_the_names(service: S3AuthService, backend: str) -> None:
    user = await service.create_user("gone", "gone@example.com", PASSWORD)
    await service.create_token_pair(user)
    service.store.reset_counts()
    assert await service.delete_user(user.id) is True
    # The record is read, the closing marker written, and the record closed (If-Match);
    # the session and the record go in one batch DELETE; then the `deleted` generation
    # marker; then each of the three names is read and retired (a GET and a PUT each), and
    # the three deleted in one batch (on GCS, a request per object).
    deletes = 5 if backend == "gcs" else 2
    assert dict(service.store.requests) == {"get": 4, "put": 7, "list": 1, "delete": deletes}
    assert await service.get_user_by_id(user.id) is None
    # The closing marker is left for the sweep (`session_generation`).
    closing, deleted = [i.key async for i in service.store.list(keys.SESSIONS)]
    assert keys.is_closing_marker(closing) and closing.startswith(keys.user_sessions(user.id))
    assert deleted == keys.generation_marker(user.id, keys.DELETED_GENERATION)
    assert await held_index_keys(service.store) == []
    assert await service.delete_user(user.id) is False
    service.store.reset_counts()
    again = await service.create_user("gone", "gone@example.com", PASSWORD)
    assert again.id != user.id
    # Its entries are gone: a create each, as for names never used, and the record.
    assert dict(service.store.requests) == {"put": 4}


@on_every_store
async def test_list_users_pages_through_everyone(service: S3AuthService) -> None:
    created = {
        (await service.create_user(f"pager{i}", f"pager{i}@example.com", PASSWORD)).id
        for i in range(7)
    }
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = await service.list_users(after=cursor, limit=3)
        seen.extend(u.id for u in page)
        if cursor is None:
            break
    assert seen == sorted(created)


async def test_cleanup_of_many_sessions_counts(backend: str, store_url: str) -> None:
    service, _ = await _user_with_many_sessions(backend, store_url)
    count = MANY_SESSIONS
    settings = service.settings
    later = S3AuthService(
        settings,
        store=service.store,
        clock=lambda: service.clock() + settings.refresh_token_seconds + 3600,
    )
    service.store.reset_counts()
    assert await later.cleanup_expired_tokens() == count
    # Sessions: one LIST and one batch DELETE per 1,000; revocations, mailed tokens, audit
    # events and rate-limit objects: one LIST each; the cut-off of every session: a GET.
    assert dict(service.store.requests) == {
        "list": math.ceil(count / 1000) + 4,
        "get": 1,
        "delete": math.ceil(count / 1000),
    }


async def test_update_expects_only_fields_a_user_record_has() -> None:
    service = make_service()
    user = await service.create_user("expecting", "expecting@example.com", PASSWORD)
    with pytest.raises(ConfigurationError, match="no field nope"):
        await service.update_user(user.id, full_name="X", expect={"nope": 1})
    with pytest.raises(ConflictError):  # the value read is not the record's
        await service.update_user(user.id, full_name="X", expect={"full_name": "Y"})
    changed = await service.update_user(user.id, full_name="X", expect={"full_name": None})
    assert changed.full_name == "X"


async def test_no_secret_shows_in_a_repr() -> None:
    # An object logged by mistake (`logger.debug("%r", user)`) must not log a hash or token.
    service = make_service()
    user = await service.create_user("shown", "shown@example.com", PASSWORD)
    pair = await service.create_token_pair(user)
    (info,) = [i async for i in service.store.list(keys.SESSIONS)]
    stored = await service.store.get(info.key, Session)
    assert stored is not None
    for value, secrets in [
        (user, [user.hashed_password]),
        (pair, [pair.access_token, pair.refresh_token]),
        (stored.value, [stored.value.secret]),
    ]:
        for text in (repr(value), str(value), f"{value}", *pretty_reprs(value)):
            assert "<hidden>" in text
            assert not any(secret in text for secret in secrets), type(value)
    assert "shown@example.com" in repr(user)  # what is not secret still shows


def pretty_reprs(value: object) -> list[str]:
    """What rich's pretty printer shows of `value` (as the REPL with rich, a debugger or a
    rich log handler would), on one line and folded; nothing when rich is not installed."""
    try:
        from rich.pretty import pretty_repr
    except ImportError:
        return []
    wide = pretty_repr(value, max_width=10_000)
    assert wide == repr(value)  # the same fields, hidden alike
    return [wide, pretty_repr(value, max_width=20)]
