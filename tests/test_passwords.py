"""Password hashing: argon2id off the event loop, bounded, upgraded on login."""

from __future__ import annotations

import threading

import anyio
import pytest
from conftest import make_service, make_settings
from pwdlib.hashers.bcrypt import BcryptHasher
from support import RacedUserWrite
from test_app import assert_problem, bearer, client_for, login, mounted

from s3auth_asgi import ConflictError, S3AuthService
from s3auth_asgi.models import User
from s3auth_asgi.passwords import PasswordHasher
from s3auth_asgi.storage import ObjectStore, keys

pytestmark = pytest.mark.anyio
PASSWORD = "SecurePass123!"
NEW_PASSWORD = "Brand-new-pass-7"


class RecordingHasher(PasswordHasher):
    """Records the thread and concurrency of every verification.

    With `meet` set, every verification waits there until that many are in flight at
    once (a `threading.Barrier`, so the overlap is forced, not left to the scheduler);
    with `gate` set, it then waits until the test opens the gate.
    """

    def __init__(self, **kwargs: int) -> None:
        super().__init__(**kwargs)
        self.threads: list[int] = []
        self.running = 0
        self.peak = 0
        self.meet: threading.Barrier | None = None
        self.gate: threading.Event | None = None
        self._lock = threading.Lock()

    def _safe_verify(self, password: str, hashed: str) -> tuple[bool, str | None] | None:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.threads.append(threading.get_ident())
        try:
            if self.meet is not None:
                self.meet.wait()  # BrokenBarrierError after its timeout: fewer got in
            if self.gate is not None and not self.gate.wait(timeout=10):
                raise AssertionError("the gate was never opened")
            return super()._safe_verify(password, hashed)
        finally:
            with self._lock:
                self.running -= 1


async def test_default_parameters_are_owasp_argon2id() -> None:
    hashed = await PasswordHasher().hash(PASSWORD)
    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


@pytest.mark.parametrize("bound", [1, 2, 3])
async def test_verification_runs_off_the_loop_and_is_bounded(bound: int) -> None:
    """`hash_concurrency` verifications run at once, in worker threads, and never more."""
    hasher = RecordingHasher.from_settings(make_settings(hash_concurrency=bound))
    assert isinstance(hasher, RecordingHasher)
    hashed = await hasher.hash(PASSWORD)
    calls = 12  # a multiple of every bound: each group of `bound` meets in full
    # Every verification waits until `bound` of them are in flight together, so reaching
    # the bound is certain; a limiter that let fewer in breaks the barrier (after 5 s).
    hasher.meet = threading.Barrier(bound, timeout=5)
    hasher.gate = threading.Event()
    loop_thread = threading.get_ident()
    async with anyio.create_task_group() as tg:
        for _ in range(calls):
            tg.start_soon(hasher.verify, PASSWORD, hashed)
        try:
            # The first `bound` calls are held at the gate; the others must be queued.
            with anyio.move_on_after(5):
                while hasher.running < bound:
                    await anyio.sleep(0.001)
            await anyio.wait_all_tasks_blocked()
            await anyio.sleep(0.05)  # time for any call the limiter wrongly let through
            held = (hasher.running, len(hasher.threads))
        finally:
            hasher.gate.set()  # never leave worker threads waiting behind a failure
    assert held == (bound, bound)
    assert hasher.running == 0
    assert len(hasher.threads) == calls
    assert loop_thread not in hasher.threads
    assert hasher.peak == bound


async def test_unknown_user_costs_one_verification_like_a_wrong_password() -> None:
    service = make_service()
    hasher = RecordingHasher(memory_kib=1024, time_cost=1)
    service.passwords = hasher
    await service.create_user("known", "known@example.com", PASSWORD)
    assert await service.authenticate_user("nobody", PASSWORD) is None
    assert len(hasher.threads) == 1
    assert await service.authenticate_user("known", "Wrong-password-1") is None
    assert len(hasher.threads) == 2
    await service.update_user((await service.get_user_by_username("known")).id, is_active=False)  # type: ignore[union-attr]
    assert await service.authenticate_user("known", PASSWORD) is None
    assert len(hasher.threads) == 3


async def test_bcrypt_hashes_verify_and_are_upgraded_on_login() -> None:
    service = make_service()
    user = await service.create_user("legacy", "legacy@example.com", PASSWORD)
    legacy = BcryptHasher().hash(PASSWORD)
    found = await service.store.get(keys.user(user.id), User)
    assert found is not None
    found.value.hashed_password = legacy
    await service.store.replace(keys.user(user.id), found.value, found.etag)
    service.store.reset_counts()
    assert await service.authenticate_user("legacy", PASSWORD) is not None
    # The upgrade replaces the record the login has just read: no second GET.
    assert dict(service.store.requests) == {"get": 2, "put": 1}
    upgraded = await service.get_user_by_id(user.id)
    assert upgraded is not None and upgraded.hashed_password.startswith("$argon2id$")
    assert await service.authenticate_user("legacy", PASSWORD) is not None


