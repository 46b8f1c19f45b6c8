"""When a mailed link stops working: the one rule that a link's own check applies
(`account_tokens`) and whatever shows a new address as waiting for its link
(`User.waiting_email`), so that the two never disagree.

A link is written with its issue time and expiry by the clock of the host that issued it.
The store's Last-Modified of its token holds that issue time to the clock-skew allowance
both ways (`account_tokens` says why), and a lifetime configured shorter since applies to
links already mailed. Given the same times, the same Last-Modified, lifetime and
allowance, the same deadline follows, whoever reckons it.
"""

from __future__ import annotations


def link_expiry(created_at: int, expires_at: int, lifetime_seconds: int | None) -> int:
    """When a mailed link made at `created_at` stops working: the earlier of the expiry
    written at its issue and its issue plus the configured lifetime, so a shortened lifetime
    applies to links already mailed (as the sweep, which judges by today's lifetime, does).
    Without a lifetime, the expiry written."""
    if lifetime_seconds is None:
        return expires_at
    return min(expires_at, created_at + lifetime_seconds)


def link_deadline(
    created_at: int,
    expires_at: int,
    lifetime_seconds: int | None,
    written: float,
    skew_seconds: float,
) -> float:
    """When a link made at `created_at`, to expire at `expires_at`, stops working:
    `link_expiry` from its issue time held within `skew_seconds` of `written`, the store's
    Last-Modified of its token. At the latest its lifetime and the allowance past the
    write, at the earliest its lifetime less the allowance, whatever the issuing host's
    clock read."""
    issued = min(max(created_at, written - skew_seconds), written + skew_seconds)
    return issued + link_expiry(created_at, expires_at, lifetime_seconds) - created_at
