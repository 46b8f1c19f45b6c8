"""A live progress line for long work, on stderr and only when stderr is a terminal: cron
jobs and CI logs get the command's summary alone."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TextIO, TypeVar

import anyio

T = TypeVar("T")
CLEAR_LINE = "\r\x1b[K"


class Progress:
    """`label`, what `describe()` says and the seconds elapsed, redrawn in place (`\\r`)
    every `interval` seconds while `show` runs the work."""

    def __init__(
        self,
        stream: TextIO,
        label: str,
        describe: Callable[[], str] = lambda: "",
        interval: float = 0.2,
    ) -> None:
        self.stream = stream
        self.label = label
        self.describe = describe
        self.interval = interval
        self.live = is_terminal(stream)
        self._started = time.perf_counter()
        self._drawn = False

    def draw(self) -> None:
        if not self.live:
            return
        said = self.describe()
        elapsed = time.perf_counter() - self._started
        self.stream.write(f"\r{self.label}… {said + ', ' if said else ''}{elapsed:.1f} s ")
        self.stream.flush()
        self._drawn = True

    def clear(self) -> None:
        """Rub the line out, before other output to the same terminal (and at the end)."""
        if self._drawn:
            self.stream.write(CLEAR_LINE)
            self.stream.flush()
            self._drawn = False

    async def run(self) -> None:
        while True:
            self.draw()
            await anyio.sleep(self.interval)

    async def show(self, work: Callable[[], Awaitable[T]]) -> T:
        """`await work()` with the line drawn meanwhile (when live), then rubbed out.
        A failure of `work` comes out of a task group: `failures.leading` unwraps it."""
        if not self.live:
            return await work()
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self.run)
                try:
                    result = await work()
                finally:
                    tasks.cancel_scope.cancel()
        finally:
            self.clear()
        return result


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
