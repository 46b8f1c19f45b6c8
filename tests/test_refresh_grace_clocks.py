"""The refresh grace window judged by hosts whose clocks disagree.

Two services share one `file://` store; each reads a common time (which the test moves by
hand) through its own offset. The rotation's time is written by the host that rotated, and
the previous token is judged against it by whichever host it reaches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support import SharedTime, StoreOnSharedTime, StoreWrapper, skewed_host

from s3auth_asgi import RefreshTokenReuseError, S3AuthService, TokenPair
from s3auth_asgi.storage import ObjectStore, Store, keys

pytestmark = pytest.mark.anyio
PASSWORD = "Correct-Horse-42x"


def file_store(tmp_path: Path) -> Store:
    return ObjectStore.from_url(f"file://{tmp_path / 'store'}")


async def opened(service: S3AuthService) -> tuple[str, TokenPair]:
    alice = await service.create_user("alice", "alice@example.com", PASSWORD)
    return alice.id, await service.create_token_pair(alice)


@pytest.mark.parametrize("offset", [10.5, 60.0, -60.0], ids=lambda o: f"{o:+.1f}s")
async def test_the_loser_of_a_rotation_race_gets_the_winners_pair_whatever_its_clock(
    tmp_path: Path, offset: float
) -> None:
    """A refresh that found its token current and then lost the write to another host's
    rotation of it is concurrent with that rotation, whatever the two clocks say."""
    time, inner = SharedTime(), file_store(tmp_path)

    class WinnerFirst(StoreWrapper):
        interfering = True

        async def call(self, name: str, run: Any) -> Any:
            if name == "replace" and self.interfering:
                self.interfering = False
                won.append(await winner.refresh_access_token(pair.refresh_token))
            return await run()

    won: list[TokenPair] = []
    winner = skewed_host(inner, time, 0.0)
    loser = skewed_host(WinnerFirst(inner), time, offset)
    user_id, pair = await opened(winner)
    answered = await loser.refresh_access_token(pair.refresh_token)
    assert answered.refresh_token == won[0].refresh_token
    assert len(await winner.get_user_active_sessions(user_id)) == 1
    assert await winner.refresh_access_token(answered.refresh_token)  # the session lives on


@pytest.mark.parametrize(("offset", "after"), [(8.0, 3.0), (10.0, 9.5)])
async def test_a_retry_within_the_grace_on_a_host_ahead_within_the_allowance_is_answered(
    tmp_path: Path, offset: float, after: float
) -> None:
    """The client lost the rotation's answer and retries `after` seconds later, on a host
    whose clock runs `offset` ahead (within the default allowance of 10 s)."""
    time, store = SharedTime(), file_store(tmp_path)
    first, second = skewed_host(store, time, 0.0), skewed_host(store, time, offset)
    assert second.settings.revocation_skew_seconds == 10
    user_id, pair = await opened(first)
    rotated = await first.refresh_access_token(pair.refresh_token)  # its answer is lost
    time.advance(after)
    retried = await second.refresh_access_token(pair.refresh_token)
    assert retried.refresh_token == rotated.refresh_token
    assert len(await first.get_user_active_sessions(user_id)) == 1


@pytest.mark.parametrize(
    ("skew", "window"),
    [(10, 20.0), (4, 14.0), (300, 20.0)],
    ids=["default", "allowance-below-grace", "allowance-capped-at-grace"],
)
async def test_the_previous_token_is_answered_for_the_grace_plus_the_allowance_at_most_twice(
    tmp_path: Path, skew: int, window: float
) -> None:
    """On hosts whose clocks agree, the previous token is answered for the grace (10 s)
    plus the skew allowance, but never more than the grace again: a larger allowance would
    lengthen the time a stolen previous token goes unnoticed by as much."""
    time, store = SharedTime(), file_store(tmp_path)
    settings: dict[str, Any] = {"revocation_skew_seconds": skew, "leeway_seconds": min(skew, 5)}
    first, second = (
        skewed_host(store, time, 0.0, **settings),
        skewed_host(store, time, 0.0, **settings),
    )
    assert second.settings.refresh_grace_seconds == 10
    user_id, pair = await opened(first)
    rotated = await first.refresh_access_token(pair.refresh_token)
    time.advance(window - 0.5)
    assert (await second.refresh_access_token(pair.refresh_token)).refresh_token == (
        rotated.refresh_token
    )
    time.advance(0.5)
    with pytest.raises(RefreshTokenReuseError):
        await second.refresh_access_token(pair.refresh_token)
    assert await first.get_user_active_sessions(user_id) == []


@pytest.mark.parametrize("offset", [0.0, -4.0, -10.0], ids=lambda o: f"{o:+.1f}s")
async def test_without_a_grace_the_previous_token_is_a_reuse_on_a_host_behind_too(
    tmp_path: Path, offset: float
) -> None:
    """A grace of 0 stays 0: on a host whose clock is behind the rotating one's (within
    the allowance), the rotation looks as if it were yet to come, which must not answer a
    spent token with the session's current pair."""
    time, store = SharedTime(), file_store(tmp_path)
    first = skewed_host(store, time, 0.0, refresh_grace_seconds=0)
    second = skewed_host(store, time, offset, refresh_grace_seconds=0)
    user_id, pair = await opened(first)
    await first.refresh_access_token(pair.refresh_token)
    with pytest.raises(RefreshTokenReuseError):
        await second.refresh_access_token(pair.refresh_token)
    assert await first.get_user_active_sessions(user_id) == []


