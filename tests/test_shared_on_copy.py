"""A deep copy of an object holding live state (a store, a snapshot kept fresh, caches,
locks, tasks) is the object itself: frameworks deep-copy what their configuration holds
(Litestar a Router, with the arguments of its middleware), and a copy would keep state of
its own, or fail on a store that cannot be copied."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from conftest import make_service, make_settings
from support import stored_user

from s3auth_asgi.keys.remote import JwksVerifier
from s3auth_asgi.ratelimit import RateLimit, RateLimiter
from s3auth_asgi.ratelimit.stores import ObjectStoreRateLimitStore
from s3auth_asgi.storage import ObjectStore
from s3auth_asgi.tokens import TokenCodec

pytestmark = pytest.mark.anyio

LIMITS = {"login": RateLimit(max_requests=2, window_seconds=60)}


def live_objects(tmp_path: Path) -> dict[str, Any]:
    service = make_service(algorithm="ES256")  # its signing keys are kept in the store
    store = ObjectStore.from_url("memory://")
    return {
        "service": service,
        "blacklist": service.blacklist,
        "codec with stored keys": service.tokens,
        "codec with a derived key": TokenCodec(make_settings()),
        "limiter in memory": RateLimiter(LIMITS),
        "limiter over the store": RateLimiter(LIMITS, store=ObjectStoreRateLimitStore(store)),
        "JWKS verifier": JwksVerifier(tmp_path / "jwks.json"),
    }


@pytest.mark.parametrize(
    "name",
    [
        "service",
        "blacklist",
        "codec with stored keys",
        "codec with a derived key",
        "limiter in memory",
        "limiter over the store",
        "JWKS verifier",
    ],
)
def test_a_deep_copy_is_the_object_itself(name: str, tmp_path: Path) -> None:
    live = live_objects(tmp_path)[name]
    # As Litestar copies a middleware's arguments: inside what holds them.
    arguments = copy.deepcopy({"live": live, "options": ["kept apart"]})
    assert arguments["live"] is live
    assert copy.deepcopy(live) is live


async def test_the_copy_of_a_blacklist_refuses_what_the_original_revoked() -> None:
    # No sync falls due while the test runs, however slowly a loaded machine runs it.
    service = make_service(revocation_sync_seconds=300)
    pair = await service.create_token_pair(await stored_user(service))
    # A snapshot never synced is stale: decoding would start a catch-up in the background,
    # whose LIST lands or not before the end depending on the machine's load.
    await service.blacklist.sync()
    lists = service.store.requests["list"]
    claims = service.decode_token(pair.access_token)
    copied = copy.deepcopy(service.blacklist)
    assert copied.revoked_error(claims) is None
    await service.blacklist.revoke_session(claims["sid"])
    # No sync in between: the copy reads the same snapshot.
    assert str(copied.revoked_error(claims)) == "The session has been logged out"
    assert service.store.requests["list"] == lists
