"""A refresh that found its token current and lost the write to rotations of the same
session made meanwhile: whatever it then finds, it is concurrent with them, and ends
nothing. A token that was already old when it was read is a reuse, and ends the session.
"""

from __future__ import annotations

from typing import Any

import pytest
from support import SharedTime, StoreWrapper, skewed_host

from s3auth_asgi import (
    RefreshTokenReuseError,
    RotatedMeanwhileError,
    S3AuthService,
    TokenPair,
    TokenRevokedError,
)
from s3auth_asgi.storage import ObjectStore, Store

pytestmark = pytest.mark.anyio
PASSWORD = "Correct-Horse-42x"


class StalledReplace(StoreWrapper):
    """Holds the next conditional PUT while `meanwhile` rotates the session on another host
    (`rotations` times, a second apart), then lets it through, to be refused."""

    def __init__(self, inner: Store, time: SharedTime, rotations: int) -> None:
        super().__init__(inner)
        self.time, self.rotations = time, rotations
        self.winner: S3AuthService | None = None
        self.pairs: list[TokenPair] = []

    async def call(self, name: str, run: Any) -> Any:
        if name == "replace" and self.winner is not None:
            winner, self.winner = self.winner, None
            for _ in range(self.rotations):
                self.pairs.append(await winner.refresh_access_token(self.pairs[-1].refresh_token))
                self.time.advance(1)
        return await run()


async def raced(rotations: int) -> tuple[S3AuthService, S3AuthService, StalledReplace]:
    """A winner and a loser host on one store; the session's first pair in `pairs[0]`, and
    the loser's next conditional PUT stalled for `rotations` rotations by the winner."""
    time, inner = SharedTime(), ObjectStore.from_url("memory://")
    stalled = StalledReplace(inner, time, rotations)
    winner, loser = skewed_host(inner, time, 0.0), skewed_host(stalled, time, 0.0)
    alice = await winner.create_user("alice", "alice@example.com", PASSWORD)
    stalled.pairs.append(await winner.create_token_pair(alice))
    for host in (winner, loser):  # fresh snapshots: no refresh below waits for a sync
        await host.blacklist.sync()
    stalled.winner = winner
    return winner, loser, stalled


@pytest.mark.parametrize("rotations", [2, 3])
async def test_a_stalled_loser_of_rotations_is_refused_and_ends_nothing(rotations: int) -> None:
    """The same client's other request rotated the token on another host while this one's
    write was held in the store, and the client promptly rotated again: this refresh is
    refused, and the client's current token and its access tokens go on working."""
    winner, loser, stalled = await raced(rotations)
    loser.store.reset_counts()
    with pytest.raises(TokenRevokedError) as refused:
        await loser.refresh_access_token(stalled.pairs[0].refresh_token)
    assert type(refused.value) is RotatedMeanwhileError  # not a reuse
    # Its GET, LIST and refused conditional PUT, then its second GET; the winner's GET, LIST
    # and PUT per rotation. No revocation written, nothing deleted.
    expected = {"get": 2 + rotations, "list": 1 + rotations, "put": 1 + rotations}
    assert dict(loser.store.requests) == expected
    current = stalled.pairs[-1]
    await loser.blacklist.sync()
    assert loser.decode_token(current.access_token)["sub"]
    assert await winner.refresh_access_token(current.refresh_token)


async def test_the_loser_of_one_rotation_still_gets_the_winners_pair() -> None:
    winner, loser, stalled = await raced(1)
    answered = await loser.refresh_access_token(stalled.pairs[0].refresh_token)
    assert answered.refresh_token == stalled.pairs[-1].refresh_token
    assert await winner.refresh_access_token(answered.refresh_token)


async def test_the_token_two_rotations_old_when_read_ends_the_session() -> None:
    """The refused client presents its token again: now it is read as two rotations old,
    a reuse (had a thief made those rotations, this is where it is caught)."""
    winner, loser, stalled = await raced(2)
    first = stalled.pairs[0].refresh_token
    with pytest.raises(TokenRevokedError):
        await loser.refresh_access_token(first)
    loser.store.reset_counts()
    with pytest.raises(RefreshTokenReuseError):
        await loser.refresh_access_token(first)
    # The session marked as reused (If-Match), its revocation, its DELETE.
    assert dict(loser.store.requests) == {"get": 1, "put": 2, "delete": 1}
    with pytest.raises(TokenRevokedError):
        await winner.refresh_access_token(stalled.pairs[-1].refresh_token)
    await winner.blacklist.sync()
    with pytest.raises(TokenRevokedError):
        winner.decode_token(stalled.pairs[-1].access_token)
