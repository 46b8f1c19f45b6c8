"""Importing a user with the password hash another system made (`user_imports`): it logs in
over the auth app and is upgraded to argon2id at its first login; its names are claimed
as a registration claims them, a taken one (or a look-alike) refused with nothing written;
a hash the hasher cannot verify is refused before any request; a failure midway leaves
nothing half-made. bcrypt at 4 rounds and argon2 at conftest's cheap parameters keep it fast."""

from __future__ import annotations

import time
from typing import Any

import pytest
from conftest import make_service, make_settings
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher
from support import StoreWrapper, asgi_client
from test_faults import FaultyStore

from s3auth_asgi import (
    EmailTakenError,
    InvalidUsernameError,
    S3AuthService,
    S3ValidationError,
    StoreUnavailableError,
    UsernameTakenError,
)
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.models import IndexEntry, User
from s3auth_asgi.storage import ObjectStore, keys

pytestmark = pytest.mark.anyio
PASSWORD = "weak"  # an imported hash is not held to the password policy: there is no password
BCRYPT = BcryptHasher(rounds=4).hash(PASSWORD)
ARGON2 = Argon2Hasher(memory_cost=2048, time_cost=1, parallelism=1).hash(PASSWORD)
"""At other parameters than the service's (conftest's FAST_HASHING), so upgraded too."""
HASHES = {
    "bcrypt 2b": BCRYPT,
    "bcrypt 2a": BcryptHasher(rounds=4, prefix="2a").hash(PASSWORD),
    "bcrypt 2y": "$2y$" + BCRYPT[4:],  # PHP's name for 2b
    "argon2id": ARGON2,
}
REFUSED_HASHES = {
    "plain text": "weak",
    "empty": "",
    "md5-crypt": "$1$saltsalt$qjXMvbEw8oaL.CzflDugX/",
    "bcrypt 2x": "$2x$" + BCRYPT[4:],
    "bcrypt cost out of range": "$2b$03$" + BCRYPT[7:],
    "bcrypt cut short": BCRYPT[:-1],
    "argon2i": ARGON2.replace("$argon2id$", "$argon2i$"),
    "argon2id without its digest": ARGON2.rsplit("$", 1)[0],
    "argon2id damaged": "$argon2id$v=19$m=1024,t=1,p=1$not-base64!$x",
    # Base64 whose last character sets bits past the bytes encoded, which no hasher writes:
    # bcrypt and argon2 refuse such a salt, and no password gives such a digest.
    "bcrypt salt with stray bits": BCRYPT[:28] + "/" + BCRYPT[29:],
    "bcrypt digest with stray bits": BCRYPT[:-1] + "/",
    "argon2id salt with stray bits": ARGON2.rsplit("$", 1)[0][:-1] + "B$" + ARGON2.rsplit("$")[-1],
    "argon2id digest with stray bits": ARGON2[:-1] + "B",
    "not text": 12345,
}


def store_on(url: str, tmp_path: Any) -> ObjectStore:
    return ObjectStore.from_url(f"file://{tmp_path / 'store'}" if url == "file" else "memory://")


async def stored(service: S3AuthService, user_id: str) -> User:
    found = await service.store.get(keys.user(user_id), User)
    assert found is not None
    return found.value


@pytest.mark.parametrize("backend", ["memory", "file"])
@pytest.mark.parametrize("kind", HASHES)
async def test_an_imported_user_logs_in_and_its_hash_is_upgraded(
    kind: str, backend: str, tmp_path: Any
) -> None:
    service = make_service(store=store_on(backend, tmp_path))
    user = await service.import_user("alice", "Alice@Example.com", HASHES[kind])
    assert (await stored(service, user.id)).hashed_password == HASHES[kind]
    async with asgi_client(create_auth_app(service)) as client:
        for name in ("alice", "alice@example.com"):
            answer = await client.post("/login", json={"username": name, "password": PASSWORD})
            assert answer.status_code == 200, answer.text
        wrong = await client.post("/login", json={"username": "alice", "password": "other"})
        assert wrong.status_code == 401
    upgraded = (await stored(service, user.id)).hashed_password
    assert upgraded != HASHES[kind] and upgraded.startswith("$argon2id$v=19$m=1024,t=1,p=1$")


async def test_an_import_costs_what_a_registration_costs() -> None:
    service = make_service()
    await service.import_user("first", "first@example.com", BCRYPT)
    service.store.reset_counts()
    await service.import_user("alice", "alice@example.com", BCRYPT)
    # Three index creates (username, its skeleton, email) and the record's.
    assert dict(service.store.requests) == {"put": 4}


async def test_the_optional_fields_are_kept() -> None:
    service = S3AuthService(
        make_settings(), store=ObjectStore.from_url("memory://"), clock=lambda: 2_000_000_000.0
    )
    user = await service.import_user(
        "alice",
        "alice@example.com",
        ARGON2,
        full_name="Alice Liddell",
        is_active=False,
        scopes=["items:read", "admin"],
        email_verified=True,
        created_at=1_600_000_000,
    )
    record = await stored(service, user.id)
    assert (record.full_name, record.is_active, record.is_admin) == ("Alice Liddell", False, True)
    assert (record.scopes, record.email_verified) == (["items:read"], True)
    assert (record.created_at, record.updated_at) == (1_600_000_000, 2_000_000_000)
    assert record.username_skeleton is not None
    assert await service.authenticate_user("alice", PASSWORD) is None  # disabled
    plain = await service.import_user("bob", "bob@example.com", BCRYPT, is_admin=True)
    assert (plain.is_admin, plain.scopes, plain.created_at) == (True, [], 2_000_000_000)
    assert (plain.full_name, plain.is_active, plain.email_verified) == (None, True, False)


