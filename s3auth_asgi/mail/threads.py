"""MailThreads: where a mailer's blocking work runs, so that a mail server that stalls costs
the host nothing but its mail.

anyio's default limiter (40 threads) is shared by the host's sync endpoints (Starlette and
FastAPI run them there) and the local store's writes: sends that took it would stall all of
them. A mailer's work runs instead on at most MAIL_THREADS threads of its own, each taking
a slot here for its whole run, and none of the default limiter's tokens.

A thread cannot be interrupted. Work that may wait on a peer gives a `deadline` (seconds
from the moment its thread starts) and an `abort` that makes it end at once, such as
shutting its socket down; `abort` is also called when the caller is cancelled, because
asyncio's cancellation does not wait for the thread, which would then run on outside the
count.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")

MAIL_THREADS = 4
"""Threads a mailer sends on at most: a mail server that answers in a second serves a few
mails a second, far more than a service's password resets; one that stalls holds no more."""


def _nothing() -> None:
    return None


class MailThreads:
    def __init__(self, size: int = MAIL_THREADS) -> None:
        self._slots = anyio.CapacityLimiter(size)

    async def run(
        self,
        work: Callable[[], T],
        *,
        deadline: float | None = None,
        abort: Callable[[], None] = _nothing,
    ) -> T:
        """`work()` in a thread once a slot is free; past `deadline` seconds, `abort()`."""
        async with self._slots:
            timer = None
            if deadline is not None:
                timer = asyncio.get_running_loop().call_later(deadline, abort)
            try:
                # The slot above is what counts this thread: a limiter of one of its own
                # keeps it from taking a token of the default limiter.
                return await anyio.to_thread.run_sync(work, limiter=anyio.CapacityLimiter(1))
            except anyio.get_cancelled_exc_class():
                abort()
                raise
            finally:
                if timer is not None:
                    timer.cancel()
