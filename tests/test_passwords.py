"""Password hashing: argon2id off the event loop, bounded, upgraded on login."""

from __future__ import annotations

import threading

import anyio
import pytest
from conftest import make_service
from pwdlib.hashers.bcrypt import BcryptHasher

from s3auth_asgi.models import User
from s3auth_asgi.passwords import PasswordHasher
from s3auth_asgi.storage import keys

pytestmark = pytest.mark.anyio
PASSWORD = "SecurePass123!"


class RecordingHasher(PasswordHasher):
    """Records the thread and concurrency of every verification."""

    def __init__(self, **kwargs: int) -> None:
        super().__init__(**kwargs)
        self.threads: list[int] = []
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()

    def _safe_verify(self, password: str, hashed: str) -> tuple[bool, str | None]:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.threads.append(threading.get_ident())
        try:
            return super()._safe_verify(password, hashed)
        finally:
            with self._lock:
                self.running -= 1


async def test_default_parameters_are_owasp_argon2id() -> None:
    hashed = await PasswordHasher().hash(PASSWORD)
    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


async def test_verification_runs_off_the_loop_and_is_bounded() -> None:
    hasher = RecordingHasher(memory_kib=1024, time_cost=1, concurrency=2)
    hashed = await hasher.hash(PASSWORD)
    loop_thread = threading.get_ident()
    async with anyio.create_task_group() as tg:
        for _ in range(12):
            tg.start_soon(hasher.verify, PASSWORD, hashed)
    assert len(hasher.threads) == 12
    assert loop_thread not in hasher.threads
    assert hasher.peak == 2


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
