"""The loop every change of the stored key set runs: one attempt reads the set, changes it
and replaces it under If-Match (`keys.stored`); an attempt whose write lost to another
change is made again, after a jittered wait, so that the writers that collided do not
collide again. A change is one key event of the writer's whatever its attempts took: its
success is the caller's to log, once its write landed; a failure is logged here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..errors import ConfigurationError, S3AuthError
from ..storage.access import back_off
from .events import REFUSED, Actor, KeyEventName, tell

MAX_ATTEMPTS = 10
"""Each lost attempt is another writer's change landing, so this many see through as many
changes made at once."""

Attempt = Callable[[], Awaitable[tuple[str, ...] | None]]
"""One read, change and conditional write: the kids that write took out of the set, or
None when it lost to another change."""


async def rewrite(
    name: KeyEventName,
    attempt: Attempt,
    *,
    now: float,
    by: Actor,
    kid: Callable[[], str | None],
) -> tuple[str, ...]:
    """Make `attempt` until its write lands; what it took out. A change that fails is
    logged, with `kid()` as its key: a ConfigurationError (a rule of the key set) as
    `refused`, another of the package's errors by its problem code."""
    try:
        for tried in range(MAX_ATTEMPTS):
            if tried:  # the previous one lost a race
                await back_off(tried - 1)
            removed = await attempt()
            if removed is not None:
                return removed
        raise ConfigurationError("the stored key set kept changing; try again")
    except S3AuthError as error:
        reason = REFUSED if isinstance(error, ConfigurationError) else error.code
        tell(name, now, by, outcome="failure", kid=kid(), reason=reason)
        raise
