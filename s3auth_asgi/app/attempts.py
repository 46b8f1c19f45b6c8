"""Password attempts (login, password change): limits on failures, read before a password is
checked and charged only when it turns out wrong (the protocol is `ratelimit.budget`'s).

- account (limits `login_account`, `login_account_daily`): one budget per name — a username,
  an email, or a name that is nobody's, as normalised (`NameLookup.account_key`). A wrong
  password is charged to both names of the account (`NameLookup.charged_accounts`), so
  each name's budget counts the failures made under either: the username and the email of
  an account are one account, and yet the budget to read follows from the name typed,
  before the index is read;
- address (`login`): the client address, across accounts;
- device (`login_device`): a device cookie valid for the name typed (`devices`).

An attempt with a valid device cookie is counted against its device alone; any other against
the account and the address. Before anything else is read they are read in that order, and
the first that is spent refuses (429) without reading the rest. A wrong password charges
each, and the account's other name; if a charge finds its budget spent meanwhile by other
processes, the answer is 429 rather than 401, so no more wrong-password answers are ever
given than the limits admit. A right password writes nothing.

Guesses sent at once: a budget read as admitting r more failures admits at most r attempts
being checked at once in this app (those between `begin` and `end`); the next is refused
(429, Retry-After: 1: they are answered within the hash queue's longest wait) before it
reads the user or hashes. Without that, every attempt of a burst reads the budget before
the first is charged, and a burst as large as the hashing queue learns the answer to each
of its guesses, a right password included, whatever the limit. Attempts being checked are known to
this process only: on a fleet a burst split across P processes gets at most P × r answers
before the charges land, where the charges then hold it.

With the limits in the object store: a refusal by the account 1 GET, by the address 2, each
one less once the process remembers the refusal (`ObjectStoreRateLimitStore`); a success 2
GETs (then the index GET, the user GET and the session PUT); a failure 3 GETs and 3
conditional PUTs, each lost race a GET and a PUT more. With a device: 1 GET, and 1 PUT for
a failure. Known and unknown names cost the same: an unknown name's second budget is one of
its own (`decoy:`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from ..errors import ConfigurationError, RateLimitedError
from ..ratelimit import FailureBudget, FailureStore, RateLimiter, RateLimitInfo, Reading
from ..ratelimit.gcra import Decision
from ..types import Scope

BUDGET_LIMITS: dict[str, tuple[str, ...]] = {
    "login.account": ("login_account", "login_account_daily"),
    "login.address": ("login",),
    "login.device": ("login_device",),
}
"""Each budget (the name its state is stored under) and its limits, in the order they are
read. A limiter without any of a budget's limits does without that budget."""

_SHOWN_ORDER = ("login.address", "login.account", "login.device")
"""The order of the RateLimit header items: the address's first, as for every other limit."""

_CHARGE_ORDER = ("login.account", "login.address", "login.device")
"""The order failures are charged in (`PasswordAttempts.failed`)."""


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


def login_budgets(limiter: RateLimiter) -> dict[str, tuple[FailureStore, FailureBudget]]:
    """The budgets the limiter has limits for, each with the store that keeps it."""
    budgets: dict[str, tuple[FailureStore, FailureBudget]] = {}
    for name, limit_names in BUDGET_LIMITS.items():
        present = [n for n in limit_names if n in limiter.limits]
        if not present:
            continue
        stores = {id(limiter.stores[n]): limiter.stores[n] for n in present}
        if len(stores) > 1:
            raise ConfigurationError(
                f"limits {', '.join(map(repr, present))} are kept together, one state per "
                "account: give them the same store"
            )
        (store,) = stores.values()
        if not isinstance(store, FailureStore):
            raise ConfigurationError(
                f"limit {present[0]!r}: its store {type(store).__name__} cannot peek and "
                "record (ratelimit.FailureStore), which limits on failed attempts need"
            )
        budget = FailureBudget(name, {n: limiter.limits[n] for n in present})
        budgets[name] = (store, budget)
    return budgets


def _account(name_key: str) -> str:
    return f"account:{name_key}"


class PasswordAttempts:
    """Reads and charges the failure budgets of password attempts (none without a limiter)."""

    def __init__(self, limiter: RateLimiter | None) -> None:
        self.limiter = limiter
        self.budgets = login_budgets(limiter) if limiter is not None else {}
        self.checking: dict[str, int] = {}
        """Per budget key, the attempts being checked now (between `begin` and `end`); a key
        with none has no entry."""

    @property
    def uses_devices(self) -> bool:
        return "login.device" in self.budgets

    async def begin(self, scope: Scope, account_key: str, device_key: str | None) -> Attempt:
        """Read the attempt's budgets; RateLimitedError when one is spent, or held by the
        attempts being checked. The attempt is then counted as being checked until `end`,
        which the caller must reach whatever happens."""
        by_device = device_key is not None and self.uses_devices
        if device_key is not None and by_device:
            plan = [("login.device", device_key)]
        else:
            client = self.limiter.client_resolver.client_key(scope) if self.limiter else ""
            plan = [("login.account", _account(account_key)), ("login.address", client)]
        attempt = Attempt(by_device=by_device)
        try:
            for name, key in plan:
                if name not in self.budgets:
                    continue
                store, budget = self.budgets[name]
                reading = await store.peek(budget, key)
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

    async def failed(self, attempt: Attempt, accounts: Sequence[str] = ()) -> list[RateLimitInfo]:
        """Charge the failure to every budget of the attempt and, unless a device carried
        it, to the `accounts` it did not read (the account's other name); the checks made,
        for the headers, or RateLimitedError when one of them was spent meanwhile.

        Every attempt charges in one order (the account's budgets by key, then the
        address's) and stops at the first spent: the attempts that win a budget's last
        places are then the only ones racing for the next, so concurrent failures are
        answered 401 up to the limit instead of each winning one budget and losing the
        other, and no budget is charged for an attempt another has refused."""
        read = {reading.key: (store, reading) for store, reading in attempt.readings}
        planned: dict[str, tuple[FailureStore, FailureBudget]] = {
            reading.key: (store, reading.budget) for store, reading in attempt.readings
        }
        if not attempt.by_device and "login.account" in self.budgets:
            for key in map(_account, accounts):
                planned.setdefault(key, self.budgets["login.account"])
        order = sorted(planned, key=lambda key: (_CHARGE_ORDER.index(planned[key][1].name), key))
        charged: list[tuple[FailureStore, Reading]] = []
        for key in order:
            store, budget = planned[key]
            reading = read[key][1] if key in read else await store.peek(budget, key)
            recorded = await store.record(reading)
            charged.append((store, recorded))
            if not recorded.allowed:
                # Each budget as last seen: the one that refused in place of what it read.
                raise self._refusal(_unique_by_budget([*attempt.readings, *charged]))
        return self.shown([item for item in charged if item[1].key in read])

    def shown(self, readings: list[tuple[FailureStore, Reading]]) -> list[RateLimitInfo]:
        """The checks that the headers of an answer admitting the attempt (200, 401) show:
        all but the account's. Its budget is shared by the account's two names, so its count
        would tell whoever fails under a username and then an email whether both are one
        account's; a name that is nobody's has a budget of its own. A refusal (429) shows
        it, as it must to say when to come back."""
        return self.infos([item for item in readings if item[1].budget.name != "login.account"])

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
