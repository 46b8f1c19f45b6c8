"""Stored signing keys reach every process within their sync interval, whatever the process
does with them: one that only verifies tokens reads them again too.

Processes share one memory:// store and one clock moved by hand; request counts say who
read what.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from support import Clock, bearer, call_http, http_scope, make_clocked_service, ok_app

from s3auth_asgi import BearerTokenMiddleware, BlacklistMiddleware, S3AuthService
from s3auth_asgi.errors import UnknownSigningKeyError
from s3auth_asgi.keys.keyset import KeyEntry
from s3auth_asgi.keys.stored import KeyStore
from s3auth_asgi.storage import ObjectStore

pytestmark = pytest.mark.anyio

SYNC = 60
PUBLISH = 500  # S3AUTH_KEY_PUBLISH_SECONDS: > max-age 300 + twice the sync interval


def keyed(store: ObjectStore, clock: Clock, **overrides: Any) -> S3AuthService:
    return make_clocked_service(
        store=store,
        clock=clock,
        algorithm="ES256",
        key_sync_seconds=SYNC,
        key_publish_seconds=PUBLISH,
        **overrides,
    )


def forged(service: S3AuthService, key: KeyEntry, number: int) -> str:
    """An access token signed with `key`, as whoever holds a leaked key makes them."""
    return service.tokens.issue_access_token(
        user_id="victim",
        username="root",
        session_id=f"forged{number:016d}",
        is_admin=True,
        scopes=["admin"],
        key=key,
    )[0]


async def background_reads(service: S3AuthService) -> None:
    """Wait for the syncs a request started in the background (the request itself was
    answered from what the process had)."""
    ring = service.tokens.ring
    assert ring is not None and ring.freshness is not None
    for freshness in (ring.freshness, service.blacklist.freshness):
        if freshness._background is not None:
            await asyncio.wait((freshness._background,))


async def bearer_only(service: S3AuthService, token: str) -> int:
    app = BearerTokenMiddleware(ok_app, service, cache_size=0)
    return (await call_http(app, http_scope(headers=bearer(token)))).status


async def bearer_and_blacklist(service: S3AuthService, token: str) -> int:
    inner = BlacklistMiddleware(ok_app, service.blacklist)
    app = BearerTokenMiddleware(inner, service, cache_size=0)
    return (await call_http(app, http_scope(headers=bearer(token)))).status


async def decode_token(service: S3AuthService, token: str) -> int:
    try:
        service.decode_token(token)
    except UnknownSigningKeyError:
        return 401
    return 200


VERIFY_ONLY = {
    "BearerTokenMiddleware(app, service)": bearer_only,
    "with BlacklistMiddleware(app, service.blacklist)": bearer_and_blacklist,
    "service.decode_token": decode_token,
}


@pytest.mark.parametrize("stack", VERIFY_ONLY)
async def test_a_process_that_only_verifies_sees_a_retired_key_within_one_interval(
    stack: str,
) -> None:
    verify = VERIFY_ONLY[stack]
    clock, store = Clock(), ObjectStore.from_url("memory://")
    auth, api = keyed(store, clock), keyed(store, clock)
    leaked = await auth.tokens.signing_key()
    await api.ensure_fresh()  # what its lifespan does at start-up
    assert await verify(api, forged(auth, leaked, 0)) == 200

    # The leak's response (`s3auth keys rotate --now`, then `retire LEAKED --now`), run
    # elsewhere: this process hears nothing of it.
    await KeyStore(store).rotate("ES256", clock(), 0)
    clock.advance(1)
    await KeyStore(store).retire(leaked.kid, clock(), after=0, immediately=True)
    store.reset_counts()
    clock.advance(SYNC - 2)
    assert await verify(api, forged(auth, leaked, 1)) == 200  # fresh keys: not read again
    await background_reads(api)
    assert store.requests["get"] == 0

    store.reset_counts()
    clock.advance(1)  # one interval since the keys were read
    assert await verify(api, forged(auth, leaked, 2)) == 200  # answered, a read started
    await background_reads(api)
    assert await verify(api, forged(auth, leaked, 3)) == 401
    assert await verify(api, forged(auth, leaked, 4)) == 401
    assert dict(store.requests) == {"get": 1}


async def test_fresh_keys_cost_a_verification_no_request_and_no_task() -> None:
    clock, store = Clock(), ObjectStore.from_url("memory://")
    service = keyed(store, clock)
    token = forged(service, await service.tokens.signing_key(), 0)
    ring = service.tokens.ring
    assert ring is not None and ring.freshness is not None
    store.reset_counts()
    for _ in range(100):
        assert service.verify_access_token(token)
    assert sum(store.requests.values()) == 0 and ring.freshness._background is None
