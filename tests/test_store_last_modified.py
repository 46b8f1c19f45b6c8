"""What every store's Last-Modified is, as the sweeps that judge by it assume
(`last_modified`): set by the write that landed, no earlier than the whole second in which
its writer read the clock before sending it (whole seconds rounded down, as S3, SeaweedFS
and Azure give it, or finer, as a GCS listing and memory:// do), and no later than the
write's return, the store's clock being the writer's here. A read gives the object's
Last-Modified at the same second or finer, never another write's.
"""

from __future__ import annotations

import math
import time

import pytest
from conftest import on_every_store

from s3auth_asgi.last_modified import lapsed_everywhere
from s3auth_asgi.storage import ObjectInfo, ObjectStore

pytestmark = pytest.mark.anyio

CLOCKS_APART = 0.05
"""Slack for the servers' clocks against this process's: the same machine's clock, read
through another process (a rounding of the last digit, not an offset)."""


async def listed(store: ObjectStore, key: str) -> ObjectInfo:
    [info] = [info async for info in store.list(key.rpartition("/")[0] + "/")]
    assert info.key == key
    return info


def within(written: float, before: float, after: float) -> bool:
    return math.floor(before) <= written <= after + CLOCKS_APART


@on_every_store
async def test_last_modified_is_the_landed_writes_own_second_or_finer(store: ObjectStore) -> None:
    times = []
    for write in ("create", "replace"):
        before = time.time()
        if write == "create":
            etag = await store.create("lm/a.json", {"n": 1})
        else:
            await store.replace("lm/a.json", {"n": 2}, etag)
        after = time.time()
        info = await listed(store, "lm/a.json")
        got = await store.get("lm/a.json", dict)
        assert got is not None
        read, written = got.last_modified.timestamp(), info.last_modified.timestamp()
        assert within(written, before, after), (write, before, written, after)
        assert within(read, before, after), (write, before, read, after)
        # The same write's time: a read's whole second is the listing's.
        assert math.floor(read) == math.floor(written)
        times.append(written)
        # The rule the sweeps apply: not lapsed a lifetime after the write's clock reading
        # (the allowance 0: the store's clock is the writer's), lapsed just past it.
        assert not lapsed_everywhere(info, 60, 0, math.floor(before) + 60)
        assert lapsed_everywhere(info, 60, 0, after + CLOCKS_APART + 60.001)
    assert times[1] >= times[0]
