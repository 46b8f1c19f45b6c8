"""The refusal of a command that acts by its host's clock on what other hosts judge by
theirs, when that clock is further ahead of the store's than the skew allowance
(`store_time.clock_lead`): `s3auth cleanup`, `s3auth keys rotate --now` and `keys retire
--now`. One message, naming what the command would have done wrong."""

from __future__ import annotations

from .failures import REFUSED, CommandError


def too_far_ahead(lead: float, skew: int, harm: str) -> str:
    """What to tell: this host's `lead` over the store's clock, the allowance `skew`, and
    the `harm` acting by it would do (with what was left undone)."""
    return (
        f"this host's clock is at least {lead:.0f} s ahead of the store's, more than "
        f"S3AUTH_REVOCATION_SKEW_SECONDS ({skew}): {harm}. Sync this host's clock (NTP) and "
        "run it again"
    )


def refuse_when_ahead(lead: float, skew: int, harm: str) -> None:
    """CommandError, exit 1 (REFUSED), when `lead` is over `skew`."""
    if lead > skew:
        raise CommandError(too_far_ahead(lead, skew, harm), REFUSED)
