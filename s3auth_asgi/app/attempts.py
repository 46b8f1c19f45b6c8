"""Password attempts (login, password change): limits on failures, read before a password is
checked and charged only when it turns out wrong (the protocol is `ratelimit.budget`'s).

- account (limits `login_account`, `login_account_daily`): one budget per account, keyed by
  its user id, whichever of its names is typed, and a name that is nobody's has a budget of
  its own, keyed by the name as normalised (`NameLookup.owner_key`);
- address (`login`): the client address, across accounts;
- device (`login_device`): a device cookie valid for the name typed (`devices`).

An attempt with a valid device cookie is counted against its device alone; any other against
the account and the address. They are read once the name's index entry is (it says whose
the account is), in that order, and the first that is spent refuses (429) without reading
the rest. So every budget a failure would be charged to has admitted it before the password
is hashed. A wrong password charges each of them, every one even when one of them was spent
meanwhile by other processes; then the answer is 429 rather than 401, so no more
wrong-password answers are ever given than the limits admit. A right password writes
nothing.

A charge that fails (the store fails the write) leaves a failure that was not counted,
while a right password, which writes nothing, would still be let in: the answer is 503, and
this process then refuses the budget's key for its shortest emission interval (the time
the budget takes to admit one failure more), without reading it (`HeldKeys`). Guessing
while the limits cannot be written is so held to the limits' steady rate.

Guesses sent at once: a budget read as admitting r more failures admits at most r attempts
being checked at once in this app (those between `begin` and `end`); the next is refused
(429, Retry-After: 1: they are answered within the hash queue's longest wait) before it
reads the user or hashes. Without that, every attempt of a burst reads the budget before
the first is charged, and a burst as large as the hashing queue learns the answer to each
of its guesses, a right password included, whatever the limit. Attempts being checked are
known to this process only: on a fleet a burst split across P processes gets at most P × r
answers before the charges land, where the charges then hold it.

With the limits in the object store, after the index GET: a refusal by the account 1 GET,
by the address 2, each one less once the process remembers the refusal
(`ObjectStoreRateLimitStore`); a success 2 GETs (then the user GET and the session PUT); a
failure 2 GETs and 2 conditional PUTs, each lost race a GET and a PUT more. With a device:
1 GET, and 1 PUT for a failure. Known and unknown names cost the same.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from ..auth_limits import failure_budgets
from ..errors import ConfigurationError, RateLimitedError
from ..ratelimit import FailureBudget, FailureStore, RateLimiter, RateLimitInfo, Reading
from ..ratelimit.gcra import Decision
from ..types import Clock, Scope

_SHOWN_ORDER = ("login.address", "login.account", "login.device")
"""The order of the RateLimit header items: the address's first, as for every other limit."""
SHOWN_BUDGETS = ("login.address", "login.device")
"""The budgets whose checks an answer admitting an attempt shows (`PasswordAttempts.shown`)."""


def _unique_by_budget(
    readings: list[tuple[FailureStore, Reading]],
) -> list[tuple[FailureStore, Reading]]:
    """One reading per budget, the last given of each (a refusal shows the budget that
    refused rather than the one that admitted before it)."""
    return list({reading.budget.name: (store, reading) for store, reading in readings}.values())


CHECKING_RETRY_AFTER_SECONDS = 1.0
"""Retry-After of an attempt refused because those being checked hold what is left of a
budget: they are answered within the hash queue's longest wait, under a second as the
queue is sized (`passwords`)."""


@dataclass
class Attempt:
    """One password attempt: the budgets it counts against, as read before the check."""

    readings: list[tuple[FailureStore, Reading]] = field(default_factory=list)
    by_device: bool = False
    held: list[str] = field(default_factory=list)
    """The budget keys it is counted as being checked under, until `end`."""
    spent_account: bool = False
    """Its failure, charged, left the account's budget with no room: the owner is told
    (`login_notices`), and the trail keeps the refusal it starts (`events.spent_of`). Later
    ones are refused before they are charged, until the budget admits one more."""


