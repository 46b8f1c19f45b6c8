"""SIGTERM (systemd, Kubernetes, `timeout`) stops a command as Ctrl-C does: the work is
cancelled, the answers of the requests under way are waited for (`context.run_async`),
and the command says it was interrupted, rather than dying mid-write without a word. Its
exit code is still SIGTERM's (`failures.TERMINATED`), as a shell reports it."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType


@dataclass
class Termination:
    received: bool = False


@contextlib.contextmanager
def terminated_as_interrupted() -> Iterator[Termination]:
    """While the block runs, SIGTERM is handed to SIGINT's handler: on asyncio's runner,
    which cancels the main task and then raises KeyboardInterrupt; elsewhere Python's,
    which raises it. Where SIGINT is ignored (a background job of a non-interactive shell)
    KeyboardInterrupt is raised all the same."""
    seen = Termination()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        seen.received = True
        handler = signal.getsignal(signal.SIGINT)
        if not callable(handler):
            raise KeyboardInterrupt
        handler(signal.SIGINT, frame)

    try:
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:  # not the main thread (a test's, say): its signals are not ours
        yield seen
        return
    try:
        yield seen
    finally:
        signal.signal(signal.SIGTERM, previous)
