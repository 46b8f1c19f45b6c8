"""Where limiter state lives. A store runs the algorithm against its own copy of the state,
atomically per key, so every store gives the same answers; only sharing and cost differ.

- MemoryRateLimitStore (`memory`): one process, no I/O, a bounded number of keys.
- ObjectStoreRateLimitStore: shared by every process on the bucket, one GET and one
  conditional PUT per admitted request; for low-rate, sensitive limits (login, register).
  Its `acquire_evenly` costs that whatever it decides (`EvenRateLimitStore`).

Both also keep failure budgets (`budget`): `peek` reads (the object store: one GET) and
`record` counts a failure (one conditional PUT on the version the peek read).

A Redis store would implement `acquire` as one Lua script running `gcra` server-side.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Mapping
from typing import Protocol, TypeVar, runtime_checkable

import msgspec

from ..errors import ConfigurationError
from ..revocation_settings import DEFAULT_SKEW_SECONDS
from ..settings_ranges import check_argument
from ..storage import CorruptObjectError, Store, StoreConflict, keys
from ..storage.access import back_off
from ..types import Clock
from . import sweep
from .budget import AsideTimes, FailureBudget, Reading, charge_budget, hold_budget, peek_budget
from .gcra import Decision, gcra
from .plausible import Held, hold
from .policy import RateLimit, check_cost, check_limit_name
from .refusal_memo import RefusalMemo

WRITE_BYTES = 8
S = TypeVar("S")


@runtime_checkable
class RateLimitStore(Protocol):
    """What a `RateLimiter` keeps its state in (its `store`): `MemoryRateLimitStore` or
    `ObjectStoreRateLimitStore`, which keep failure budgets too (see the module)."""

    async def acquire(self, limit_name: str, key: str, limit: RateLimit, cost: int) -> Decision:
        """Check a request of `cost` from `key` against `limit`, and count it if admitted."""
        ...


@runtime_checkable
class EvenRateLimitStore(Protocol):
    async def acquire_evenly(
        self, limit_name: str, key: str, limit: RateLimit, cost: int
    ) -> Decision:
        """`acquire`, at the same store requests whether it admits, refuses or (for a cost
        of 0) counts nothing: for limits whose cost must not tell what they decided."""
        ...


def _new_write() -> str:
    return secrets.token_hex(WRITE_BYTES)


class BucketState(msgspec.Struct, frozen=True, omit_defaults=True):
    """The stored state of one key: its theoretical arrival time, Unix seconds."""

    tat: float
    write: str = msgspec.field(default_factory=_new_write)
    """Random, made with each state, so that no two writes are alike: two processes that
    read the same state compute the same next one, and a write resent after its answer
    was lost must not take the other's for its own (`storage.resends`)."""
    ahead: float | list[float] | None = None
    """Times the writer found too far ahead of its clock to count on, kept for the hosts
    whose clocks are that far ahead (`plausible`); one alone in states written before
    there could be several."""


class BudgetState(msgspec.Struct, frozen=True, omit_defaults=True):
    """The stored state of one key of a failure budget: a TAT per limit, Unix seconds."""

    tats: dict[str, float]
    write: str = msgspec.field(default_factory=_new_write)
    """As `BucketState.write`."""
    ahead: dict[str, float | list[float]] = msgspec.field(default_factory=dict)
    """As `BucketState.ahead`, per limit."""


