"""Password policy and hashing.

Hashing is argon2id through pwdlib, in a worker thread (never on the event loop) behind a
capacity limiter, so a burst of logins queues instead of starving the server. The default
cost is OWASP's minimum for argon2id (19 MiB, t=2, p=1): about 19 ms per hash on one core
of a 2-core x86-64 VM, a seventh of pwdlib's `recommended()`.
bcrypt hashes from older systems still verify and are upgraded on the next login.
"""

from __future__ import annotations

import os
import secrets
import unicodedata
from functools import cache
from importlib import resources

import anyio
import anyio.to_thread
import msgspec
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

from .errors import WeakPasswordError
from .identifiers import fold
from .settings import S3AuthSettings


class PasswordPolicy(msgspec.Struct, kw_only=True, frozen=True):
    """What a new password must satisfy. Any Unicode letter counts as a letter."""

    min_length: int = 8
    max_length: int = 128
    require_upper: bool = True
    require_lower: bool = True
    require_digit: bool = True
    refuse_common: bool = False
    refuse_identifiers: bool = False

    @classmethod
    def default(cls, max_length: int = 128) -> PasswordPolicy:
        """8+ characters with an upper-case and a lower-case letter and a digit: the rules
        s3verless applications already enforce, so moving to this package rejects no password
        they accepted."""
        return cls(max_length=max_length)

    @classmethod
    def nist(cls, max_length: int = 128) -> PasswordPolicy:
        """NIST SP 800-63B style: 15+ characters, no composition rules, no common
        passwords, not the username or email."""
        return cls(
            min_length=15,
            max_length=max_length,
            require_upper=False,
            require_lower=False,
            require_digit=False,
            refuse_common=True,
            refuse_identifiers=True,
        )

    @classmethod
    def from_settings(cls, settings: S3AuthSettings) -> PasswordPolicy:
        preset = cls.nist if settings.password_policy == "nist" else cls.default
        return preset(settings.password_max_length)

    def check(self, password: object, *identifiers: str) -> str:
        """The password if it satisfies the policy; WeakPasswordError saying why if not.

        Nothing is truncated: a password over max_length is refused, not cut.
        """
        if not isinstance(password, str):
            raise WeakPasswordError("The password must be a string")
        length = len(password)
        if length < self.min_length:
            raise WeakPasswordError(f"The password must be at least {self.min_length} characters")
        if length > self.max_length:
            raise WeakPasswordError(f"The password must be at most {self.max_length} characters")
        if any(unicodedata.category(c) in ("Cc", "Cs") for c in password):
            raise WeakPasswordError("The password must not contain control characters")
        if self.require_upper and not any(c.isupper() for c in password):
            raise WeakPasswordError("The password needs an upper-case letter")
        if self.require_lower and not any(c.islower() for c in password):
            raise WeakPasswordError("The password needs a lower-case letter")
        if self.require_digit and not any(c.isdigit() for c in password):
            raise WeakPasswordError("The password needs a digit")
        folded = fold(password)
        if self.refuse_common and folded in common_passwords():
            raise WeakPasswordError("The password is too common")
        if self.refuse_identifiers:
            for identifier in identifiers:
                if identifier and (
                    folded == fold(identifier) or folded == fold(identifier.split("@")[0])
                ):
                    raise WeakPasswordError("The password must not be the username or email")
        return password


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files(__package__).joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(
        fold(line.strip()) for line in text.splitlines() if line.strip() and line[0] != "#"
    )


class PasswordHasher:
    """argon2id hashing off the event loop, with a bound on concurrent hashes."""

    def __init__(
        self,
        *,
        memory_kib: int = 19456,
        time_cost: int = 2,
        parallelism: int = 1,
        concurrency: int = 0,
    ) -> None:
        self._hash = PasswordHash(
            (
                Argon2Hasher(memory_cost=memory_kib, time_cost=time_cost, parallelism=parallelism),
                BcryptHasher(),
            )
        )
        self._limiter = anyio.CapacityLimiter(concurrency or os.cpu_count() or 1)
        self._dummy: str | None = None

    @classmethod
    def from_settings(cls, settings: S3AuthSettings) -> PasswordHasher:
        return cls(
            memory_kib=settings.argon2_memory_kib,
            time_cost=settings.argon2_time_cost,
            parallelism=settings.argon2_parallelism,
            concurrency=settings.hash_concurrency,
        )

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hash.hash, password, limiter=self._limiter)

    async def verify(self, password: str, hashed: str | None) -> tuple[bool, str | None]:
        """(matches, new hash when the stored one should be upgraded).

        With no stored hash (unknown user) a dummy hash is verified, so an unknown user
        costs the same time as a wrong password.
        """
        if hashed is None:
            if self._dummy is None:
                self._dummy = await self.hash(secrets.token_urlsafe(24))
            await anyio.to_thread.run_sync(
                self._safe_verify, password, self._dummy, limiter=self._limiter
            )
            return False, None
        return await anyio.to_thread.run_sync(
            self._safe_verify, password, hashed, limiter=self._limiter
        )

    def _safe_verify(self, password: str, hashed: str) -> tuple[bool, str | None]:
        try:
            return self._hash.verify_and_update(password, hashed)
        except Exception:
            # An unknown or damaged hash format: a failed login, not a crash.
            return False, None
