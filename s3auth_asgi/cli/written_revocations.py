"""The check a command makes, before it exits, of the revocations it wrote (`s3auth user
revoke`, `disable`, `delete`, `set-password`, `promote`, ...: whatever ends sessions).

A revocation key is timed by its writer's clock, and a reader lists from its last sync less
the skew allowance: keys written by a clock further behind the store's sort before every
running reader's listing, and the ended sessions' access tokens would stay accepted
everywhere else until they expire. A server repairs that at its next sync (`writer_lag`); a
command has none, so it makes one in its place, of its own entries alone
(`TokenBlacklist.check_own_writes`): one LIST from its earliest entry, where the clocks
agree; one PUT more per entry where this clock is behind by more than the allowance, each
written again under the store's time, and a warning saying by how much. Nothing where the
command wrote no revocation.

Rather than time the writes first by a probe (`store_time.clock_lead`, as `s3auth cleanup`
does): a probe costs a PUT, a GET and a DELETE before every command that may end sessions,
whether it does or not and whatever the clocks say, and it bounds only how far the clock is
ahead; the check costs a LIST where a revocation was written, and reads the entries
themselves with the bounds the servers go by.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from typing import TextIO

from ..errors import StoreUnavailableError
from ..service import S3AuthService
from .failures import UNAVAILABLE, CommandError, unavailable_message


async def check_written(
    services: Sequence[S3AuthService], err: TextIO, store_url: str | None
) -> None:
    """Check what `services` wrote; warn on `err` where a clock was found far behind.
    CommandError (exit 4) when the store fails the check."""
    for service in services:
        try:
            behind = await service.blacklist.check_own_writes()
        except StoreUnavailableError as exc:
            raise CommandError(not_checked(service, exc, store_url), UNAVAILABLE) from exc
        if behind is not None:
            print(far_behind(behind, service.settings.revocation_skew_seconds), file=err)


async def check_quietly(services: Sequence[S3AuthService], err: TextIO) -> None:
    """`check_written` for a command that failed after its writes (a mail not sent): its
    own failure is what it reports, the store's at the check aside."""
    with contextlib.suppress(CommandError):
        await check_written(services, err, None)


def far_behind(behind: float, skew: int) -> str:
    return (
        f"s3auth: warning: this host's clock is at least {math.floor(behind)} s behind the "
        f"store's, more than S3AUTH_REVOCATION_SKEW_SECONDS ({skew}): the revocations this "
        "command wrote were written again under the store's time. Sync this host's clock (NTP)"
    )


def not_checked(service: S3AuthService, exc: StoreUnavailableError, store_url: str | None) -> str:
    accepted = service.settings.access_token_accepted_seconds
    return (
        f"{unavailable_message(exc, store_url)}; whether other processes see the revocations "
        "this command wrote could not be checked: where this host's clock is more than "
        "S3AUTH_REVOCATION_SKEW_SECONDS behind the store's, they accept the ended sessions' "
        f"access tokens until these expire, within {accepted} s"
    )
