"""An imported hash is verified at its own cost on every login attempt until the first login
replaces it, a wrong password's (anyone's) included: one above the ceiling the hasher's own
parameters give (`hash_costs`) is refused at import, never stored, and a bcrypt one stored
by an earlier version is refused at login as a wrong password is, unverified. The hashes
refused are made by editing the cost of a cheap one: none of them is ever verified."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from conftest import DEFAULT_HASHING, SECRET, make_service
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher
from test_cli import Run
from test_login_old_hashes import cost_of, store_hash
from test_user_import import ARGON2, BCRYPT, PASSWORD

from s3auth_asgi import S3ValidationError
from s3auth_asgi.storage import ObjectStore

pytestmark = pytest.mark.anyio
CHEAP = "m=2048,t=1,p=1"
assert CHEAP in ARGON2 and BCRYPT.startswith("$2b$04$")


def bcrypt_at(cost: int, prefix: str = "2b") -> str:
    return f"${prefix}${cost:02d}$" + BCRYPT[7:]


def argon2_at(memory_kib: int, time_cost: int, parallelism: int) -> str:
    return ARGON2.replace(CHEAP, f"m={memory_kib},t={time_cost},p={parallelism}")


# conftest's FAST_HASHING (m=1024, t=1, p=1): at most 8192 KiB, 8192 KiB × passes, 8 lanes.
REFUSED = {
    "bcrypt 15": (bcrypt_at(15), "bcrypt cost 15 is above 14"),
    "bcrypt 2y 20": (bcrypt_at(20, "2y"), "bcrypt cost 20 is above 14"),
    "bcrypt 31": (bcrypt_at(31), "bcrypt cost 31 is above 14"),
    "argon2 memory": (argon2_at(8193, 1, 1), "memory m=8193 KiB is above 8192 KiB"),
    "argon2 work": (argon2_at(4096, 3, 1), "m × t = 12288 KiB is above 8192 KiB"),
    "argon2 lanes": (argon2_at(2048, 1, 9), "lanes p=9 are above 8"),
    "argon2 huge": (argon2_at(4_000_000_000, 4_000_000_000, 16_000_000), "above"),
}
TAKEN = {
    "bcrypt 14": bcrypt_at(14),
    "argon2 memory and lanes at the ceiling": argon2_at(8192, 1, 8),
    "argon2 work at the ceiling": argon2_at(4096, 2, 1),
    "argon2 passes for less memory": argon2_at(8, 1024, 1),
}


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The cost of every hash verified, none of them computed: a costly one would take
    minutes."""
    done: list[str] = []

    def verify(self: object, password: str | bytes, hash: str | bytes) -> bool:
        done.append(cost_of(str(hash)))
        return False

    monkeypatch.setattr(Argon2Hasher, "verify", verify)
    monkeypatch.setattr(BcryptHasher, "verify", verify)
    yield done


@pytest.mark.parametrize("kind", REFUSED)
async def test_a_hash_above_the_ceiling_is_refused_before_any_request(
    kind: str, work: list[str]
) -> None:
    hashed, said = REFUSED[kind]
    service = make_service()
    service.store.reset_counts()
    with pytest.raises(S3ValidationError) as refused:
        await service.import_user("alice", "alice@example.com", hashed)
    assert refused.value.code == "hash_too_costly", refused.value
    assert refused.value.status == 422
    assert said in str(refused.value.detail)
    assert sum(service.store.requests.values()) == 0 and work == []
    assert [user async for user in service.every_user()] == []


@pytest.mark.parametrize("kind", TAKEN)
async def test_a_hash_at_the_ceiling_is_taken(kind: str) -> None:
    service = make_service()
    user = await service.import_user("alice", "alice@example.com", TAKEN[kind])
    assert user.hashed_password == TAKEN[kind]