async def test_a_retry_is_timed_from_its_arrival_not_from_when_the_keys_were_read(
    tmp_path: Path,
) -> None:
    """The host the retry reaches has not read the stored signing keys for two sync
    intervals, so it reads them before answering, and the store takes 20 s to answer that
    read. The retry came 3 s after the rotation: prompt, and answered; the store's delay
    is not the client's. The store's clock keeps the hosts' time (the rotation's time is
    held to its Last-Modified)."""
    time, counted = SharedTime(), file_store(tmp_path)
    inner = StoreOnSharedTime(counted, lambda: time.now)

    class SlowKeyRead(StoreWrapper):
        slow = False

        async def get(self, key: str, type_: Any) -> Any:
            found = await self.inner.get(key, type_)
            if self.slow and key == keys.SIGNING_KEYS:
                time.advance(20)
            return found

    slow = SlowKeyRead(inner)
    stored_keys = {"algorithm": "ES256", "key_sync_seconds": 60}
    first = skewed_host(inner, time, 0.0, **stored_keys)
    # Its revocations synced just before, and not overdue after the slow read.
    second = skewed_host(slow, time, 0.0, revocation_sync_seconds=60, **stored_keys)
    user_id, pair = await opened(first)
    await second.tokens.signing_key()
    time.advance(2 * 60 + 1)  # the second host's keys are overdue: it waits for them
    rotated = await first.refresh_access_token(pair.refresh_token)  # its answer is lost
    time.advance(3)
    await second.blacklist.sync()
    slow.slow = True
    store_reads = counted.requests["get"]  # type: ignore[attr-defined]
    retried = await second.refresh_access_token(pair.refresh_token)
    # The keys, then the session.
    assert counted.requests["get"] - store_reads == 2  # type: ignore[attr-defined]
    assert retried.refresh_token == rotated.refresh_token
    assert len(await first.get_user_active_sessions(user_id)) == 1


async def test_a_rotation_by_a_clock_an_hour_ahead_gives_a_stolen_token_no_hour_of_grace(
    tmp_path: Path,
) -> None:
    """A host that booted with its clock an hour ahead rotates a session, then NTP sets its
    clock right. The rotation's time is an hour ahead of every right clock: the previous
    token, replayed minutes later, is a reuse there as on any host, not a retry within a
    grace that would last the hour."""
    time, store = SharedTime(), file_store(tmp_path)
    booted, exact = skewed_host(store, time, 3600.0), skewed_host(store, time, 0.0)
    user_id, pair = await opened(booted)
    await booted.refresh_access_token(pair.refresh_token)
    booted.clock.offset = 0.0  # type: ignore[attr-defined]
    time.advance(300)
    with pytest.raises(RefreshTokenReuseError):
        await exact.refresh_access_token(pair.refresh_token)
    assert await booted.get_user_active_sessions(user_id) == []


async def test_a_prompt_retry_after_a_rotation_by_a_clock_far_ahead_is_answered(
    tmp_path: Path,
) -> None:
    """The rotation's time held to the store's clock still leaves a client that lost the
    rotation's answer its grace."""
    time, store = SharedTime(), file_store(tmp_path)
    booted, exact = skewed_host(store, time, 3600.0), skewed_host(store, time, 0.0)
    _, pair = await opened(booted)
    rotated = await booted.refresh_access_token(pair.refresh_token)
    time.advance(1)
    retried = await exact.refresh_access_token(pair.refresh_token)
    assert retried.refresh_token == rotated.refresh_token
