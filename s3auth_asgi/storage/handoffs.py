"""Hand-offs from obstore's threads, waited for before the interpreter shuts down.

obstore answers an awaited request from a thread of its own (tokio's, through
pyo3-async-runtimes): that thread calls the event loop's `call_soon_threadsafe`, whose
wake-up write releases the GIL. The loop can then run the answer, finish the program and
start shutting the interpreter down before that thread takes the GIL back. Python 3.11 ends
a thread that asks for the GIL during finalisation with pthread_exit, whose unwinding
through Rust frames aborts the process (SIGABRT, exit 134): a script whose last act is a
store request under `asyncio.run` died that way in about one run in three.

The thread enters `call_soon_threadsafe` before the loop can see the answer, so once the
loop is done the count of threads inside it only falls. `ObjectStore` watches each loop it
is used on (`watch_running_loop`), and an `atexit` hook — run before the interpreter stops
other threads — waits for the count to reach 0, bounded should a thread never come back.
A loop whose `call_soon_threadsafe` cannot be wrapped (uvloop's) gets the short grace alone.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

SETTLE_GRACE_SECONDS = 0.005
"""A moment for a thread woken by a cancelled request, which takes the GIL once more."""
SETTLE_LIMIT_SECONDS = 2.0


class Handoffs:
    """Counts the threads inside watched loops' `call_soon_threadsafe`."""

    def __init__(self) -> None:
        self.inside = 0
        self._lock = threading.Lock()
        self._watched: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()

    def watch(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop in self._watched:
            return
        self._watched.add(loop)
        original = loop.call_soon_threadsafe

        def call_soon_threadsafe(
            callback: Callable[..., object], *args: object, context: Any = None
        ) -> asyncio.Handle:
            with self._lock:
                self.inside += 1
            try:
                return original(callback, *args, context=context)
            finally:
                with self._lock:
                    self.inside -= 1

        # A loop type whose methods are fixed (uvloop's) keeps its own: the grace alone.
        with contextlib.suppress(AttributeError, TypeError):
            loop.call_soon_threadsafe = call_soon_threadsafe  # type: ignore[method-assign]

    def settle(self) -> None:
        """Wait until no thread is inside a watched loop's `call_soon_threadsafe`."""
        time.sleep(SETTLE_GRACE_SECONDS)
        deadline = time.monotonic() + SETTLE_LIMIT_SECONDS
        while self.inside and time.monotonic() < deadline:
            time.sleep(0.001)


HANDOFFS = Handoffs()
_used = False


def watch_running_loop() -> None:
    """Watch the running asyncio loop (once per loop), and settle at exit."""
    global _used
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not on asyncio: obstore could not have been awaited
        return
    HANDOFFS.watch(loop)
    if not _used:
        _used = True
        atexit.register(HANDOFFS.settle)