@pytest.mark.parametrize(
    ("username", "email", "error"),
    [
        ("ALICE", "other@example.com", UsernameTakenError),
        ("aIice", "other@example.com", UsernameTakenError),  # a capital i: alice's look
        ("other", "ALICE@example.COM", EmailTakenError),
    ],
)
async def test_a_taken_name_or_look_is_refused_and_nothing_is_left(
    username: str, email: str, error: type[Exception]
) -> None:
    service = make_service()
    alice = await service.create_user("alice", "alice@example.com", "Secret123!")
    before = {info.key async for info in service.store.list("")}
    with pytest.raises(error):
        await service.import_user(username, email, BCRYPT)
    after = {info.key async for info in service.store.list("")}
    assert {key for key in after - before if not key.startswith("index/")} == set()
    for key in after - before:  # an entry claimed before the refusal is let go
        entry = await service.store.get(key, IndexEntry)
        assert entry is not None and entry.value.released
    assert [user.id async for user in service.every_user()] == [alice.id]


@pytest.mark.parametrize("kind", REFUSED_HASHES)
async def test_a_hash_the_hasher_cannot_verify_is_refused_before_any_request(kind: str) -> None:
    service = make_service()
    service.store.reset_counts()
    with pytest.raises(S3ValidationError) as refused:
        await service.import_user("alice", "alice@example.com", REFUSED_HASHES[kind])
    assert "argon2id" in str(refused.value) and "$2b$" in str(refused.value)
    assert sum(service.store.requests.values()) == 0


@pytest.mark.parametrize("kind", [kind for kind in REFUSED_HASHES if "stray bits" in kind])
async def test_a_hash_with_stray_bits_would_lock_its_account_out(kind: str) -> None:
    """Why those are refused: stored, the password the hash was made from logs nobody in."""
    service = make_service()
    assert await service.passwords.verify(PASSWORD, REFUSED_HASHES[kind]) == (False, None)


async def test_names_are_checked_as_a_registration_checks_them_but_no_password_policy() -> None:
    service = make_service()
    with pytest.raises(InvalidUsernameError):
        await service.import_user("a b", "alice@example.com", BCRYPT)
    with pytest.raises(S3ValidationError, match="email"):
        await service.import_user("alice", "not-an-address", BCRYPT)
    with pytest.raises(S3ValidationError, match="created_at"):
        await service.import_user("alice", "alice@example.com", BCRYPT, created_at=-1)
    with pytest.raises(S3ValidationError, match="is_active"):
        await service.import_user("alice", "alice@example.com", BCRYPT, is_active="yes")  # type: ignore[arg-type]
    assert sum(service.store.requests.values()) == 0


class FailsRecordWrite(StoreWrapper):
    """The record's create fails: the names are claimed by then."""

    async def create(self, key: str, value: Any) -> str:
        if key.startswith("users/"):
            raise StoreUnavailableError("injected fault before the record")
        return await self.inner.create(key, value)


@pytest.mark.parametrize("fail_at", [1, 2, 3, 4, 5])
async def test_a_failure_midway_leaves_nothing_half_made(fail_at: int) -> None:
    """Whichever request fails (before or after it lands), no record is left without its
    names, and the import run again succeeds: at once, or for a name whose claim failed
    after it landed (it may be another's), once that reservation is abandoned."""
    reserved = make_settings().name_reservation_seconds
    for after in (False, True):
        faulty = FaultyStore(ObjectStore.from_url("memory://"))
        service = make_service(store=faulty)
        await service.check_store()
        faulty.calls, faulty.fail_at, faulty.after = 0, fail_at, after
        try:
            await service.import_user("alice", "alice@example.com", BCRYPT)
        except StoreUnavailableError:
            users = [key async for key in faulty.inner.list("users/")]
            assert users == []
        faulty.fail_at = None
        again = S3AuthService(
            make_settings(), store=faulty.inner, clock=lambda: time.time() + reserved + 1
        )
        try:
            user = await again.import_user("alice", "alice@example.com", BCRYPT)
        except UsernameTakenError:  # the failure came after the import had landed
            found = await again.get_user_by_username("alice")
            assert found is not None
            user = found
        assert await again.authenticate_user("alice@example.com", PASSWORD) is not None
        assert [u.id async for u in again.every_user()] == [user.id]


async def test_a_record_that_cannot_be_written_releases_its_names() -> None:
    inner = ObjectStore.from_url("memory://")
    service = make_service(store=FailsRecordWrite(inner))
    with pytest.raises(StoreUnavailableError):
        await service.import_user("alice", "alice@example.com", BCRYPT)
    # Let go as a failed registration lets its names go: retired, then deleted.
    assert [info.key async for info in inner.list("index/")] == []
    assert (await make_service(store=inner).import_user("alice", "alice@x.org", BCRYPT)).id