class ObjectStoreRateLimitStore:
    """State shared through the object store: `ratelimit/{limit}/{digest of key}`.

    Read, decide, and write back with If-Match (If-None-Match for a new key); a process that
    loses the race reads again, so concurrent processes together admit no more than the
    limit. A refused request writes nothing: 1 GET. An admitted one: 1 GET + 1 PUT.
    `acquire_evenly` costs 1 GET + 1 PUT whatever it decides.

    A refusal is remembered with the state it was decided on, and the same key is refused
    from memory, with no request, until that state would admit. This is exact, not a guess:
    a stored state only ever moves later (an admission writes a later TAT, a refusal writes
    nothing or the TAT it found, and a clean-up deletes only state that admitted when it
    was listed or read: see `sweep` for the one exception), so whatever other processes did
    since, the store would refuse too. (A debt written back in place of a time too far
    ahead, `plausible`, is as late as any time a clock within the allowance could have
    written, so it refuses at most that allowance less than the memory does.)

    The clock is the wall clock: the state is compared against by other processes and hosts
    (keep their clocks in sync; skew within the allowance `skew_seconds` shifts the limit
    by as much). A time further ahead than a clock within the allowance could have written
    counts as a full debt as of this clock, written back on the version read (a refusal
    then costs a GET and a PUT, once): see `plausible`.
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock = time.time,
        max_attempts: int = 8,
        skew_seconds: int = DEFAULT_SKEW_SECONDS,
    ) -> None:
        if max_attempts < 1:
            raise ConfigurationError("max_attempts must be at least 1")
        check_argument(
            "revocation_skew_seconds", skew_seconds, "ObjectStoreRateLimitStore skew_seconds"
        )
        self.store = store
        self._clock = clock
        self._skew = skew_seconds
        self._max_attempts = max_attempts
        self._refused = RefusalMemo()

    async def acquire(self, limit_name: str, key: str, limit: RateLimit, cost: int) -> Decision:
        # The name is a segment of the object key: one with a "/" (say) would give a key of
        # no state's shape, which the sweep leaves for good. A budget's name is checked
        # when the budget is made.
        check_limit_name(limit_name, source="ObjectStoreRateLimitStore")
        check_cost(limit, cost)
        object_key = keys.ratelimit(limit_name, key)
        remembered = self._refused.get(object_key)
        if remembered is not None:
            # A time too far ahead of the clock (it was stepped back since) is read again,
            # to be counted as the store's readers count it (`plausible`).
            now = self._clock()
            held = hold(remembered[0], None, now, limit, self._skew)
            decision = gcra(held.tat, now, limit, cost)[1]
            if not held.debt and not decision.allowed:
                return decision
            self._refused.forget(object_key)
        return await self._acquire(object_key, limit, cost, evenly=False)

    async def acquire_evenly(
        self, limit_name: str, key: str, limit: RateLimit, cost: int
    ) -> Decision:
        """`acquire` at 1 GET + 1 conditional PUT whatever it decides (each lost race a GET
        and a PUT more, as for an admission): a refusal, or a check of cost 0, writes back
        the state it read (for a key never seen, or whose TAT has passed, a full allowance),
        counting nothing; and no refusal is answered from memory. For limits whose refusal
        must not be told from an admission by its cost: those of mails asked for by name,
        where it would tell whoever asks under two names whether they are one account's.
        What it writes moves no TAT earlier, so the refusals other processes remember stay
        right, and is within one window of its own write, as the sweep assumes."""
        check_limit_name(limit_name, source="ObjectStoreRateLimitStore")
        check_cost(limit, cost)
        return await self._acquire(keys.ratelimit(limit_name, key), limit, cost, evenly=True)

    async def _acquire(
        self, object_key: str, limit: RateLimit, cost: int, *, evenly: bool
    ) -> Decision:
        for attempt in range(self._max_attempts):
            state, version = await self._read(object_key, BucketState)
            now = self._clock()
            if state is None:
                held = Held(None, (), False)
            else:
                held = hold(state.tat, state.ahead, now, limit, self._skew)
            # Refused or of cost 0, `new_tat` is the state as it was: the TAT counted on (a
            # refusal finds it ahead of now), or now for none or a passed one, which answer
            # alike. A full debt put in place of times too far ahead is written all the same.
            new_tat, decision = gcra(held.tat, now, limit, cost)
            if not evenly and not held.debt:
                if not decision.allowed:
                    self._refused.remember(object_key, (held.tat, None))
                    return decision
                if cost == 0:
                    return decision
            written = BucketState(new_tat, ahead=list(held.aside) or None)
            try:
                if version is None:
                    await self.store.create(object_key, written)
                else:
                    await self.store.replace(object_key, written, version)
            except StoreConflict:
                await back_off(attempt)
                continue
            if not evenly and not decision.allowed:
                self._refused.remember(object_key, (new_tat, None))
            return decision
        # Still losing after every attempt: this key is under a burst from many processes at
        # once. Refusing is the safe answer for the sensitive limits this store is for.
        interval = limit.emission_interval
        return Decision(False, 0, interval, interval)

    async def peek(self, budget: FailureBudget, key: str) -> Reading:
        """One GET (none while a refusal is remembered); the reading keeps the ETag for
        `record`'s conditional write."""
        object_key = keys.ratelimit_budget(budget.name, key)
        remembered = self._refused.get(object_key)
        if remembered is not None:
            now = self._clock()
            tats, _, debt = hold_budget(remembered[1] or {}, {}, now, budget, self._skew)
            decisions = peek_budget(tats, now, budget)
            if not debt and not all(decision.allowed for decision in decisions):
                return Reading(budget, key, decisions, tats)
            self._refused.forget(object_key)
        reading = await self._peek(budget, key)
        if not reading.allowed:
            self._refused.remember(object_key, (None, reading.tats))
        return reading

    async def _peek(self, budget: FailureBudget, key: str) -> Reading:
        """Read the budget and decide; a full debt put in place of times too far ahead is
        written back first, on the version read (`plausible`)."""
        object_key = keys.ratelimit_budget(budget.name, key)
        for attempt in range(self._max_attempts):
            stored, ahead, version = await self._read_budget(budget, key)
            now = self._clock()
            tats, aside, debt = hold_budget(stored, ahead, now, budget, self._skew)
            if debt:
                try:
                    if version is None:
                        version = await self.store.create(
                            object_key, BudgetState(tats, ahead=aside)
                        )
                    else:
                        version = await self.store.replace(
                            object_key, BudgetState(tats, ahead=aside), version
                        )
                except StoreConflict:
                    await back_off(attempt)
                    continue
            return Reading(budget, key, peek_budget(tats, now, budget), tats, version, aside)
        return self._stormed(budget, key, tats, version)

    async def record(self, reading: Reading, cost: int = 1) -> Reading:
        """One conditional PUT on the version the peek read; each lost race costs a GET
        and a PUT more. A budget spent meanwhile comes back refused, writing nothing."""
        budget, key = reading.budget, reading.key
        object_key = keys.ratelimit_budget(budget.name, key)
        tats, ahead, version = reading.tats, reading.ahead, reading.version
        for attempt in range(self._max_attempts):
            now = self._clock()
            kept, decisions = charge_budget(tats, now, budget, cost)
            if kept is None:
                self._refused.remember(object_key, (None, tats))
                return Reading(budget, key, decisions, tats, version, ahead)
            written = BudgetState(kept, ahead=dict(ahead))
            try:
                if version is None:
                    etag = await self.store.create(object_key, written)
                else:
                    etag = await self.store.replace(object_key, written, version)
            except StoreConflict:
                await back_off(attempt)
                stored, stored_ahead, version = await self._read_budget(budget, key)
                # A full debt this puts in place is left for the next peek to write back: it
                # refuses the failure, which then writes nothing.
                tats, ahead, _ = hold_budget(stored, stored_ahead, now, budget, self._skew)
                continue
            return Reading(budget, key, decisions, kept, etag, ahead)
        return self._stormed(budget, key, tats, version)

    @staticmethod
    def _stormed(
        budget: FailureBudget, key: str, tats: Mapping[str, float], version: str | None
    ) -> Reading:
        """As in `acquire`: a key others keep winning is under a storm; count nothing,
        refuse, and suggest a retry after the shortest interval (the storm may well be
        over)."""
        wait = min(limit.emission_interval for limit in budget.limits.values())
        refused = tuple(Decision(False, 0, wait, wait) for _ in budget.limits)
        return Reading(budget, key, refused, tats, version)

    async def _read_budget(
        self, budget: FailureBudget, key: str
    ) -> tuple[dict[str, float], AsideTimes, str | None]:
        state, version = await self._read(keys.ratelimit_budget(budget.name, key), BudgetState)
        if state is None:
            return {}, {}, version
        return state.tats, state.ahead, version

    async def _read(self, object_key: str, type_: type[S]) -> tuple[S | None, str | None]:
        """The state at `object_key` and its version, (None, None) when there is none. One
        that cannot be read (torn by a crash, written by another tool) is taken as none, at
        its version, so that the next write replaces it and nothing written since: else it
        would answer 503 for its key until a sweep deleted it, which for a host's own limit
        none does (it reads such an object as no state of ours and leaves it)."""
        try:
            current = await self.store.get(object_key, type_)
        except CorruptObjectError as exc:
            if exc.etag is None:  # no version to overwrite it on: nothing safe to do
                raise
            return None, exc.etag
        if current is None:
            return None, None
        return current.value, current.etag

    async def delete_expired(
        self,
        limits: Mapping[str, RateLimit | FailureBudget],
        *,
        now: dt.datetime | None = None,
        confirm: bool = False,
    ) -> int:
        """Delete the state of every key, of any limit or budget, whose allowance is full
        again at `now` (default: this store's clock) by every clock within the skew
        allowance of it; how many. Those of `limits` are judged from the listing by their
        windows (twice the allowance past them), at no request per object; any other is
        read (one GET), and deleted only when every time it holds is the allowance past. `confirm`:
        the windows of `limits` may be shorter than those the states were written with;
        an object of theirs past its window is read too, and deleted only when its state
        has passed. See `sweep`."""
        now = now or dt.datetime.fromtimestamp(self._clock(), dt.UTC)
        return await sweep.delete_expired(
            self.store, limits, now, confirm=confirm, skew_seconds=self._skew
        )
