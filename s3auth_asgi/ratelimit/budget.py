"""Failure budgets: limits that count only failed attempts (wrong passwords), read before an
attempt and charged after it, if it fails.

A budget is a few named limits counted together under one key, with their state in one
place (one object in the object store), so that reading a whole budget costs one read: an
account's 15-minute and daily limits are one budget. The state is one TAT per
limit (`gcra` explains TATs); a key never seen has none.

The protocol of a check:

1. `peek` reads the state and says whether a failure would still be admitted (`gcra.peek`
   per limit). A refused peek ends the attempt before the password is checked.
2. A right password writes nothing.
3. A wrong password is `record`ed: `gcra` on every limit, and the new state written only if
   all of them admit (one conditional write, on the version the peek read). If the state
   changed since the peek, the store re-reads and decides again; a budget that other
   attempts spent meanwhile comes back refused, and the caller answers as for a refusal.

So an attempt is answered "wrong password" only after its failure was counted: however many
processes check passwords, no more wrong-password answers are given than the limits admit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ..errors import ConfigurationError
from .gcra import Decision, gcra, peek
from .plausible import hold
from .policy import RateLimit, check_limit_name


@dataclass(frozen=True, slots=True)
class FailureBudget:
    """Limits (by name) counted together under one key; `name` names its stored state."""

    name: str
    limits: Mapping[str, RateLimit]
    window_seconds: float = field(init=False, repr=False, compare=False)
    """The longest window: state older than this is as good as none (for clean-ups)."""

    def __post_init__(self) -> None:
        check_limit_name(self.name, source="FailureBudget")
        if not self.limits:
            raise ConfigurationError(f"failure budget {self.name!r} has no limits")
        for limit_name, limit in self.limits.items():
            check_limit_name(limit_name, source=f"failure budget {self.name!r}")
            if not isinstance(limit, RateLimit):
                raise ConfigurationError(
                    f"failure budget {self.name!r}: {limit_name!r} is no RateLimit"
                )
        object.__setattr__(self, "limits", dict(self.limits))
        window = max(limit.window_seconds for limit in self.limits.values())
        object.__setattr__(self, "window_seconds", window)


Tats = Mapping[str, float]
"""A budget's state: the TAT of each limit that has counted anything."""
AsideTimes = Mapping[str, float | list[float]]
"""Per limit, the times set aside as too far ahead (`plausible`): a list, or one time
alone as states held it before there could be several."""


@dataclass(frozen=True, slots=True)
class Reading:
    """What a peek or a record found for one key: a decision per limit of the budget (in its
    order), the state it decided on, and the store's version of that state (an ETag; None
    when nothing is stored, or for stores without versions)."""

    budget: FailureBudget
    key: str
    decisions: tuple[Decision, ...]
    tats: Tats
    version: str | None = None
    ahead: AsideTimes = field(default_factory=dict)
    """Times set aside as too far ahead of the reader's clock (`plausible`), to keep."""

    @property
    def allowed(self) -> bool:
        return all(decision.allowed for decision in self.decisions)


def peek_budget(
    tats: Tats, now: float, budget: FailureBudget, cost: int = 1
) -> tuple[Decision, ...]:
    """Whether a failure of `cost` would be admitted by every limit; nothing is counted."""
    return tuple(peek(tats.get(name), now, limit, cost) for name, limit in budget.limits.items())


def charge_budget(
    tats: Tats, now: float, budget: FailureBudget, cost: int = 1
) -> tuple[dict[str, float] | None, tuple[Decision, ...]]:
    """Count a failure of `cost` against every limit: (the state to keep, the decisions).

    All or nothing: when any limit refuses, nothing is counted anywhere (the state to keep
    is None) and the decisions are the peek's, so the admitted limits report their
    allowance as it stands.

    The times of limits the budget lacks are kept while they are still owed: another host's
    budget of the same name may have them (a limit added to a budget and deployed host by
    host, or limits configured apart), and a failure counted here must not erase what it
    counted there.
    """
    results = [gcra(tats.get(name), now, limit, cost) for name, limit in budget.limits.items()]
    if all(decision.allowed for _, decision in results):
        kept = {name: tat for name, tat in tats.items() if tat > now}
        kept.update((name, tat) for name, (tat, _) in zip(budget.limits, results, strict=True))
        return kept, tuple(decision for _, decision in results)
    return None, peek_budget(tats, now, budget, cost)


def hold_budget(
    tats: Tats, ahead: AsideTimes, now: float, budget: FailureBudget, skew: float
) -> tuple[dict[str, float], dict[str, float | list[float]], bool]:
    """A stored budget as a host whose clock says `now` counts it (`plausible.hold`, per
    limit): (the times to decide on, the times set aside, whether a full debt was put in
    place of times too far ahead). Limits the budget lacks are kept as they are."""
    held = {name: tat for name, tat in tats.items() if name not in budget.limits}
    aside = {name: tat for name, tat in ahead.items() if name not in budget.limits}
    debt = False
    for name, limit in budget.limits.items():
        counted = hold(tats.get(name), ahead.get(name), now, limit, skew)
        if counted.tat is not None:
            held[name] = counted.tat
        if counted.aside:
            aside[name] = list(counted.aside)
        debt = debt or counted.debt
    return held, aside, debt


@runtime_checkable
class FailureStore(Protocol):
    """Where failure budgets live: both built-in stores, and any store with the two steps."""

    async def peek(self, budget: FailureBudget, key: str) -> Reading:
        """Read the state of `key` and decide whether one more failure would be admitted."""
        ...

    async def record(self, reading: Reading, cost: int = 1) -> Reading:
        """Count a failure against the state `reading` was taken from (re-reading if it
        changed since); the result says whether it was admitted."""
        ...
