"""A failed login costs at least one hash at the current parameters, whatever the account's
stored hash: one made before the argon2 parameters were raised, one imported from bcrypt,
one made under dearer parameters, and one no hasher can read cost a wrong password at least
what an unknown name costs, so the time of the answer does not tell which names are
accounts. Asserted as the hashing work each login does, recorded under pwdlib's hashers
(each operation and the parameters it ran at), and once, coarsely, as time."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Iterator

import pytest
from conftest import FAST_HASHING, make_service
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

from s3auth_asgi import S3AuthService, WeakPasswordError
from s3auth_asgi.models import User
from s3auth_asgi.storage import keys

pytestmark = pytest.mark.anyio
PASSWORD = "SecurePass123!"
WRONG = "Wrong-pass-123"
OLD = "m=1024,t=1,p=1"  # conftest's FAST_HASHING: the parameters before they were raised
CURRENT = "m=2048,t=2,p=1"
DEARER = "m=4096,t=2,p=1"
RAISED = {"argon2_memory_kib": 2048, "argon2_time_cost": 2}
Work = list[tuple[str, str]]


def cost_of(hashed: str) -> str:
    """The parameters a hash was made with: argon2's, or bcrypt's rounds."""
    argon2 = re.search(r"\$(m=\d+,t=\d+,p=\d+)\$", hashed)
    if argon2 is not None:
        return argon2.group(1)
    bcrypt = re.match(r"\$2[abxy]\$(\d\d)\$", hashed)
    return f"bcrypt {bcrypt.group(1)}" if bcrypt is not None else "unreadable"


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> Iterator[Work]:
    """Every hash and verification pwdlib's hashers complete, as (operation, parameters),
    from whichever worker thread runs them. One that raises (a hash it cannot read) did no
    work and is not recorded."""
    done: Work = []
    argon2_verify, argon2_hash = Argon2Hasher.verify, Argon2Hasher.hash
    bcrypt_verify = BcryptHasher.verify

    def verify(self: Argon2Hasher, password: str | bytes, hash: str | bytes) -> bool:
        matches = argon2_verify(self, password, hash)
        done.append(("verify", cost_of(str(hash))))
        return matches

    def make(self: Argon2Hasher, password: str | bytes, *, salt: bytes | None = None) -> str:
        made = argon2_hash(self, password, salt=salt)
        done.append(("hash", cost_of(made)))
        return made

    def verify_bcrypt(self: BcryptHasher, password: str | bytes, hash: str | bytes) -> bool:
        matches = bcrypt_verify(self, password, hash)
        done.append(("verify", cost_of(str(hash))))
        return matches

    monkeypatch.setattr(Argon2Hasher, "verify", verify)
    monkeypatch.setattr(Argon2Hasher, "hash", make)
    monkeypatch.setattr(BcryptHasher, "verify", verify_bcrypt)
    yield done


async def store_hash(service: S3AuthService, username: str, hashed: str) -> None:
    user = await service.get_user_by_username(username)
    assert user is not None
    found = await service.store.get(keys.user(user.id), User)
    assert found is not None
    found.value.hashed_password = hashed
    await service.store.replace(keys.user(user.id), found.value, found.etag)


async def raised_service(stored: str | None = None) -> S3AuthService:
    """A service whose parameters were raised after "alice" registered under the old ones,
    whose stored hash is then `stored` if given."""
    before = make_service(**FAST_HASHING)
    await before.create_user("alice", "alice@example.com", PASSWORD)
    if stored is not None:
        await store_hash(before, "alice", stored)
    service = make_service(store=before.store, **RAISED)
    return service


STORED = {
    "old parameters": (None, [("verify", OLD)]),
    "bcrypt": (BcryptHasher(rounds=4).hash(PASSWORD), [("verify", "bcrypt 04")]),
    "dearer parameters": (
        Argon2Hasher(memory_cost=4096, time_cost=2, parallelism=1).hash(PASSWORD),
        [("verify", DEARER)],
    ),
    "damaged argon2": ("$argon2id$v=19$m=1024,t=1,p=1$not-base64!$x", []),
    "no known format": ("plain-text-password", []),
    "empty": ("", []),
}


@pytest.mark.parametrize("case", STORED)
async def test_a_wrong_password_costs_a_hash_at_the_current_parameters(
    case: str, work: Work
) -> None:
    stored, stored_work = STORED[case]
    service = await raised_service(stored)
    work.clear()
    assert await service.authenticate_user("alice", WRONG) is None
    assert work == [*stored_work, ("verify", CURRENT)]


async def test_an_unknown_name_and_a_current_hash_cost_one_verification(work: Work) -> None:
    service = await raised_service()
    current = Argon2Hasher(memory_cost=2048, time_cost=2, parallelism=1)
    await store_hash(service, "alice", current.hash(PASSWORD))
    work.clear()
    assert await service.authenticate_user("nobody", WRONG) is None
    assert await service.authenticate_user("alice", WRONG) is None
    assert work == [("verify", CURRENT), ("verify", CURRENT)]


async def test_a_right_password_on_an_old_hash_pays_only_the_upgrade(work: Work) -> None:
    service = await raised_service()
    work.clear()
    assert await service.authenticate_user("alice", PASSWORD) is not None
    assert work == [("verify", OLD), ("hash", CURRENT)]
    upgraded = await service.get_user_by_username("alice")
    assert upgraded is not None and cost_of(upgraded.hashed_password) == CURRENT
    work.clear()
    assert await service.authenticate_user("alice", WRONG) is None
    assert work == [("verify", CURRENT)]


@pytest.mark.parametrize("case", ["old parameters", "bcrypt", "dearer parameters"])
async def test_a_disabled_account_costs_the_same_for_a_right_and_a_wrong_password(
    case: str, work: Work
) -> None:
    """A right password on a hash to upgrade makes the new hash before the login is refused
    for the account's standing: a wrong one must cost as much, or the time tells a right
    password for a disabled account from a wrong one."""
    service = await raised_service(STORED[case][0])
    alice = await service.get_user_by_username("alice")
    assert alice is not None
    await service.update_user(alice.id, is_active=False)
    costs = {}
    for password in (PASSWORD, WRONG):
        work.clear()
        assert await service.authenticate_user("alice", password) is None
        costs[password] = [cost for _, cost in work]
    assert costs[PASSWORD] == costs[WRONG]
    assert costs[WRONG][-1] == CURRENT


async def test_an_old_hash_does_not_answer_faster_than_nobody() -> None:
    """The same in time, with a wide margin: before, a wrong password for an account not
    logged in to since the parameters were raised answered some 20 times faster than an
    unknown name."""
    before = make_service(**FAST_HASHING)
    await before.create_user("alice", "alice@example.com", PASSWORD)
    service = make_service(store=before.store, argon2_memory_kib=16384, argon2_time_cost=3)
    times: dict[str, list[float]] = {"alice": [], "nobody": []}
    for _ in range(5):  # interleaved, so that the machine's moods hit both alike
        for name, spent in times.items():
            started = time.perf_counter()
            assert await service.authenticate_user(name, WRONG) is None
            spent.append(time.perf_counter() - started)
    known, unknown = (statistics.median(times[name]) for name in ("alice", "nobody"))
    assert known > unknown / 2, {"alice": known, "nobody": unknown}


async def test_a_password_set_under_a_higher_maximum_still_logs_in() -> None:
    """S3AUTH_PASSWORD_MAX_LENGTH bounds the passwords that are set, as the policy's other
    rules do; lowering it must no more lock out an account whose password is longer than
    a stricter policy locks out a shorter one. Logins and the checks of a current password
    take any password a setting of it could have let be set, and refuse one longer still
    unhashed."""
    long_password = "Aa1" + "x" * 297
    before = make_service(password_max_length=512)
    await before.create_user("alice", "alice@example.com", long_password)
    service = make_service(store=before.store)  # the default maximum, 128
    assert service.password_policy.max_length == 128
    user = await service.authenticate_user("alice", long_password)
    assert user is not None
    await service.change_password(user.id, long_password, PASSWORD)
    await service.change_password(user.id, PASSWORD, PASSWORD + "!")
    with pytest.raises(WeakPasswordError, match="at most 128"):
        await service.change_password(user.id, PASSWORD + "!", long_password)
    assert await service.authenticate_user("alice", "Aa1" + "x" * 4094) is None
