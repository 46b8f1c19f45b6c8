"""Password attempts (login, password change): limits on failures, read before a password is
checked and charged only when it turns out wrong (the protocol is `ratelimit.budget`'s).

- account (limits `login_account`, `login_account_daily`): the account, from any address:
  the user id when the name typed is a user's (so its username and email are one account),
  else the name as normalised (`NameLookup.account_key`);
- address (`login`): the client address, across accounts;
- device (`login_device`): a device cookie valid for the account (`devices`).

An attempt with a valid device cookie is counted against its device alone; any other against
the account and the address. Before the password is checked they are read in that order, and
the first that is spent refuses (429) without reading the rest. A wrong password charges
each; if a charge finds its budget spent meanwhile by other processes, the answer is 429
rather than 401, so no more wrong-password answers are ever given than the limits admit. A
right password writes nothing.

With the limits in the object store, on top of the index GET that tells the account: a
refusal by the account 1 GET, by the address 2, each one less once the store remembers the
refusal (`ObjectStoreRateLimitStore`); a success 2 GETs (then the user GET and the session
PUT); a failure 2 GETs and 2 conditional PUTs, each lost race a GET and a PUT more. With a
device: 1 GET, and 1 PUT for a failure. Known and unknown accounts cost the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigurationError, RateLimitedError
from ..ratelimit import FailureBudget, FailureStore, RateLimiter, RateLimitInfo, Reading
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


@dataclass
class Attempt:
    """One password attempt: the budgets it counts against, as read before the check."""

    readings: list[tuple[FailureStore, Reading]] = field(default_factory=list)


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


class PasswordAttempts:
    """Reads and charges the failure budgets of password attempts (none without a limiter)."""

    def __init__(self, limiter: RateLimiter | None) -> None:
        self.limiter = limiter
        self.budgets = login_budgets(limiter) if limiter is not None else {}

    @property
    def uses_devices(self) -> bool:
        return "login.device" in self.budgets

    async def begin(self, scope: Scope, account_key: str, device_key: str | None) -> Attempt:
        """Read the attempt's budgets; RateLimitedError when one is spent."""
        if device_key is not None and self.uses_devices:
            plan = [("login.device", device_key)]
        else:
            client = self.limiter.client_resolver.client_key(scope) if self.limiter else ""
            plan = [("login.account", f"account:{account_key}"), ("login.address", client)]
        attempt = Attempt()
        for name, key in plan:
            if name not in self.budgets:
                continue
            store, budget = self.budgets[name]
            reading = await store.peek(budget, key)
            attempt.readings.append((store, reading))
            if not reading.allowed:
                raise self._refusal(attempt.readings)
        return attempt

    async def failed(self, attempt: Attempt) -> list[RateLimitInfo]:
        """Charge the failure to every budget of the attempt; the checks made, for the
        headers, or RateLimitedError when one of them was spent meanwhile."""
        charged = [(store, await store.record(reading)) for store, reading in attempt.readings]
        if not all(reading.allowed for _, reading in charged):
            raise self._refusal(charged)
        return self.infos(charged)

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
