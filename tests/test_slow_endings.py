"""An ending slow to land, and a refresh on another host that lands before it.

An ending that writes its revocation, then deletes the sessions (a disabling, the cap): a
refresh on another host (one that has not synced the revocation yet) that reads a session
before the DELETE, and writes its rotation before the DELETE lands (or answers the
previous token within the grace), issues an access token after the revocation's time. A
logout deletes first, and writes its revocation after the DELETE has landed: such a
refresh issues its token before the revocation's time, and one that runs while the
revocation is slow to land finds no session. Either way, once the ending has answered,
that token must be refused wherever the revocation is known for as long as any host
accepts it: its whole lifetime, not only the part that a revocation timed before it was
issued covers.

Hosts share one store (memory://; for a logout, a real S3 server and Azure too) and one
clock moved by hand. The store takes 12 s to answer the ending's DELETE (more than the
10 s skew allowance every host holds a revocation past its end); or 4 s to land its
revocation (less than the half of the allowance after which the revocation is written
again for readers to list it, `blacklist`), while the refreshing host runs 8 s ahead,
within the allowance.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import pytest
from support import SharedTime, StoreWrapper, skewed_host, stored_user

from s3auth_asgi import InvalidTokenError, TokenPair, TokenRevokedError
from s3auth_asgi.storage import ObjectStore, Store, keys

pytestmark = pytest.mark.anyio
SLOW = {"delete": (12.0, 0.0), "revocation": (4.0, 8.0)}
"""Which request of the ending is slow: how long it takes, and how far ahead the
refreshing host's clock runs."""


class Slow(StoreWrapper):
    """Before the ending's first DELETE of a session (or its first revocation), lets
    `seconds` pass, then runs `meanwhile`: the request is slow to land, and another host's
    work lands before it."""

    def __init__(self, inner: Store, time: SharedTime, request: str) -> None:
        super().__init__(inner)
        self.time, self.request = time, request
        self.seconds = SLOW[request][0]
        self.meanwhile: Callable[[], Awaitable[object]] | None = None

    async def _slow(self, request: str, prefix: str, touched: Iterable[str]) -> None:
        if self.meanwhile is None or request != self.request:
            return
        if any(key.startswith(prefix) for key in touched):
            meanwhile, self.meanwhile = self.meanwhile, None
            self.time.advance(self.seconds)
            await meanwhile()

    async def create(self, key: str, value: Any) -> str:
        await self._slow("revocation", keys.REVOCATIONS, [key])
        return await self.inner.create(key, value)

    async def delete(self, key: str) -> None:
        await self._slow("delete", keys.SESSIONS, [key])
        await self.inner.delete(key)

    async def delete_many(self, keys_: Iterable[str]) -> int:
        listed = list(keys_)
        await self._slow("delete", keys.SESSIONS, listed)
        return await self.inner.delete_many(listed)


class World:
    """The ending's host, on a store slow at one of its requests, and another host."""

    def __init__(self, request: str, store_url: str = "memory://") -> None:
        self.time, self.inner = SharedTime(), ObjectStore.from_url(store_url)
        self.slow = Slow(self.inner, self.time, request)
        self.ahead = SLOW[request][1]
        self.ending = skewed_host(self.slow, self.time, 0.0, max_sessions_per_user=1)
        # Its snapshot of the revocations is fresh all through the slow request, and taken
        # before the ending: a refresh judges by it without a sync.
        self.other = skewed_host(
            self.inner,
            self.time,
            self.ahead,
            max_sessions_per_user=1,
            revocation_sync_seconds=60,
        )

    async def refused_for_its_lifetime(self, pair: TokenPair) -> None:
        """`pair`'s access token is refused by a host that syncs the revocations, up to
        the last second it would accept it: one within the leeway of the issuer's clock,
        which takes it for issued in the past."""
        offset = max(self.ahead - 5, 0)
        verifier = skewed_host(self.inner, self.time, offset)
        await verifier.ensure_fresh(strict=True)
        with pytest.raises(TokenRevokedError):
            verifier.decode_token(pair.access_token)
        claims = verifier.tokens.verify_access_token(pair.access_token)
        self.time.now = claims["exp"] + verifier.settings.leeway_seconds - 0.5 - offset
        await verifier.ensure_fresh(strict=True)
        with pytest.raises(TokenRevokedError):
            verifier.decode_token(pair.access_token)
        self.time.advance(1)
        with pytest.raises(InvalidTokenError):  # expired, revoked or not
            verifier.decode_token(pair.access_token)

    async def refreshes_meanwhile(self, refresh_token: str) -> list[TokenPair]:
        """What the other host's refresh of `refresh_token`, run while the ending's store
        is slow, issues: filled once the ending has run. The other host syncs first."""
        await self.other.blacklist.sync()
        issued: list[TokenPair] = []

        async def refresh() -> None:
            with contextlib.suppress(TokenRevokedError):  # nothing issued
                issued.append(await self.other.refresh_access_token(refresh_token))

        self.slow.meanwhile = refresh
        return issued

    async def revocations(self) -> int:
        return len([info async for info in self.inner.list(keys.REVOCATIONS)])


