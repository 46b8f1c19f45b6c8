"""`s3auth cleanup`: delete expired sessions and revocations, showing the requests made."""

from __future__ import annotations

import time
from typing import TextIO

import anyio

from ..storage import Store
from .context import OK, Context, run_async

PROGRESS_KINDS = ("list", "delete")


def run_cleanup(ctx: Context) -> int:
    service = ctx.service()
    progress = Progress(ctx.err, service.store)

    async def cleanup() -> int:
        started = time.perf_counter()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(progress.run)
            try:
                deleted = await service.cleanup_expired_tokens()
            finally:
                tasks.cancel_scope.cancel()
        progress.finish()
        elapsed = time.perf_counter() - started
        print(
            f"deleted {deleted} expired session(s) and revocation entries in {elapsed:.1f} s "
            f"({progress.describe()})",
            file=ctx.out,
        )
        return OK

    return run_async(cleanup)


class Progress:
    """A one-line live display of the store requests made so far, redrawn on a terminal
    (and only printed once at the end elsewhere, so logs stay readable)."""

    def __init__(self, stream: TextIO, store: Store, interval: float = 0.2) -> None:
        self.stream = stream
        self.store = store
        self.interval = interval
        self.live = stream.isatty()
        self._baseline = dict(store.requests)
        self._started = time.perf_counter()

    def counts(self) -> dict[str, int]:
        return {
            kind: self.store.requests[kind] - self._baseline.get(kind, 0) for kind in PROGRESS_KINDS
        }

    def describe(self) -> str:
        counts = self.counts()
        return f"{counts['list']} list page(s), {counts['delete']} delete batch(es)"

    async def run(self) -> None:
        while True:
            if self.live:
                elapsed = time.perf_counter() - self._started
                self.stream.write(f"\rcleaning up… {self.describe()}, {elapsed:.1f} s ")
                self.stream.flush()
            await anyio.sleep(self.interval)

    def finish(self) -> None:
        if self.live:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
