"""The sweep of `ratelimit/`: deleting the stored state of keys whose allowance is full again.

Such a state answers exactly as no state at all (`gcra.full_allowance`), so deleting it
changes no answer, as the in-memory store's eviction of passed keys changes none. Whose
state has passed is told two ways:

- for a limit or failure budget the caller names, with its window, from the listing alone:
  a state is at most one window ahead of the clock of the host that wrote it (for a
  budget, its longest window), so once that window has passed since `last_modified` by
  every clock within the skew allowance, so has the state (`last_modified`: twice the
  allowance, for the writer's clock against the store's and the sweeper's against a
  reader's);
- for any other (a host's own limits, whose windows only the host's code knows), by reading
  the state (one GET): a limit's time, or every one of a budget's, at least the allowance
  before the sweeper's clock, so at or before that of every host within the allowance.
  What is no state of ours (a key of another shape, whatever limit it names, or a body
  that is not a state) is left.

Judged from the listing, a window shorter than the one the state was written with deletes
a state still owed. So windows the caller only guesses (`confirm`: the defaults, where the
app may have been given longer ones) just spare the reading of what is within them: an
object past its window is read as any other's, and deleted only once its state has passed.

A store has no conditional DELETE (obstore sends none, to any backend): a client that comes
back between the reading of its passed state (by listing or GET) and the DELETE has its new
state deleted, and its next requests are counted afresh. So the objects are deleted a batch
at a time, as soon as a batch is decided, which keeps that window to the LIST and GETs of
one batch and its DELETE, not the whole sweep's time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Mapping

import msgspec

from ..last_modified import lapsed_everywhere
from ..storage import Store, keys
from ..storage.access import gather, get_or_none
from ..storage.batching import S3, delete_as_listed
from .budget import FailureBudget
from .plausible import aside_times
from .policy import RateLimit

BATCH = S3.delete_batch
"""Objects decided before they are deleted, in one DELETE request on S3: a page of an S3
listing, and at most as many GETs."""


class StoredTimes(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A stored state read without knowing its limit: a limit's time (`tat`, as
    `stores.BucketState`) or a failure budget's (`tats`, as `stores.BudgetState`)."""

    tat: float | None = None
    tats: dict[str, float] | None = None
    write: str = ""
    """What makes each write unique (`stores.BucketState.write`); absent in older states."""
    ahead: float | list[float] | dict[str, float | list[float]] | None = None
    """Times set aside as too far ahead (`stores.BucketState.ahead`): held like the others,
    for the hosts whose clocks are that far ahead still count them."""

    def passed(self, now: float) -> bool:
        """Whether every time it holds is at or before `now`; False for what holds neither
        or both, which is no state of ours."""
        ahead = self.ahead
        held = ahead.values() if isinstance(ahead, dict) else [ahead]
        if any(tat > now for times in held for tat in aside_times(times)):
            return False
        if self.tats is None:
            return self.tat is not None and self.tat <= now
        return self.tat is None and all(tat <= now for tat in self.tats.values())


async def delete_expired(
    store: Store,
    limits: Mapping[str, RateLimit | FailureBudget],
    now: dt.datetime,
    *,
    confirm: bool = False,
    skew_seconds: float,
) -> int:
    """Delete every state under `ratelimit/` that has passed at `now` on every clock within
    `skew_seconds` of it (see the module); how many. `limits`' objects are judged from the
    listing, any other's read; with `confirm`, those of `limits` past their window are
    read too."""
    found = _passed_keys(store, limits, now.timestamp(), confirm=confirm, skew=skew_seconds)
    return await delete_as_listed(store, found)


async def _passed_keys(
    store: Store,
    limits: Mapping[str, RateLimit | FailureBudget],
    now: float,
    *,
    confirm: bool,
    skew: float,
) -> AsyncIterator[str]:
    """The keys of the states under `ratelimit/` that have passed at `now` on every clock
    within `skew` of it, as they are listed, or for those that must be read, as each batch
    of them is read."""
    moment = now - skew
    unread: list[str] = []
    async for info in store.list(keys.RATELIMIT):
        if not keys.is_ratelimit_state(info.key):
            continue  # no state has such a key, whoever's limit its first segment names
        limit = limits.get(keys.ratelimit_limit_name(info.key))
        if limit is not None and not lapsed_everywhere(info, limit.window_seconds, skew, now):
            continue  # within its window on some clock: its state may still be owed
        if limit is not None and not confirm:
            yield info.key
        else:
            unread.append(info.key)
            if len(unread) >= BATCH:
                for key in await _passed(store, unread, moment):
                    yield key
    for key in await _passed(store, unread, moment):
        yield key


async def _passed(store: Store, batch: list[str], now: float) -> list[str]:
    """Read the states at `batch` and empty it; the keys of those that have passed (one
    gone meanwhile, or no state of ours, is not among them)."""
    found = await gather([get_or_none(store, key, StoredTimes) for key in batch])
    passed = [
        key for key, state in zip(batch, found, strict=True) if state and state.value.passed(now)
    ]
    batch.clear()
    return passed
