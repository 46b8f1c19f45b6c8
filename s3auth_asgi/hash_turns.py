"""Turns at the running password hashes (`PasswordHasher`): at most `concurrency` hashes run
at once, and a request holding a place in the queue waits here for its turn, in the order
the turns were asked for.

A request whose client has gone away while it waits should not hash: nobody reads its
answer, and under a flood, clients that time out and retry would each hold two places. An
ASGI server does not cancel the app's task when the client leaves, so the caller says how
to tell (`given_up_on`: a function returning once the client has gone, which the auth app
makes of ASGI's `http.disconnect`); a wait for a turn then ends with ClientGoneError,
holding no turn, and the request gives its place back as it unwinds.

The wait only: once a turn is taken the hash starts, and from there the request runs to its
end whatever its client does. A wrong password is charged after its hash, and a client
that could stop a request there by leaving at the right moment would escape the failure
budget; nothing is written before the hash, so a request given up leaves nothing half done.

A turn free at once is taken without listening for anything: only a request that waits
behind others has a task listening to its client, for as long as it waits.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import anyio

logger = logging.getLogger("s3auth_asgi")

Gone = Callable[[], Awaitable[object]]
"""Returns once the request's client has gone away (and never while it stays)."""
_GONE: ContextVar[Gone | None] = ContextVar("s3auth_client_gone", default=None)


class ClientGoneError(Exception):
    """The request's client went away while it waited for its turn to hash: nothing was
    hashed, so no password was checked and no failure charged, and nothing was written.
    Not an S3AuthError: it has no answer, nobody being there to read one."""


@contextmanager
def given_up_on(gone: Gone) -> Iterator[None]:
    """Inside: a wait for a turn by this task (and those it starts) ends with
    ClientGoneError once `gone()` returns."""
    token = _GONE.set(gone)
    try:
        yield
    finally:
        _GONE.reset(token)


class HashTurns:
    """The turns of one hasher; like it, of one event loop at a time."""

    def __init__(self, concurrency: int) -> None:
        self._running = anyio.CapacityLimiter(concurrency)

    async def take(self) -> None:
        """Take a turn for the calling task, to `release` once its hash has run: at once
        when one is free, else when the turns asked for before it have been; until then,
        ClientGoneError when the client is found gone (`given_up_on`). Cancelled or given
        up, the task holds no turn."""
        try:
            self._running.acquire_nowait()
            return
        except anyio.WouldBlock:
            pass
        gone = _GONE.get()
        if gone is None:
            await self._running.acquire()
            return
        taken = False
        try:
            async with anyio.create_task_group() as waiting:
                waiting.start_soon(_end_when_gone, gone, waiting.cancel_scope)
                await self._running.acquire()
                taken = True
                waiting.cancel_scope.cancel()
        except BaseException:
            if taken:  # cancelled from outside as the listening ended
                self._running.release()
            raise
        if not taken:
            raise ClientGoneError()

    def release(self) -> None:
        self._running.release()


async def _end_when_gone(gone: Gone, waiting: anyio.CancelScope) -> None:
    try:
        await gone()
    except Exception as error:
        # A client that cannot be listened to is waited for as one that stays.
        logger.debug(
            "the client of a request waiting to hash cannot be listened to: %s",
            type(error).__name__,
        )
        return
    waiting.cancel()