async def test_a_bcrypt_hash_is_not_fooled_by_the_first_72_bytes() -> None:
    """bcrypt reads 72 bytes at most: a longer password sharing them must not verify (bcrypt
    4 truncated silently; the dependency asks for 5, which refuses)."""
    service = make_service()
    long_password = "Aa1" + "x" * 97  # 100 bytes
    user = await service.create_user("legacy", "legacy@example.com", long_password)
    found = await service.store.get(keys.user(user.id), User)
    assert found is not None
    found.value.hashed_password = BcryptHasher().hash(long_password[:72])
    await service.store.replace(keys.user(user.id), found.value, found.etag)
    assert await service.authenticate_user("legacy", long_password) is None
    assert await service.authenticate_user("legacy", long_password[:72]) is not None


async def test_changed_parameters_rehash_on_login() -> None:
    weak = make_service(argon2_memory_kib=1024, argon2_time_cost=1)
    await weak.create_user("rehash", "rehash@example.com", PASSWORD)
    strong = make_service(store=weak.store, argon2_memory_kib=2048, argon2_time_cost=2)
    assert await strong.authenticate_user("rehash", PASSWORD) is not None
    user = await strong.get_user_by_username("rehash")
    assert user is not None and "$m=2048,t=2," in user.hashed_password


async def test_damaged_hash_is_a_failed_login() -> None:
    service = make_service()
    user = await service.create_user("damaged", "damaged@example.com", PASSWORD)
    found = await service.store.get(keys.user(user.id), User)
    assert found is not None
    found.value.hashed_password = "$argon2id$garbage"
    await service.store.replace(keys.user(user.id), found.value, found.etag)
    assert await service.authenticate_user("damaged", PASSWORD) is None


async def test_an_upgrade_racing_a_password_change_never_brings_the_old_password_back() -> None:
    shared = ObjectStore.from_url("memory://")
    other = make_service(store=shared)
    user = await other.create_user("legacy", "legacy@example.com", PASSWORD)
    found = await shared.get(keys.user(user.id), User)
    assert found is not None
    found.value.hashed_password = BcryptHasher().hash(PASSWORD)
    await shared.replace(keys.user(user.id), found.value, found.etag)
    # The login verifies the old password and upgrades its hash; the owner's new password
    # lands between the login's read and its write.
    raced = RacedUserWrite(shared, lambda: other.set_password(user.id, NEW_PASSWORD))
    logged_in = await make_service(store=raced).authenticate_user("legacy", PASSWORD)
    assert logged_in is not None  # the password was right when it was checked
    assert raced.meanwhile is None  # the race happened
    assert await other.authenticate_user("legacy", NEW_PASSWORD) is not None
    assert await other.authenticate_user("legacy", PASSWORD) is None


async def owner_and_a_rival_change() -> tuple[S3AuthService, User, RacedUserWrite]:
    """A user, a second instance, and a store on which the second instance's password
    change lands between the first instance's read of the user and its write."""
    shared = ObjectStore.from_url("memory://")
    other = make_service(store=shared)
    user = await other.create_user("owner", "owner@example.com", PASSWORD)
    raced = RacedUserWrite(
        shared, lambda: other.change_password(user.id, PASSWORD, "Theirs-pass-77")
    )
    return other, user, raced


async def test_two_changes_from_one_current_password_do_not_both_land() -> None:
    # Both checked the same current password; the other's change lands first.
    other, user, raced = await owner_and_a_rival_change()
    with pytest.raises(ConflictError):
        await make_service(store=raced).change_password(user.id, PASSWORD, NEW_PASSWORD)
    assert raced.meanwhile is None
    assert await other.authenticate_user("owner", "Theirs-pass-77") is not None
    assert await other.authenticate_user("owner", NEW_PASSWORD) is None


async def test_a_new_email_checked_against_a_password_changed_meanwhile_is_refused() -> None:
    other, user, raced = await owner_and_a_rival_change()
    service = make_service(store=raced)
    async with client_for(mounted(service)) as client:
        tokens = await login(client, "owner", PASSWORD)
        moved = await client.patch(
            "/auth/me",
            json={"email": "elsewhere@example.com", "current_password": PASSWORD},
            headers=bearer(tokens),
        )
    assert_problem(moved, 409, "conflict")
    assert raced.meanwhile is None
    stored = await other.get_user_by_id(user.id)
    assert stored is not None and stored.email == "owner@example.com"
    # The address it reserved is free again.
    await other.create_user("someone", "elsewhere@example.com", PASSWORD)
