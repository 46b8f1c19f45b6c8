"""Keeping a process's revocation snapshot fresh without making requests wait for it.

One `SnapshotSyncer` per `TokenBlacklist` (shared by every middleware and the auth app that
use it):

- `refresh_in_background()` starts a sync and returns at once; requests keep being
  answered from the current snapshot while it runs.
- `overdue()` / `catch_up()`: a snapshot twice the sync interval old (a process that was
  idle, or a store slower than the interval) is not answered from: the request waits until
  a sync that saw what was there when it asked has finished. With no snapshot at all a
  failure is raised (the caller answers 503); otherwise it is logged and the old snapshot
  serves. `TokenBlacklist` pauses one interval after a failed sync, so an unreachable store
  is not asked on every request.
- `fresh()` waits for a sync that *started after* the call, so a revocation written before
  the request is seen. Callers arriving while a sync is running share the one that follows
  it: under load, strict mode costs one LIST per LIST-duration, not one per request.

Needs asyncio, as obstore does.
"""

from __future__ import annotations

import asyncio
import logging
import weakref

from ..blacklist import TokenBlacklist
from ..errors import S3AuthError

logger = logging.getLogger("s3auth_asgi")


class SnapshotSyncer:
    def __init__(self, blacklist: TokenBlacklist) -> None:
        self.blacklist = blacklist
        self._background: asyncio.Task[None] | None = None
        self._running: asyncio.Task[None] | None = None
        self._next: asyncio.Task[None] | None = None

    def overdue(self) -> bool:
        """True when the snapshot is at least twice the sync interval old (or missing)."""
        return self.blacklist.snapshot_age() >= 2 * self.blacklist.sync_seconds

    async def catch_up(self) -> None:
        """Return once the snapshot is fresh: callers queue on the blacklist's lock and
        re-check, so a sync that began before the caller asked is followed by another."""
        if not self.blacklist.has_snapshot():
            await self.blacklist.sync_if_stale()
            return
        try:
            await self.blacklist.sync_if_stale()
        except S3AuthError as error:
            logger.error("revocation snapshot sync failed: %r", error)

    def refresh_in_background(self) -> None:
        """Start `catch_up` in the background unless one is under way."""
        loop = asyncio.get_running_loop()
        task = self._background
        if task is not None and not task.done() and task.get_loop() is loop:
            return
        # Kept in self._background: never only in the event loop's weak set of tasks.
        self._background = loop.create_task(self.catch_up())

    async def fresh(self) -> None:
        """Return once a sync that started after this call has finished (or raise its
        error)."""
        await asyncio.shield(self._schedule())

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
            logger.error("revocation snapshot sync failed: %r", error)


_syncers: weakref.WeakKeyDictionary[TokenBlacklist, SnapshotSyncer] = weakref.WeakKeyDictionary()


def syncer_for(blacklist: TokenBlacklist) -> SnapshotSyncer:
    """The syncer of this blacklist, shared within the process."""
    syncer = _syncers.get(blacklist)
    if syncer is None:
        syncer = _syncers[blacklist] = SnapshotSyncer(blacklist)
    return syncer
