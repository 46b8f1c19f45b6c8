"""How accounts and sessions use the store beyond the bare `Store` contract: a read where a
corrupt object counts as absent, bounded concurrent reads, a listing taken in batches, a
page of a listing that holds the caller's own objects alone, best-effort deletes for
clean-up after a failure, and the wait before reading again after a conditional write lost
a race. Each costs exactly the requests of the calls it makes."""

from __future__ import annotations

import contextlib
import inspect
import logging
import random
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

import anyio

from ..errors import S3AuthError, S3ValidationError
from .base import CorruptObjectError, Store, Versioned

T = TypeVar("T")

logger = logging.getLogger("s3auth_asgi")

# Bounded so that reading a page of 1,000 users does not open 1,000 requests at once.
READ_CONCURRENCY = 16


async def get_or_none(store: Store, key: str, type_: type[T]) -> Versioned[T] | None:
    """A GET where a corrupt object counts as absent (and is logged), so that one
    damaged object cannot break anybody else's request."""
    try:
        return await store.get(key, type_)
    except CorruptObjectError:
        logger.warning("ignoring a corrupt object: %s", key)
        return None


async def back_off(attempt: int) -> None:
    """Wait before re-reading an object whose conditional write lost a race (`attempt`
    from 0): full jitter, doubling from 5 ms (a store round trip is 1–20 ms; a shorter wait
    has the losers of a race meet again at once), so that the writers that collided do not
    collide again."""
    await anyio.sleep(random.uniform(0, 0.005 * 2**attempt))  # noqa: S311


async def delete_quietly(store: Store, *object_keys: str) -> None:
    """Best effort, for clean-ups after a failure: a reservation left behind expires
    on its own, an expired session is swept by cleanup_expired_tokens."""
    with contextlib.suppress(S3AuthError):
        await store.delete_many(object_keys)


async def gather(calls: Sequence[Awaitable[T]], *, limit: int = READ_CONCURRENCY) -> list[T]:
    """Await `calls` concurrently, at most `limit` at a time, keeping their order.

    `limit` tasks take the calls in turn: a task per call, all started at once, would hold
    the event loop for as long as starting thousands of them takes (a user's sessions past
    a high cap, a first revocation sync), and keep them all in memory while they wait."""
    results: dict[int, T] = {}
    pending = iter(enumerate(calls))

    async def take_turns() -> None:
        for i, call in pending:
            results[i] = await call

    try:
        async with anyio.create_task_group() as tg:
            for _ in range(min(limit, len(calls))):
                tg.start_soon(take_turns)
    except BaseExceptionGroup as group:
        # Callers handle the error of one request (a StoreUnavailableError is a 503), as
        # they would had the requests been made one after another.
        raise _first_of(group) from None
    finally:
        for _, call in pending:  # never started: closed, not left for the collector
            if inspect.iscoroutine(call):
                call.close()
    return [results[i] for i in range(len(calls))]


async def batches(items: AsyncIterable[T], size: int) -> AsyncIterator[list[T]]:
    """`items` (a listing, say) in lists of `size`, the last shorter and none empty, each
    given as soon as it is full: nothing more is taken from `items` while it is at work, so
    a walk of a whole prefix holds a batch and the listing's current page, not the prefix."""
    batch: list[T] = []
    async for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def check_page_size(limit: object, most: int) -> None:
    """S3ValidationError unless `limit`, the size of a page as a caller asked for it, is a
    whole number from 1 to `most` (not a bool)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= most:
        raise S3ValidationError(f"limit must be a whole number between 1 and {most}")


async def named_page(
    store: Store,
    prefix: str,
    offset: str | None,
    limit: int,
    name_of: Callable[[str], str | None],
) -> tuple[list[str], bool]:
    """The names of up to `limit` of the caller's objects under `prefix` after `offset`,
    in key order, and whether more objects follow. `name_of` gives a listed key's name, or
    None for another tool's object (a backup beside a record, notes), which is passed
    over: a page of such objects alone is followed by the next (1 LIST more each), so that
    a page with a name ends at one, and a cursor taken from it is always a name."""
    while True:
        listed, more = await store.list_page(prefix, offset, limit)
        names = [name for info in listed if (name := name_of(info.key)) is not None]
        if names or not more:
            return names, more
        offset = listed[-1].key


def _first_of(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_of(first) if isinstance(first, BaseExceptionGroup) else first
