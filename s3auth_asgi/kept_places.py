"""The password-hashing places kept for logins from known devices, and what bounds who
takes them.

A login that shows a valid device cookie for the name typed may wait in one of these when
the shared places are full (`passwords`); a flood without such a cookie cannot take them.
What could take them is logins that succeed: no login limit counts a right password, so
whoever holds a few accounts, and a device cookie of each, could log in to them over and
over, in parallel, and keep every kept place taken. Two bounds make that cost many accounts:

- At once: one account's devices hold at most a quarter of the places (at least one). A
  thief firing a stolen cookie in parallel takes that account's share, not the places of
  every other account's owner.
- Over time: one account takes a kept place at most as often as
  `KEPT_PLACES_TAKEN_PER_ACCOUNT` lets it (six in a row, then one a minute); past that its
  logins find the shared places only, as a login without a cookie does. A login holds its
  place for W at most, its wait behind the places before it plus its own hash (under a
  second where the queue is sized as docs/deployment.md says), so over time one account
  holds W / 60 of a place on average, and keeping all D places taken takes 60·D / W
  accounts: 600 for the 8 places of two cores at W = 0.8 s. The six logins in a row of
  each let those accounts hold all D places for 6·W·accounts / D seconds at most, 2.4 s
  for four accounts, and again only after six minutes without a login.

Taking a place is charged, whatever the password turns out to be: the hash that tells is
run in that place. A stolen cookie so spends its account's budget too, but only with the
wrong passwords `login_device` lets through, five per 15 minutes: one of the six is left,
and the budget refills faster than that limit does. Nothing is charged while a shared place
is free, so a login outside a flood does what it did, and no login asks the store anything
more: the budget is kept in this process's memory, as are the places it bounds.

None of this awaits: a check and the count it guards run in one step of the event loop,
which a hasher belongs to.
"""

from __future__ import annotations

import time

from .ratelimit.gcra import gcra, peek
from .ratelimit.policy import RateLimit
from .types import Clock

KEPT_PLACES_SHARE_PER_ACCOUNT = 4
"""One account's devices hold at most 1/4 of the kept places (at least one). An owner logs in
from one device at a time, so a share is room enough; a thief with one stolen cookie, who
can fire logins in parallel, fills that share and leaves the rest to other accounts."""
KEPT_PLACES_TAKEN_PER_ACCOUNT = RateLimit(6, 360)
"""How often one account's logins may take a kept place (GCRA: six in a row, then one every
60 s). An owner logs in once, retyping a password a few times at worst, when a flood finds
them; an account taking a place more often is holding the places, not logging in."""
SWEEP_FLOOR = 256
"""Accounts remembered before the first sweep of those whose budget is whole again."""


class KeptPlaces:
    """The kept places of one hasher: how many each account holds now, and how many each
    has taken lately (see the module docstring)."""

    def __init__(self, places: int, *, clock: Clock = time.monotonic) -> None:
        self.places = places
        self.per_account = max(1, places // KEPT_PLACES_SHARE_PER_ACCOUNT)
        self.held: dict[str, int] = {}
        """Requests waiting (or running) now in these places, per account whose devices
        hold them: at most per_account each, `places` in all; an account holding none has
        no entry, so this stays as small as the places."""
        self._taken: dict[str, float] = {}
        """Per account, the state of its budget (a GCRA arrival time). One whose time has
        passed has its whole budget again, as one never seen, and is swept out once this
        holds twice as many as the last sweep left (SWEEP_FLOOR at least): so it holds at
        most about twice the accounts that took a place in the last six minutes."""
        self._sweep_at = SWEEP_FLOOR
        self._clock = clock

    @property
    def taken(self) -> int:
        """Requests waiting (or running) now in these places."""
        return sum(self.held.values())

    @property
    def remembered(self) -> int:
        """Accounts whose budget is remembered now: spent in part, or not swept yet."""
        return len(self._taken)

    def free_for(self, account: str) -> bool:
        """Whether a login of `account`'s devices may take a place now; counts nothing."""
        return self._room_for(account) and self._budget_admits(account)

    def take(self, account: str) -> bool:
        """Takes a place for a login of `account`'s devices, and charges its budget, if
        `free_for` would say so; False (nothing taken, nothing charged) if not."""
        if not self._room_for(account):
            return False
        now = self._clock()
        arrival, decision = gcra(self._taken.get(account), now, KEPT_PLACES_TAKEN_PER_ACCOUNT)
        if not decision.allowed:
            return False
        self._taken[account] = arrival
        if len(self._taken) >= self._sweep_at:
            self._sweep(now)
        self.held[account] = self.held.get(account, 0) + 1
        return True

    def leave(self, account: str) -> None:
        """Gives back a place `take` gave `account`."""
        held = self.held.pop(account) - 1
        if held:
            self.held[account] = held

    def _room_for(self, account: str) -> bool:
        return self.taken < self.places and self.held.get(account, 0) < self.per_account

    def _budget_admits(self, account: str) -> bool:
        arrival = self._taken.get(account)
        return peek(arrival, self._clock(), KEPT_PLACES_TAKEN_PER_ACCOUNT).allowed

    def _sweep(self, now: float) -> None:
        # Paid once per as many new accounts as are left, so each take pays a constant share.
        self._taken = {account: t for account, t in self._taken.items() if t > now}
        self._sweep_at = max(SWEEP_FLOOR, 2 * len(self._taken))