def _room(reading: Reading) -> int:
    """How many more failures the budget admits, as read."""
    return min(decision.remaining for decision in reading.decisions)


def _taken(reading: Reading) -> Reading:
    """The reading as a refusal: what it admits is held by attempts being checked."""
    refused = tuple(
        Decision(False, 0, decision.reset_after, CHECKING_RETRY_AFTER_SECONDS)
        for decision in reading.decisions
    )
    return replace(reading, decisions=refused)


def _held(budget: FailureBudget, key: str, wait: float) -> Reading:
    """A refusal of `key` for `wait` seconds, decided without reading its state."""
    return Reading(budget, key, tuple(Decision(False, 0, wait, wait) for _ in budget.limits), {})


class HeldKeys:
    """Budget keys whose last charge failed, each refused by this process until a time.
    Bounded: past `max_keys`, the oldest hold is dropped first."""

    def __init__(self, clock: Clock, max_keys: int = 10_000) -> None:
        self._clock = clock
        self.max_keys = max_keys
        self._until: dict[tuple[str, str], float] = {}

    def hold(self, budget: FailureBudget, key: str) -> None:
        self._until.pop((budget.name, key), None)
        self._until[budget.name, key] = self._clock() + _hold_seconds(budget)
        if len(self._until) > self.max_keys:
            del self._until[next(iter(self._until))]

    def left(self, budget: FailureBudget, key: str) -> float:
        """How long `key` is still held; 0 when it is not. Never longer than a hold: a
        wall clock stepped back since it began does not lengthen it."""
        until = self._until.get((budget.name, key))
        if until is None:
            return 0.0
        now = self._clock()
        wait = until - now
        if wait <= 0:
            del self._until[budget.name, key]
            return 0.0
        longest = _hold_seconds(budget)
        if wait > longest:
            self._until[budget.name, key] = now + longest
            return longest
        return wait


def _hold_seconds(budget: FailureBudget) -> float:
    """How long a lost charge holds a key: the time the budget takes to admit one failure
    more, its shortest emission interval."""
    return min(limit.emission_interval for limit in budget.limits.values())


def login_budgets(limiter: RateLimiter) -> dict[str, tuple[FailureStore, FailureBudget]]:
    """The budgets the limiter has limits for, each with the store that keeps it."""
    budgets: dict[str, tuple[FailureStore, FailureBudget]] = {}
    for name, budget in failure_budgets(limiter.limits).items():
        stores = {id(limiter.stores[n]): limiter.stores[n] for n in budget.limits}
        if len(stores) > 1:
            raise ConfigurationError(
                f"limits {', '.join(map(repr, budget.limits))} are kept together, one state "
                "per account: give them the same store"
            )
        (store,) = stores.values()
        if not isinstance(store, FailureStore):
            raise ConfigurationError(
                f"limit {next(iter(budget.limits))!r}: its store {type(store).__name__} cannot "
                "peek and record (ratelimit.FailureStore), which limits on failed attempts need"
            )
        budgets[name] = (store, budget)
    return budgets


def _account(account: str) -> str:
    return f"account:{account}"