each_slow_request = pytest.mark.parametrize("request_", list(SLOW))


@each_slow_request
@pytest.mark.parametrize("store_url", ["memory", "seaweedfs", "azure"], indirect=True)
async def test_a_logout_by_refresh_token_refuses_a_token_a_refresh_issued_meanwhile(
    request_: str, store_url: str
) -> None:
    """On a real S3 server and on Azure too: nothing here rests on how memory:// keeps
    objects, and the revocation written again is listed like any other."""
    w = World(request_, store_url)
    user = await stored_user(w.ending)
    pair = await w.ending.create_token_pair(user)
    issued = await w.refreshes_meanwhile(pair.refresh_token)
    assert await w.ending.revoke_refresh_token(pair.refresh_token)
    assert await w.revocations() == 1  # after the DELETE: timed after what it let through
    if request_ == "revocation":  # the session was deleted already: nothing to refresh
        assert not issued
        with pytest.raises(TokenRevokedError):
            await w.other.refresh_access_token(pair.refresh_token)
        return
    assert issued
    await w.refused_for_its_lifetime(issued[0])


@each_slow_request
async def test_a_disabling_refuses_a_token_a_refresh_issued_meanwhile(request_: str) -> None:
    w = World(request_)
    user = await stored_user(w.ending)
    pair = await w.ending.create_token_pair(user)
    issued = await w.refreshes_meanwhile(pair.refresh_token)
    await w.ending.update_user(user.id, is_active=False)
    assert issued
    await w.refused_for_its_lifetime(issued[0])


async def test_the_cap_refuses_a_token_the_grace_issued_meanwhile() -> None:
    """The older of two sessions under a cap of one rotated before the newer one was
    opened; the newer one's refresh ends it, and meanwhile the older one's client, which
    lost the rotation's answer, presents its previous token within the grace."""
    w = World("delete")
    user = await stored_user(w.ending)
    older = await w.other.create_token_pair(user)
    rotated = await w.other.refresh_access_token(older.refresh_token)
    w.time.advance(1)
    newer = await w.ending.create_token_pair(user)
    w.time.advance(1)
    issued = await w.refreshes_meanwhile(older.refresh_token)
    assert await w.ending.refresh_access_token(newer.refresh_token)
    assert issued and issued[0].refresh_token == rotated.refresh_token
    await w.refused_for_its_lifetime(issued[0])
    with pytest.raises(TokenRevokedError):
        await w.other.refresh_access_token(rotated.refresh_token)


async def test_a_prompt_ending_writes_its_revocation_once() -> None:
    w = World("delete")
    user = await stored_user(w.ending)
    await w.ending.create_token_pair(user)
    await w.ending.update_user(user.id, is_active=False)
    assert await w.revocations() == 1
    pair = await w.ending.create_token_pair(await stored_user(w.ending, "bob"))
    w.inner.reset_counts()
    assert await w.ending.revoke_refresh_token(pair.refresh_token)
    assert await w.revocations() == 2
    assert dict(w.inner.requests) == {"get": 1, "put": 1, "delete": 1, "list": 1}
