"""`s3auth cleanup`: the service's clean-up (`S3AuthService.cleanup_expired_tokens`: expired
sessions, revocations, mailed tokens, audit events and rate-limit objects whose state has
passed), showing the requests made. It first times its clock against the store's
(`store_time`) and sweeps nothing by a clock further ahead than the skew allowance: what
it would delete, other hosts may still need."""

from __future__ import annotations

import time

from ..storage import Store
from ..store_time import clock_lead
from ..types import Clock
from .clock_ahead import refuse_when_ahead
from .context import Context
from .failures import OK
from .progress import Progress

PROGRESS_KINDS = ("list", "delete", "get")
CLOCK: Clock = time.time
"""The moment the command acts at: what has expired is decided against it."""
SWEEP_HARM = (
    "by it the sweep would delete revocations, sessions and links that other hosts still "
    "need; nothing was deleted"
)


def run_cleanup(ctx: Context) -> int:
    service = ctx.service(clock=CLOCK)

    async def cleanup() -> int:
        skew = service.settings.revocation_skew_seconds
        # The store as given, not held to the check of its conditional writes: the probe
        # needs neither, and the sweep only reads and deletes.
        lead = await clock_lead(service.store_check.store, CLOCK)
        refuse_when_ahead(lead, skew, SWEEP_HARM)
        requests = RequestCount(service.store)  # the sweep's, the probe's aside
        progress = Progress(ctx.err, "cleaning up", requests.describe)
        started = time.perf_counter()
        deleted = await progress.show(service.cleanup_expired_tokens)
        elapsed = time.perf_counter() - started
        print(
            f"deleted {deleted} expired object(s) in {elapsed:.1f} s ({requests.describe()})",
            file=ctx.out,
        )
        return OK

    return ctx.run(cleanup)


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