class PasswordAttempts:
    """Reads and charges the failure budgets of password attempts (none without a limiter)."""

    def __init__(self, limiter: RateLimiter | None, clock: Clock = time.time) -> None:
        self.limiter = limiter
        self.held = HeldKeys(clock)
        self.budgets = login_budgets(limiter) if limiter is not None else {}
        self.checking: dict[str, int] = {}
        """Per budget key, the attempts being checked now (between `begin` and `end`); a key
        with none has no entry."""

    @property
    def uses_devices(self) -> bool:
        return "login.device" in self.budgets

    async def begin(self, scope: Scope, account: str, device_key: str | None) -> Attempt:
        """Read the attempt's budgets (`account`: `NameLookup.owner_key`, or
        `name_index.owner_account`); RateLimitedError when one is spent, or held by the
        attempts being checked or by a failed charge. The attempt is then counted as being
        checked until `end`, which the caller must reach whatever happens."""
        by_device = device_key is not None and self.uses_devices
        if device_key is not None and by_device:
            plan = [("login.device", device_key)]
        else:
            client = self.limiter.client_resolver.client_key(scope) if self.limiter else ""
            plan = [("login.account", _account(account)), ("login.address", client)]
        attempt = Attempt(by_device=by_device)
        try:
            for name, key in plan:
                if name not in self.budgets:
                    continue
                store, budget = self.budgets[name]
                held = self.held.left(budget, key)
                reading = _held(budget, key, held) if held else await store.peek(budget, key)
                # No await from here to the count: the room read is the room taken.
                checking = self.checking.get(key, 0)
                if reading.allowed and checking >= _room(reading):
                    reading = _taken(reading)
                attempt.readings.append((store, reading))
                if not reading.allowed:
                    raise self._refusal(attempt.readings)
                self.checking[key] = checking + 1
                attempt.held.append(key)
        except BaseException:
            self.end(attempt)
            raise
        return attempt

    def end(self, attempt: Attempt) -> None:
        """The attempt is answered: it no longer holds room in its budgets. Idempotent."""
        for key in attempt.held:
            left = self.checking.pop(key) - 1
            if left:
                self.checking[key] = left
        attempt.held.clear()

    async def failed(self, attempt: Attempt) -> list[RateLimitInfo]:
        """Charge the failure to every budget of the attempt; the checks made, for the
        headers, or RateLimitedError when one of them was spent meanwhile.

        Every budget is charged, even after one refused: the failure was checked, and each
        budget it belongs to must count it. A charge that raises (the store failed) holds
        its key in this process (`HeldKeys`), and the error is raised once all are made."""
        charged: list[tuple[FailureStore, Reading]] = []
        lost: Exception | None = None
        for store, reading in attempt.readings:
            try:
                recorded = await store.record(reading)
            except Exception as error:
                self.held.hold(reading.budget, reading.key)
                lost = lost or error
                continue
            charged.append((store, recorded))
            if recorded.budget.name == "login.account" and recorded.allowed:
                attempt.spent_account = _room(recorded) == 0
        if lost is not None:
            raise lost
        if not all(recorded.allowed for _, recorded in charged):
            # Each budget as last seen: the one that refused in place of what it read.
            raise self._refusal(_unique_by_budget([*attempt.readings, *charged]))
        return self.shown(charged)

    def shown(self, readings: list[tuple[FailureStore, Reading]]) -> list[RateLimitInfo]:
        """The checks that the headers of an answer admitting the attempt (200, 401) show:
        all but the account's. Its budget is shared by the account's two names, so its count
        would tell whoever fails under a username and then an email whether both are one
        account's; a name that is nobody's has a budget of its own. A refusal (429) shows
        it, as it must to say when to come back."""
        return self.infos([item for item in readings if item[1].budget.name in SHOWN_BUDGETS])

    def infos(self, readings: list[tuple[FailureStore, Reading]]) -> list[RateLimitInfo]:
        ordered = sorted(readings, key=lambda item: _SHOWN_ORDER.index(item[1].budget.name))
        return [
            RateLimitInfo(
                name,
                limit,
                reading.key,
                decision.allowed,
                decision.remaining,
                decision.reset_after,
                decision.retry_after,
            )
            for _, reading in ordered
            for (name, limit), decision in zip(
                reading.budget.limits.items(), reading.decisions, strict=True
            )
        ]

    def _refusal(self, readings: list[tuple[FailureStore, Reading]]) -> RateLimitedError:
        assert self.limiter is not None  # there are budgets to refuse only with a limiter
        return self.limiter.refusal(self.infos(readings))
