"""SnapshotFreshness: when a process's snapshot of shared state is fresh enough, and how to
catch up when it is not. The one policy every reader of revocations follows
(BlacklistMiddleware, the auth app, `S3AuthService.decode_token`,
`TokenBlacklist.is_blacklisted`), and the key ring's for the signing keys.

With `interval` the sync interval and `age` the time since the last successful sync began,
on a clock no step of the host's clock moves (`types.elapsed_clock`), or on the wall clock
where that says more: a monotonic clock does not count a pause of the whole machine (a
suspended host, a paused VM on some hypervisors), which the wall clock does once it is set
right on resuming, and a step of the wall clock forward costs one sync early at most:

    age < interval              fresh: answer from the snapshot
    interval <= age < 2·interval  stale: answer from the snapshot, sync in the background
    age >= 2·interval, or none  overdue: wait for a sync that began after the call

So a revocation written anywhere is seen by every request that starts more than twice the
interval after its write returned (and, under steady traffic, more than one interval plus
one listing after it): the first sync begun after that lists it (`blacklist`). A sync
that fails is logged and the old snapshot keeps serving; the next try waits one interval,
so an unreachable store is not asked on every request. With no snapshot at all there is
nothing to answer from: the failure is raised (a 503), to every caller that was waiting
for that sync, which none of them repeats; a caller that cannot wait starts no try
within one interval of a failed one, snapshot or not. A sync that fails with an error
that is not the package's (a bug in its source) fails alike, as StoreUnavailableError,
never a 500; its traceback is logged once per interval.

`strict` waits, on every call, for a sync that began after the call, so a revocation
written before the request is seen. Callers arriving while a sync runs share the one that
follows it: under load that costs one listing per listing-duration, not one per request.

Needs asyncio, as obstore does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from .errors import S3AuthError, StoreUnavailableError
from .types import Clock

logger = logging.getLogger("s3auth_asgi")


def age_since(clock: Clock, started: float, wall: Clock | None, started_wall: float) -> float:
    """Seconds since a moment read as `started` on `clock`, which no step of the host's
    clock moves (`types.elapsed_clock`), and as `started_wall` on `wall`, the wall clock:
    the larger of the two, so a pause of the whole machine counts (see the module);
    `clock`'s alone without `wall` (a test's clock, both in one)."""
    age = clock() - started
    return age if wall is None else max(age, wall() - started_wall)


class SnapshotFreshness:
    """Owns the timing of syncs: `sync_once` lists what is new and updates the snapshot;
    `clock` measures ages and pauses (the owner's `types.elapsed_clock`); `wall`, the
    owner's wall clock, ages the snapshot too where it says more (see the module)."""

    def __init__(
        self,
        sync_once: Callable[[], Awaitable[int]],
        *,
        interval: float,
        clock: Clock,
        wall: Clock | None = None,
        name: str = "revocation snapshot",
    ) -> None:
        self.interval = interval
        self.name = name
        self._sync_once = sync_once
        self._clock = clock
        # A wall clock that is the monotonic one (a test's) says nothing more.
        self._wall = None if wall is clock else wall
        self._synced_at = float("-inf")  # when the last successful sync began
        self._synced_wall = float("-inf")  # the same, on the wall clock
        self._failed_at = float("-inf")
        self._ended = 0  # syncs that succeeded or failed, so a waiter knows one ended
        self._failure: S3AuthError | None = None  # the last one's, if it failed
        self._bug_reported_at = float("-inf")
        self._lock = anyio.Lock()
        self._background: asyncio.Task[None] | None = None
        self._running: asyncio.Task[int] | None = None
        self._next: asyncio.Task[int] | None = None

    # State ---------------------------------------------------------------------------

    def age(self) -> float:
        """Seconds since the last successful sync began (infinite before the first):
        `age_since`'s rule, written out, as this runs on every authenticated request."""
        age = self._clock() - self._synced_at
        wall = self._wall
        if wall is None:
            return age
        wall_age = wall() - self._synced_wall
        return wall_age if wall_age > age else age

    def has_snapshot(self) -> bool:
        return self._synced_at > float("-inf")

    def is_stale(self) -> bool:
        return self.age() >= self.interval

    def _due(self) -> bool:
        """Stale, and not inside the pause after a failed sync (a pause only while there
        is a snapshot to serve from: a caller with none waits for a sync of its own)."""
        if not self.is_stale():
            return False
        return not self.has_snapshot() or not self._pausing()

    def _pausing(self) -> bool:
        """Within one interval of a failed sync's start."""
        return self._clock() - self._failed_at < self.interval

    # The policy ----------------------------------------------------------------------

    async def ensure(self, *, strict: bool = False) -> None:
        """Return when the snapshot may be answered from (see the module docstring)."""
        if strict:
            await self.sync_started_after_now()
            return
        age = self.age()  # read once: this runs on every authenticated request
        if age >= 2 * self.interval:
            await self.catch_up()
        elif age >= self.interval:
            self.start_in_background()

    def start_in_background_if_stale(self) -> None:
        """The policy for callers that cannot wait: a stale snapshot starts a catch-up
        in the background (unless one is under way, or a failed one is pausing); the caller
        answers from what there is. Without a running event loop there is nothing to run
        it on. Called on every token verified: a fresh snapshot costs one clock reading.

        The pause holds with no snapshot too: such a caller answers without one whatever
        a sync does, and a failure nobody waits for is only logged, so a store down since
        the start (or keys that do not open) costs one try and one line an interval, not
        one per call."""
        if self.is_stale() and not self._pausing():
            self.start_in_background()

    def start_in_background(self) -> None:
        """Start a catch-up unless one is under way."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = self._background
        if task is not None and not task.done() and task.get_loop() is loop:
            return
        # Kept in self._background: never only in the event loop's weak set of tasks.
        self._background = loop.create_task(self.catch_up())
        # Nobody awaits it: a failure (possible only without a snapshot) is logged here.
        self._background.add_done_callback(self._log_failure)

    async def stop_background(self) -> None:
        """End the catch-up `start_in_background` started, if it still runs on this event
        loop: at a host's shutdown, so that no sync outlives it. Nobody awaits that task,
        and the snapshot it would bring up to date dies with the process; a later stale
        request starts another. The syncs that requests await are theirs to finish."""
        task = self._background
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            return
        task.cancel()
        await asyncio.wait((task,))

    async def catch_up(self) -> None:
        """Sync when due. Callers queue on the lock and re-check, so one that queued
        behind a sync that began after it asked does not repeat it. Behind a sync that
        failed with no snapshot to answer from, a caller takes that failure rather than
        trying again: callers arriving together cost one attempt, and wait for one."""
        try:
            if self._due():
                ended = self._ended
                async with self._lock:
                    if self._ended != ended and self._failure and not self.has_snapshot():
                        raise self._failure
                    if self._due():
                        await self._sync_locked()
        except S3AuthError as error:
            if not self.has_snapshot():
                raise
            logger.error("%s sync failed: %r", self.name, error)

    # Syncing -------------------------------------------------------------------------

    async def sync(self) -> int:
        """Sync now, whatever the age; returns how many entries were new."""
        async with self._lock:
            return await self._sync_locked()

    async def _sync_locked(self) -> int:
        started = self._clock()
        started_wall = float("-inf") if self._wall is None else self._wall()
        try:
            new = await self._sync_once()
        except S3AuthError as error:
            self._failed_at, self._failure = started, error
            self._ended += 1
            raise
        except Exception as exc:
            # Not one of ours, so a bug rather than the store: still a failed sync, which
            # pauses the next one, or every request would start a read that fails alike.
            # Callers see the failure they are promised (a 503 with no snapshot, the old
            # snapshot otherwise), never the bug itself as a 500 on every request.
            failure = StoreUnavailableError()
            self._failed_at, self._failure = started, failure
            self._ended += 1
            self._report_bug(exc, started)
            raise failure from exc
        self._synced_at, self._synced_wall, self._failure = started, started_wall, None
        self._ended += 1
        return new

    def _report_bug(self, exc: Exception, now: float) -> None:
        # Its traceback is what finds the bug; once per interval is enough to find it.
        if now - self._bug_reported_at >= self.interval:
            self._bug_reported_at = now
            logger.error("%s sync failed with an unexpected error", self.name, exc_info=exc)

    async def sync_started_after_now(self) -> None:
        """Return once a sync that started after this call has finished (or raise its
        error)."""
        await asyncio.shield(self._schedule())

    def _schedule(self) -> asyncio.Task[int]:
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

    async def _sync_after(self, previous: asyncio.Task[int] | None) -> int:
        if previous is not None:
            await asyncio.wait((previous,))
        if self._next is asyncio.current_task():
            self._running, self._next = self._next, None
        return await self.sync()

    def _finished(self, task: asyncio.Task[int]) -> None:
        if self._running is task:
            self._running = None
        self._log_failure(task)

    def _log_failure(self, task: asyncio.Task[Any]) -> None:
        """Retrieve a finished task's error, so it is logged exactly once, here."""
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("%s sync failed: %r", self.name, error)
