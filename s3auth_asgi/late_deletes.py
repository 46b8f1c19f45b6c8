"""An ending's revocation, written again when the DELETE after it landed late.

An ending that writes its revocation and then deletes sessions (the cap, an account change:
`sessions`, `session_rules`; not a logout nor an ending by id, which delete first, so that
their one revocation is timed after the DELETE: `session_endings`) may race a refresh on
another host that has not synced the revocation yet: one that reads a session before the
DELETE lands and writes its rotation before it (or answers the previous token within the
grace, which writes nothing) issues an access token of a session the revocation names,
after the revocation's time. The revocation is held as long as a token issued at its own
time is accepted, by a host up to the skew allowance ahead of the writer (`blacklist`): a
token issued seconds later may outlive it, and a DELETE may take the store that long. No
refresh issues a token of a session once its DELETE has landed (its If-Match, or its GET,
finds nothing). So when the DELETE returns more than `LATE_SECONDS` after the revocation
began, the revocation is written again (1 PUT more), timed after every token a racing
refresh can have issued. What a faster ending leaves: a token issued meanwhile by a host
whose clock runs ahead of this one's by more than the allowance less that second, accepted
for at most that second after the revocation has lapsed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .types import Clock, elapsed_clock

LATE_SECONDS = 1.0


async def revoke_then_delete(
    clock: Clock,
    revoke: Callable[[], Awaitable[None]] | None,
    delete: Callable[[], Awaitable[object]],
) -> None:
    """`revoke()` (None: nothing to revoke), then `delete()`, then `revoke()` again when
    the two took longer than `LATE_SECONDS` on `clock`'s elapsed time (see the module)."""
    elapsed = elapsed_clock(clock)
    started = elapsed()
    if revoke is not None:
        await revoke()
    await delete()
    if revoke is not None and elapsed() - started > LATE_SECONDS:
        await revoke()