async def test_the_ceiling_follows_the_configured_cost() -> None:
    """At the defaults (m=19456, t=2, p=1), the hashes of the common libraries' own defaults
    are taken (Django's and passlib's m=102400,t=2,p=8; pwdlib's and argon2-cffi's
    m=65536,t=3,p=4); RFC 9106's first recommendation, 2 GiB a hash, is not."""
    service = make_service(**DEFAULT_HASHING)
    for number, parameters in enumerate([(102400, 2, 8), (65536, 3, 4), (155648, 2, 1)]):
        await service.import_user(f"user{number}", f"u{number}@example.com", argon2_at(*parameters))
    with pytest.raises(S3ValidationError, match=r"m=2097152 KiB is above 155648 KiB"):
        await service.import_user("big", "big@example.com", argon2_at(2097152, 1, 4))
    with pytest.raises(S3ValidationError, match=r"m × t = 327680 KiB is above 311296 KiB"):
        await service.import_user("long", "long@example.com", argon2_at(65536, 5, 1))


async def test_a_costly_bcrypt_hash_an_earlier_version_stored_is_refused_unverified(
    work: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Refused as a wrong password is, at the cost of an unknown name (the dummy at the
    current parameters), and told in the log; a cheaper hash still verifies."""
    service = make_service()
    alice = await service.import_user("alice", "alice@example.com", BCRYPT)
    await store_hash(service, "alice", bcrypt_at(20))
    with caplog.at_level(logging.WARNING, logger="s3auth_asgi"):
        assert await service.authenticate_user("alice", PASSWORD) is None
    assert work == ["m=1024,t=1,p=1"]
    [line] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "bcrypt cost 20 is above 14" in line and "s3auth doctor" in line
    assert PASSWORD not in line and bcrypt_at(20) not in line
    await store_hash(service, "alice", bcrypt_at(14))
    work.clear()
    assert await service.authenticate_user("alice", PASSWORD) is None
    assert work == ["bcrypt 14", "m=1024,t=1,p=1"]
    assert (await service.get_user_by_id(alice.id)) is not None


def test_doctor_names_the_accounts_whose_stored_hash_is_above_the_ceiling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At no request more than a check of the records makes: the hash is in the record."""
    url = f"file://{tmp_path / 'store'}"
    monkeypatch.setenv("S3AUTH_STORE_URL", url)
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    store = ObjectStore.from_url(url)
    service = make_service(store=store)  # doctor runs at the defaults: a wider ceiling

    async def imported() -> list[str]:
        made = []
        for name, hashed in [
            ("alice", bcrypt_at(20)),
            ("bob", argon2_at(2097152, 1, 4)),
            ("carol", bcrypt_at(14)),
        ]:
            user = await service.import_user(name, f"{name}@example.com", BCRYPT)
            await store_hash(service, name, hashed)
            made.append(user.id)
        return made

    alice, bob, _ = anyio.run(imported)
    store.reset_counts()
    checked = Run("doctor", open_store=lambda _: store)
    assert checked.code == 1, checked
    costly = "'s password hash costs more to verify than this service allows"
    lines = checked.out.splitlines()
    assert sorted(lines[:2]) == sorted(
        [
            f"[FAIL] costly_hash users/{alice}.json: user {alice}{costly} (its bcrypt cost 20 "
            "is above 14, the most verified): a login to it is refused unverified; `s3auth "
            f"user set-password {alice}` replaces it; no repair is safe",
            f"[FAIL] costly_hash users/{bob}.json: user {bob}{costly} (its argon2id memory "
            "m=2097152 KiB is above 155648 KiB, 8 times the configured "
            "S3AUTH_ARGON2_MEMORY_KIB): every attempt to log in to it, a wrong one's too, "
            "verifies it at that cost until a login replaces it; `s3auth user set-password "
            f"{bob}` replaces it; no repair is safe",
        ]
    )
    # As many requests as before any hash was checked: the hash is in the record read
    # (and the end of every session's GET, as in any run).
    assert lines[2:] == [
        "checked 3 user(s) and 9 index entries: 2 problem(s) "
        "(4 list page(s), 22 read(s), 0 write(s))"
    ]
