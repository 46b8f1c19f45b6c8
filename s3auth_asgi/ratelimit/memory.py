"""MemoryRateLimitStore: limiter state of one process, no I/O, a bounded number of keys.

Per limit, one dict from key to TAT (see `gcra`). A check is one lookup and one store,
whatever the number of keys: an admission overwrites the TAT where it stands, and only a
refusal moves its key to the back of the dict (dicts keep insertion order), so a client
hammering while refused stays the most recently used. A check of cost 1 on a key whose
allowance is full (never seen, or its TAT passed: a client asking less often than once
per emission interval) runs no arithmetic but one addition: its answer is the same every
time (`gcra.full_allowance`), bit for bit what the algorithm would give. One of cost 1 that
is admitted in debt runs the algorithm's own arithmetic inline; only other costs and
refusals call it.

When a new key finds the dict full, room is made in one pass, at least a sixteenth of
`max_keys` at a time so that the pass is paid once per that many new keys (a failure
budget's table alike, its state one TAT per limit):

1. every key whose TAT has passed goes (a budget's: every TAT of it): its allowance is full
   again, which is exactly what a key never seen gets, so dropping it changes no answer;
2. if that frees too little (more clients within one window than `max_keys`), keys go
   from the front: first seen longest ago and not refused since. Such a key starts afresh,
   with its whole burst: size `max_keys` above the number of clients expected within one
   window.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from itertools import islice
from math import trunc
from typing import Any

from ..settings_ranges import Range, check_number
from ..types import Clock
from .budget import FailureBudget, Reading, charge_budget, peek_budget
from .gcra import TOLERANCE, Decision, Step, full_allowance, gcra_step
from .policy import RateLimit, check_cost

MAX_KEYS = Range(1, 10_000_000, "10 million: about 1.3 GB a limit")
"""The keys a limit may hold: a hundred times the default. At about 130 bytes a key, a bound
past it is no bound on a process's memory, and more likely a slip (an extra digit) than a
number of clients seen within one window."""

MemoryCheck = Callable[[str, int], Step]
"""Check `key` at `cost` against one limit, counting it if admitted."""


class MemoryRateLimitStore:
    """Per-process state, at most `max_keys` keys per limit (see the module docstring).

    The clock is monotonic by default: the state never leaves the process, so wall-clock
    steps (NTP) must not release or block anyone.
    """

    def __init__(self, *, max_keys: int = 100_000, clock: Clock = time.monotonic) -> None:
        check_number(MAX_KEYS, max_keys, "MemoryRateLimitStore max_keys")
        self.max_keys = max_keys
        self._room_batch = max(1, max_keys // 16)
        self._clock = clock
        self._tats: dict[str, dict[str, float]] = {}
        self._budgets: dict[str, dict[str, dict[str, float]]] = {}
        self._checkers: dict[tuple[str, RateLimit], MemoryCheck] = {}

    def __len__(self) -> int:
        return sum(len(tats) for tats in self._tats.values()) + sum(
            len(states) for states in self._budgets.values()
        )

    def check(self, limit_name: str, key: str, limit: RateLimit, cost: int) -> Decision:
        """`acquire` without the coroutine: nothing here waits."""
        check_cost(limit, cost)
        _, allowed, remaining, reset_after, retry_after = self.checker(limit_name, limit)(key, cost)
        return Decision(allowed, remaining, reset_after, retry_after)

    async def acquire(self, limit_name: str, key: str, limit: RateLimit, cost: int) -> Decision:
        return self.check(limit_name, key, limit, cost)

    def checker(self, limit_name: str, limit: RateLimit) -> MemoryCheck:
        """The check of one limit, its table, clock and figures bound once: what
        RateLimiter calls on every request, where each lookup saved is a measurable share."""
        known = self._checkers.get((limit_name, limit))
        if known is not None:
            return known
        tats = self._tats.setdefault(limit_name, {})
        clock, step, make_room = self._clock, gcra_step, self._make_room
        interval, most = limit.emission_interval, limit.max_requests
        max_keys = self.max_keys
        horizon = most * interval + TOLERANCE
        # A check of cost 1 that finds the allowance full, the usual one, always gets the
        # same answer but for the state (`full_allowance`): taken once here, it spares such
        # a check the algorithm, an eighth to a fifth of the whole public call.
        allowed, remaining, reset_after, retry_after = full_allowance(interval, most, 1)

        def check(key: str, cost: int) -> Step:
            now = clock()
            tat = tats.get(key)
            if cost == 1:
                if tat is None or tat <= now:
                    if tat is None and len(tats) >= max_keys:
                        make_room(tats, now)
                    tats[key] = new_tat = now + interval
                    return new_tat, allowed, remaining, reset_after, retry_after
                ahead = tat - now + interval
                if ahead <= horizon:
                    # In debt and admitted: `gcra_step`'s own arithmetic for a cost of 1,
                    # inline because a client back within its emission interval takes this
                    # path on every request, and the call is a tenth of the check. Its
                    # full-allowance case cannot arise: the debt is positive, and every
                    # emission interval a RateLimit takes is longer than the tolerance.
                    tats[key] = new_tat = tat + interval
                    room = (horizon - ahead) / interval
                    left = trunc(room)
                    return new_tat, True, left, (left + 1 - room) * interval + TOLERANCE, 0.0
            result = step(tat, now, interval, most, cost)
            if result[1]:
                if tat is None and len(tats) >= max_keys:
                    make_room(tats, now)
                tats[key] = result[0]
            else:
                # Refused (so known): to the back, the most recently used.
                tats[key] = tats.pop(key)
            return result

        self._checkers[(limit_name, limit)] = check
        return check

    async def peek(self, budget: FailureBudget, key: str) -> Reading:
        states = self._budgets.get(budget.name, {})
        tats = states.pop(key, None)
        if tats is None:
            tats = {}
        else:
            # A key under attack is peeked (and refused) far more than it is recorded: that
            # is use too, or eviction would hand it a fresh allowance.
            states[key] = tats
        return Reading(budget, key, peek_budget(tats, self._clock(), budget), dict(tats))

    async def record(self, reading: Reading, cost: int = 1) -> Reading:
        # Decided on the state as it is now, not as the peek saw it: nothing here waits, so
        # this read-decide-write is atomic, as the object store's conditional write is.
        budget, key = reading.budget, reading.key
        states = self._budgets.setdefault(budget.name, {})
        tats = states.pop(key, {})
        now = self._clock()
        kept, decisions = charge_budget(tats, now, budget, cost)
        if len(states) >= self.max_keys:
            spent = [
                other for other, state in states.items() if max(state.values(), default=now) <= now
            ]
            self._drop(states, spent)
        states[key] = state = kept if kept is not None else tats
        return Reading(budget, key, decisions, state)

    def _make_room(self, tats: dict[str, float], now: float) -> None:
        self._drop(tats, [key for key, tat in tats.items() if tat <= now])

    def _drop(self, table: dict[str, Any], spent: list[str]) -> None:
        """Makes room: the `spent` keys (whose allowance is full again) go, and keys from
        the front too if that is less than a batch."""
        for key in spent:
            del table[key]
        if len(spent) < self._room_batch:
            self._drop_front(table, self._room_batch - len(spent))

    @staticmethod
    def _drop_front(states: dict[str, Any], count: int) -> None:
        # One scan per batch rather than one per insert: after deletions the front of a dict
        # is a run of empty slots that every `next(iter(...))` would walk again.
        for key in list(islice(states, count)):
            del states[key]
