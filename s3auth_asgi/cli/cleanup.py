"""`s3auth cleanup`: delete expired sessions, revocations and rate-limit objects whose state
has passed, showing the requests made."""

from __future__ import annotations

import datetime as dt
import time

from ..ratelimit import ObjectStoreRateLimitStore
from ..service import S3AuthService
from ..storage import Store
from ..types import Clock
from .context import Context, run_async
from .failures import OK
from .progress import Progress

PROGRESS_KINDS = ("list", "delete", "get")
CLOCK: Clock = time.time
"""The moment the command acts at: what has expired is decided against it."""


def run_cleanup(ctx: Context) -> int:
    service = ctx.service(clock=CLOCK)
    requests = RequestCount(service.store)
    progress = Progress(ctx.err, "cleaning up", requests.describe)

    async def both() -> tuple[int, int]:
        return await service.cleanup_expired_tokens(), await delete_expired_limits(service)

    async def cleanup() -> int:
        started = time.perf_counter()
        deleted, limits = await progress.show(both)
        elapsed = time.perf_counter() - started
        print(
            f"deleted {deleted} expired session(s) and revocation entries, {limits} expired "
            f"rate-limit object(s) in {elapsed:.1f} s ({requests.describe()})",
            file=ctx.out,
        )
        return OK

    return run_async(cleanup)


async def delete_expired_limits(service: S3AuthService) -> int:
    """Delete the rate-limit objects whose state has passed at the service's clock; how
    many. The auth app's limits (`stored_auth_limits`) are judged from the listing by the
    windows the settings give them, looked for whatever S3AUTH_RATE_LIMIT_STORE says now
    (objects kept while it said `store` are garbage all the same); any other limit's
    objects (the host's own) are read, their windows being the host code's."""
    # The app package (and the framework it loads) for this command only.
    from ..app.limits import default_limiter, stored_auth_limits

    limiter = default_limiter(service.settings, store=service.store, clock=service.clock)
    shared = ObjectStoreRateLimitStore(service.store, clock=service.clock)
    now = dt.datetime.fromtimestamp(service.clock(), dt.UTC)
    return await shared.delete_expired(stored_auth_limits(limiter), now=now)


class RequestCount:
    """The LIST pages, DELETE batches and GETs `store` has been asked for since this was
    made."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._baseline = dict(store.requests)

    def counts(self) -> dict[str, int]:
        return {
            kind: self.store.requests[kind] - self._baseline.get(kind, 0) for kind in PROGRESS_KINDS
        }

    def describe(self) -> str:
        counts = self.counts()
        return (
            f"{counts['list']} list page(s), {counts['delete']} delete batch(es), "
            f"{counts['get']} object read(s)"
        )
