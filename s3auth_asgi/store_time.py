"""How far this host's clock is at least ahead of the store's, timed by a write of its own.

The sweep (`cleanup_expired_tokens`) judges what has lapsed by its host's clock, which is
safe while that clock is within the skew allowance (`S3AUTH_REVOCATION_SKEW_SECONDS`) of
every other, the store's among them (`last_modified`). A sweeper further ahead deletes what
other hosts still need: the revocation of an access token they accept (a process started
after it, whose first sync lists every entry, accepts the token again), sessions that
still refresh, links that still work, rate-limit state still owed. No listing can tell:
every Last-Modified is in the past by both clocks. A write can: one probe object
(`keys.probe`), written and read back for its Last-Modified, then deleted. A key change
dated by its writer's clock is timed by it too: the first stored key
(`KeyStore.read_or_create`), and `s3auth keys rotate --now` and `keys retire --now`,
refused by a clock that far ahead.

The bound. The host reads its clock, t, before its PUT is sent, and the PUT lands after
that, when the store's clock reads less than LM + 1 s (a Last-Modified is whole seconds
rounded down, or finer). A host d seconds ahead of the store read t < LM + 1 + d, so
d > t - LM - 1: `clock_lead` is never more than the host's true lead, however long the
PUT took, so a host within the allowance is never taken for one beyond it; a host behind
the store gets a negative lead.

Request budget: 1 PUT, 1 GET, 1 DELETE.
"""

from __future__ import annotations

from .errors import StoreUnavailableError
from .storage import Store, keys
from .storage.access import delete_quietly
from .types import Clock


async def clock_lead(store: Store, clock: Clock) -> float:
    """Seconds by which `clock` is at least ahead of `store`'s clock (see the module);
    negative when it may be behind. StoreUnavailableError when the probe cannot be written
    or read."""
    key = keys.probe()
    started = clock()
    try:
        await store.create(key, {"probe": 1})
        found = await store.get(key, dict)
    except StoreUnavailableError:
        await delete_quietly(store, key)
        raise
    # Not in a `finally`: a command stopped (SIGTERM) while a request hangs must not send
    # another one.
    await delete_quietly(store, key)
    if found is None:  # gone before it was read: nothing to time it by
        return 0.0
    return started - found.last_modified.timestamp() - 1
