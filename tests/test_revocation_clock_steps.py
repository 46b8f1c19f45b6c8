"""A long-running process whose wall clock steps (NTP correcting a host that ran ahead, a
clock set by hand) shares a store with a host on the right clock: no revocation written by
either is missed across the step.

The stepping host's monotonic clock is the true time's pace, which no step moves.
"""

from __future__ import annotations

import pytest
from conftest import make_settings
from support import SharedTime, SkewedClock

from s3auth_asgi import TokenBlacklist
from s3auth_asgi.storage import ObjectStore, keys

pytestmark = pytest.mark.anyio
HOUR = 3600.0
SESSION = "sessionBBBBBBBBBBBBBBB"
TOKEN = {"jti": "j", "sid": SESSION}


def hosts(
    offset: float,
) -> tuple[SharedTime, ObjectStore, SkewedClock, TokenBlacklist, TokenBlacklist]:
    true_time, store = SharedTime(), ObjectStore.from_url("memory://")
    clock = SkewedClock(true_time, offset)
    reader = TokenBlacklist(
        store, lookback_seconds=1805, clock=clock, monotonic=lambda: true_time.now
    )
    writer = TokenBlacklist.from_settings(store, make_settings(), clock=SkewedClock(true_time, 0.0))
    return true_time, store, clock, reader, writer


async def test_a_revocation_listed_while_the_clock_ran_ahead_holds_once_it_is_set_back() -> None:
    """A host that booted an hour ahead takes a logout on the right host for long over (its
    tokens are expired by that clock, too). Once NTP sets its clock back, the session's
    tokens are current again: the logout must hold again, though it was listed before."""
    true_time, store, clock, reader, writer = hosts(HOUR)
    await writer.revoke_session(SESSION)
    await reader.ensure_fresh()
    true_time.advance(60)  # the entry is out of the listing overlap
    await reader.ensure_fresh()
    clock.offset = 0.0
    true_time.advance(2 * reader.sync_seconds)
    store.reset_counts()
    await reader.ensure_fresh()
    assert reader.revoked_error(TOKEN) is not None
    # The whole list again, once: what the clock ahead judged over may hold now.
    assert dict(store.requests) == {"list": 1, "get": 1}
    store.reset_counts()
    true_time.advance(2 * reader.sync_seconds)
    await reader.ensure_fresh()
    assert reader.revoked_error(TOKEN) is not None
    assert dict(store.requests) == {"list": 1, "get": 1}


async def test_a_revocation_forgotten_while_the_clock_ran_ahead_holds_once_it_is_set_back() -> None:
    """A host on the right clock holds a logout; its clock is set an hour forward by hand
    (the logout ends meanwhile by that clock, and is forgotten), then set right again."""
    true_time, _, clock, reader, writer = hosts(0.0)
    await writer.revoke_session(SESSION)
    await reader.ensure_fresh()
    assert reader.revoked_error(TOKEN) is not None
    clock.offset = HOUR
    true_time.advance(2 * reader.sync_seconds)
    await reader.ensure_fresh()
    # Nothing written meanwhile is skipped: the listing starts where the last one began.
    await writer.revoke_session("sessionCCCCCCCCCCCCCCC")
    true_time.advance(2 * reader.sync_seconds)
    await reader.ensure_fresh()
    clock.offset = 0.0
    true_time.advance(2 * reader.sync_seconds)
    await reader.ensure_fresh()
    assert reader.revoked_error(TOKEN) is not None
    assert reader.revoked_error({"sid": "sessionCCCCCCCCCCCCCCC"}) is not None


async def test_a_token_revoked_by_its_id_while_the_clock_ran_ahead_stays_revoked() -> None:
    """The host an hour ahead revokes one of its own tokens just past its `exp` (the sync
    after forgets it, though its key is still in the listing overlap); the clock set back,
    the token is current again, and so must its revocation be."""
    true_time, _, clock, reader, _ = hosts(HOUR)
    exp = int(clock()) - reader.skew_ms // 1000 - 1
    await reader.add("j", exp)
    true_time.advance(1)
    await reader.sync()
    clock.offset = 0.0
    true_time.advance(2 * reader.sync_seconds)
    await reader.ensure_fresh()
    assert await reader.is_blacklisted("j")


async def test_a_clock_stepped_back_by_less_than_a_second_lists_from_the_cursor() -> None:
    true_time, store, clock, reader, writer = hosts(0.5)
    await reader.ensure_fresh()
    clock.offset = 0.0
    await writer.revoke_session(SESSION)
    true_time.advance(2 * reader.sync_seconds)
    began_ms = int(true_time.now * 1000)
    # Written before the overlap of the last sync: not listed again.
    await store.create(
        keys.revocation(began_ms - 60_000, "session", int(true_time.now) + 600, "old"), {}
    )
    await reader.ensure_fresh()
    assert reader.revoked_error(TOKEN) is not None
    assert reader.revoked_error({"sid": "old"}) is None


async def test_a_logout_written_while_the_process_was_paused_holds_at_once_after_it() -> None:
    """A VM paused for ten minutes (or a machine suspended): its monotonic clock does not count
    the pause, its wall clock is set right on resuming. A logout written on the right host
    meanwhile returned long before the first request after the pause: it holds there."""
    true_time, store = SharedTime(), ObjectStore.from_url("memory://")
    paused = 0.0
    reader = TokenBlacklist(
        store,
        lookback_seconds=1805,
        clock=SkewedClock(true_time, 0.0),
        monotonic=lambda: true_time.now - paused,
    )
    writer = TokenBlacklist.from_settings(store, make_settings(), clock=SkewedClock(true_time, 0.0))
    await reader.ensure_fresh()
    true_time.advance(1)
    await writer.revoke_session(SESSION)
    true_time.advance(600)
    paused = 600
    store.reset_counts()
    await reader.ensure_fresh()
    assert reader.revoked_error(TOKEN) is not None
    assert dict(store.requests) == {"list": 1, "get": 1}
