"""Password hashing (the policy a new password meets is `password_policy`'s).

Hashing is argon2id through pwdlib, in a worker thread (never on the event loop). The default
cost is OWASP's minimum for argon2id (19 MiB, t=2, p=1): 19-40 ms per hash on one core of
a 2-core x86-64 VM, a seventh of pwdlib's `recommended()`. A lower one is taken, but the
settings that give it are warned of (`settings_checks.weak_argon2_cost`).
bcrypt hashes from older systems still verify and are upgraded on the next login, up to the
cost a stored hash may have (`hash_costs`: one above it is refused unverified). A failed
verification of a hash not at the current parameters (made before they were raised, by
bcrypt, or unreadable) verifies the dummy hash too, so that no failure answers sooner than an
unknown user's: it costs the stored hash on top, as a match costs the upgrade.

Admission: every hash and verification (registration, login, the dummy verification of an
unknown user, password change and reset) goes through one gate per hasher. At most
`hash_concurrency` run at once (a capacity limiter, so the event loop keeps its CPU share
for token-checked requests, which never hash); at most `hash_queue` more wait behind them.
A request arriving when both are full is refused at once with HashingBusyError (503,
Retry-After): it does not hash, and it does not wait. Without that bound a flood of logins
grows the queue without limit and a legitimate login waits for all of it (21 s behind 60
flooding addresses); with it, the longest wait is about (hash_queue / hash_concurrency + 1)
hash times (see docs/deployment.md).

A request that does other work before its hash (a login's store reads, a new password's
breached-password lookup) takes its place first (`place`) and holds it through that work,
so that a refusal costs nothing: a place looked at first and taken only by the hash would
let every request of a burst that arrived before the first of them reached a hash do that
work, and then be refused.

The bound caps the wait, not the odds: under a flood a freed place goes to whichever request
comes next. So `hash_device_queue` more places are kept for logins that show a valid device
cookie for the name typed (`app.devices`), which a flood without one cannot take: such a
login takes a shared place while one is free, else one of those. The owner of an account,
on a browser that logged in to it before, gets in during a flood of unknown names while
fewer than `hash_device_queue` such logins wait at once. One account's devices hold at most
a quarter of the kept places, and take one at most six times in a row, then once a
minute, so that neither a stolen cookie nor the holder of a few accounts logging in to them
over and over keeps the others' owners out (`kept_places`).

A place taken, the request waits for its turn at a running hash (`hash_turns`), and gives
the place back unhashed if its client goes away before the turn comes (ClientGoneError):
the auth app listens for that while it waits, and only then.

The count of admitted requests is kept on the event loop: the check and the increment have
no `await` between them, so no lock is needed. Like the limiter, a hasher belongs to one
event loop at a time. A place held by `place` is the task's (a context variable): the hashes
it runs take no other, one after another as a task runs them.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar, TypeVarTuple

import anyio
import anyio.to_thread
import argon2
from argon2.low_level import ARGON2_VERSION
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

from .errors import HashingBusyError
from .hash_costs import CostCeiling
from .hash_turns import HashTurns
from .kept_places import KeptPlaces
from .password_policy import PasswordPolicy as PasswordPolicy  # importable from here too
from .settings import S3AuthSettings
from .settings_checks import check_argon2
from .settings_ranges import check_argument
from .types import Clock

logger = logging.getLogger("s3auth_asgi")
T = TypeVar("T")
Args = TypeVarTuple("Args")


QUEUE_PER_HASH_SLOT = 16
"""The default `hash_queue` per running hash. The longest wait is about
(queue / concurrency + 1) × one hash: 17 × 19-40 ms = 0.3-0.7 s at the default cost, so a
legitimate login admitted behind a full queue still answers within a second; a burst of 16
logins per core (a deploy that logs every client in again) is absorbed without a refusal."""
DEVICE_QUEUE_PER_HASH_SLOT = 4
"""The default `hash_device_queue` per running hash: places kept for logins from a known
device. A flood fills the shared queue, so these are what such a login waits in: the
longest wait grows to about ((queue + device_queue) / concurrency + 1) × one hash, 0.4-0.8 s
at the default cost."""
BUSY_RETRY_AFTER_SECONDS = 1
"""Retry-After of a refusal: a full queue drains in well under a second at the default
cost, and a smaller whole number of seconds does not exist."""
_HELD: ContextVar[PasswordHasher | None] = ContextVar("s3auth_hash_place", default=None)
"""The hasher whose place the running task holds (`PasswordHasher.place`)."""


def usable_cpus() -> int:
    """The CPUs this process may run on (`hash_concurrency` 0): those its affinity allows,
    which `taskset` and a container's `--cpuset-cpus` narrow, rather than the host's
    (`os.cpu_count()`, the last resort where neither is known). A CPU quota (`--cpus`)
    narrows neither: set the concurrency then."""
    process_cpu_count = getattr(os, "process_cpu_count", None)  # Python 3.13
    if process_cpu_count is not None:
        return int(process_cpu_count() or 1)
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


class PasswordHasher:
    """argon2id hashing off the event loop, with a bound on running hashes and another on
    the requests waiting for them (see the module docstring). Each argument is held to the
    range of its setting (`argon2_memory_kib` ... `hash_device_queue`), as the settings are."""

    def __init__(
        self,
        *,
        memory_kib: int = 19456,
        time_cost: int = 2,
        parallelism: int = 1,
        concurrency: int = 0,
        queue: int = 0,
        device_queue: int = 0,
        clock: Clock = time.monotonic,
    ) -> None:
        for setting, name, value in (
            ("argon2_memory_kib", "memory_kib", memory_kib),
            ("argon2_time_cost", "time_cost", time_cost),
            ("argon2_parallelism", "parallelism", parallelism),
            ("hash_concurrency", "concurrency", concurrency),
            ("hash_queue", "queue", queue),
            ("hash_device_queue", "device_queue", device_queue),
        ):
            check_argument(setting, value, f"PasswordHasher {name}")
        check_argon2(
            memory_kib, parallelism, ("PasswordHasher memory_kib", "PasswordHasher parallelism")
        )
        self._current = Argon2Hasher(
            memory_cost=memory_kib, time_cost=time_cost, parallelism=parallelism
        )
        self._hash = PasswordHash((self._current, BcryptHasher()))
        self.ceiling = CostCeiling.of(memory_kib, time_cost, parallelism)
        """The most a stored hash may cost to verify: what an import is held to."""
        self.concurrency = concurrency or usable_cpus()
        self.queue = queue or QUEUE_PER_HASH_SLOT * self.concurrency
        self.device_queue = device_queue or DEVICE_QUEUE_PER_HASH_SLOT * self.concurrency
        self.admitted = 0
        """Requests running or waiting now in the shared places: at most concurrency + queue."""
        self.kept = KeptPlaces(self.device_queue, clock=clock)
        """The places kept for known devices, and who may take them."""
        self._turns = HashTurns(self.concurrency)
        # The threads of the hashes whose turn it is: never waited for, and kept out of
        # anyio's default limiter, which the process's other thread work shares.
        self._threads = anyio.CapacityLimiter(self.concurrency)
        self._parameters = (memory_kib, time_cost, parallelism)
        self._dummy = self.unmatched()

    @classmethod
    def from_settings(
        cls, settings: S3AuthSettings, *, clock: Clock = time.monotonic
    ) -> PasswordHasher:
        """`clock` times how often an account takes a kept place: one no step of the
        host's clock moves."""
        return cls(
            memory_kib=settings.argon2_memory_kib,
            time_cost=settings.argon2_time_cost,
            parallelism=settings.argon2_parallelism,
            concurrency=settings.hash_concurrency,
            queue=settings.hash_queue,
            device_queue=settings.hash_device_queue,
            clock=clock,
        )

    def unmatched(self) -> str:
        """A new hash at the current parameters that no password matches, made at no
        cost (`_unmatched_hash`): the password of an account made without one, which its
        owner chooses through a reset link. A login of it costs what any other's does."""
        return _unmatched_hash(*self._parameters)

    @property
    def admitted_by_device(self) -> int:
        """Requests waiting (or running) now in the places kept for known devices."""
        return self.kept.taken

    @property
    def busy(self) -> bool:
        """Whether the shared places are full, so that a place or a hash asked for now
        without a known device would be refused."""
        return self.admitted >= self.concurrency + self.queue

    @contextmanager
    def place(self, *, device_owner: str | None = None) -> Iterator[None]:
        """Hold a place in the queue, as a hash would take it, for the hashes this task runs
        inside: taken now, or HashingBusyError now; given back on leaving, also when the
        task is cancelled. Inside a place of the same hasher, the place already held."""
        if _HELD.get() is self:
            yield
            return
        kept_for = self._admit(device_owner)
        token = _HELD.set(self)
        try:
            yield
        finally:
            # A cancelled (or given up) waiter leaves at once; a cancelled hash is waited
            # for by run_sync, so the count never drops below the threads really hashing.
            _HELD.reset(token)
            self._leave(kept_for)

    async def hash(self, password: str) -> str:
        return await self._run(self._hash.hash, password)

    async def verify(
        self, password: str, hashed: str | None, *, device_owner: str | None = None
    ) -> tuple[bool, str | None]:
        """(matches, new hash when the stored one should be upgraded).

        With no stored hash (unknown user) a dummy hash is verified, so an unknown user
        costs the same time as a wrong password, and takes the same place in the queue. A
        wrong password for a hash not at the current parameters verifies the dummy as well,
        in the same place.
        HashingBusyError when the queue is full (for a `device_owner`, the places kept for
        known devices too, or its account's share or budget of them).
        """
        if hashed is None:
            return await self._run(self._verify_unknown, password, device_owner=device_owner)
        return await self._run(self._verify_stored, password, hashed, device_owner=device_owner)

    async def _run(
        self,
        work: Callable[[str, *Args], T],
        password: str,
        *args: *Args,
        device_owner: str | None = None,
    ) -> T:
        # In the place the task holds already, or one taken for this hash alone.
        with self.place(device_owner=device_owner):
            await self._turns.take()
            try:
                return await anyio.to_thread.run_sync(work, password, *args, limiter=self._threads)
            finally:
                self._turns.release()

    def _admit(self, device_owner: str | None) -> str | None:
        """Count one more request in (None) or the account whose kept place it takes;
        HashingBusyError when there is no room for it. No await between the check and the
        count: admission is atomic on the loop."""
        if not self.busy:
            self.admitted += 1
            return None
        if device_owner is not None and self.kept.take(device_owner):
            return device_owner
        raise HashingBusyError(retry_after=BUSY_RETRY_AFTER_SECONDS)

    def _leave(self, kept_for: str | None) -> None:
        if kept_for is None:
            self.admitted -= 1
        else:
            self.kept.leave(kept_for)

    def _verify_unknown(self, password: str) -> tuple[bool, str | None]:
        self._safe_verify(password, self._dummy)
        return False, None

    def _verify_stored(self, password: str, hashed: str) -> tuple[bool, str | None]:
        excess = self.ceiling.bcrypt_excess(hashed)
        if excess is not None:
            logger.warning(
                "a login was refused unverified: the account's stored password hash costs "
                "more to verify than this service allows (%s), which an import by an earlier "
                "version took; `s3auth doctor` names such accounts, and a password reset "
                "(s3auth user set-password) lets them log in",
                excess,
            )
        checked = None if excess is not None else self._safe_verify(password, hashed)
        if checked is not None and (checked[0] or self._is_current(hashed)):
            return checked
        # A hash made under older, cheaper parameters, by bcrypt, or that cannot be read
        # would answer a wrong password sooner than the dummy answers an unknown name, which
        # would tell the names of accounts; and a match on any hash not current pays for the
        # upgraded hash, so a failure that did not pay as much would tell a disabled
        # account's right password from a wrong one. Hence a verification at the current
        # parameters, in the same thread and place, which the bounds on hashing hold.
        self._safe_verify(password, self._dummy)
        return False, None

    def _is_current(self, hashed: str) -> bool:
        """Whether `hashed` is argon2 at this hasher's parameters, so that verifying it costs
        what verifying the dummy does."""
        try:
            return self._current.identify(hashed) and not self._current.check_needs_rehash(hashed)
        except Exception:
            return False

    def _safe_verify(self, password: str, hashed: str) -> tuple[bool, str | None] | None:
        """(matches, new hash when the stored one should be upgraded); None when `hashed` is
        in no format known or damaged, which verifies nothing (and fails the login)."""
        try:
            return self._hash.verify_and_update(password, hashed)
        except Exception:
            return None


def _unmatched_hash(memory_kib: int, time_cost: int, parallelism: int) -> str:
    """An argon2id hash at these parameters that no password matches: a random salt and a
    random digest of the lengths a hash made now has. Verifying it costs what verifying any
    such hash costs, and making it costs nothing: a dummy hashed on first need would make
    the first unknown name a process is asked about cost two hashes, a known one's one."""

    def encoded(size: int) -> str:
        return base64.b64encode(secrets.token_bytes(size)).rstrip(b"=").decode()

    salt, digest = encoded(argon2.DEFAULT_RANDOM_SALT_LENGTH), encoded(argon2.DEFAULT_HASH_LENGTH)
    return (
        f"$argon2id$v={ARGON2_VERSION}$m={memory_kib},t={time_cost},p={parallelism}${salt}${digest}"
    )
