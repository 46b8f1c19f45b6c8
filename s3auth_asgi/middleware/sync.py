"""Keeping a process's revocation snapshot fresh without making requests wait for it.

One `SnapshotSyncer` per `TokenBlacklist` (shared by every middleware that uses it), so a
process makes at most one LIST at a time for it:

- `refresh_in_background()` starts a sync and returns at once; requests keep being
  answered from the current snapshot while it runs. After a failure (logged) the next
  attempt waits one sync interval, so an unreachable store is not hammered.
- `overdue()` / `catch_up()`: a snapshot twice the sync interval old (a process that was
  idle, or a store slower than the interval) is not answered from: the request waits for
  the sync under way, or starts one. A failure is logged and the old snapshot used.
- `fresh()` waits for a sync that *started after* the call, so a revocation written before
  the request is seen. Callers arriving while a sync is running share the one that follows
  it: under load, strict mode costs one LIST per LIST-duration, not one per request.

Needs asyncio (as obstore does); elsewhere it syncs inline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref

from ..blacklist import TokenBlacklist

logger = logging.getLogger("s3auth_asgi")


class SnapshotSyncer:
    def __init__(self, blacklist: TokenBlacklist) -> None:
        self.blacklist = blacklist
        self._running: asyncio.Task[None] | None = None
        self._next: asyncio.Task[None] | None = None
        self._retry_at = float("-inf")
        self.primed = False

    async def prime(self) -> None:
        """The first check of a process waits for a first snapshot."""
        if not self.primed:
            if self.blacklist.is_stale():
                await self.fresh()
            self.primed = True

    async def fresh(self) -> None:
        """Return once a sync that started after this call has finished (or raise its
        error)."""
        try:
            task = self._schedule()
        except RuntimeError:  # no asyncio loop running
            await self.blacklist.sync()
            return
        await asyncio.shield(task)

    def overdue(self) -> bool:
        """True when the snapshot is at least twice the sync interval old."""
        return self.blacklist.snapshot_age() >= 2 * self.blacklist.sync_seconds

    async def catch_up(self) -> None:
        """Wait for the sync under way, or start one and wait for it; unless the last
        one failed just now. Failures are logged (by `_finished`), not raised."""
        if time.monotonic() < self._retry_at:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            await self.blacklist.sync_if_stale()
            return
        task = self._running
        if task is None or task.done() or task.get_loop() is not loop:
            task = self._schedule()
        # A failure was logged by _finished; the old snapshot keeps serving.
        with contextlib.suppress(Exception):
            await asyncio.shield(task)

    def refresh_in_background(self) -> None:
        """Start a sync unless one is under way or the last one failed just now.

        Called by every request while the snapshot is stale, until the sync finishes:
        the "under way" answer is the cheap one."""
        task = self._next or self._running
        if task is not None and not task.done() and task.get_loop() is _running_loop():
            return
        if time.monotonic() < self._retry_at:
            return
        try:
            self._schedule()
        except RuntimeError:
            logger.warning("revocation snapshot not refreshed: no asyncio event loop")

    def _schedule(self) -> asyncio.Task[None]:
        loop = asyncio.get_running_loop()
        pending = self._next
        if pending is None or pending.done() or pending.get_loop() is not loop:
            running = self._running
            if running is not None and (running.done() or running.get_loop() is not loop):
                running = None
            # Kept in self._next until it starts, then in self._running: never only in
            # the event loop's weak set of tasks.
            pending = self._next = loop.create_task(self._sync_after(running))
            pending.add_done_callback(self._finished)
        return pending

    async def _sync_after(self, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait((previous,))
        this = asyncio.current_task()
        self._running = this
        if self._next is this:
            self._next = None
        await self.blacklist.sync()

    def _finished(self, task: asyncio.Task[None]) -> None:
        if self._running is task:
            self._running = None
        if task.cancelled():
            return
        error = task.exception()  # retrieved here, so a failure is logged exactly once
        if error is not None:
            self._retry_at = time.monotonic() + self.blacklist.sync_seconds
            logger.error("revocation snapshot sync failed: %r", error)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


_syncers: weakref.WeakKeyDictionary[TokenBlacklist, SnapshotSyncer] = weakref.WeakKeyDictionary()


def syncer_for(blacklist: TokenBlacklist) -> SnapshotSyncer:
    """The syncer of this blacklist, shared within the process."""
    syncer = _syncers.get(blacklist)
    if syncer is None:
        syncer = _syncers[blacklist] = SnapshotSyncer(blacklist)
    return syncer
