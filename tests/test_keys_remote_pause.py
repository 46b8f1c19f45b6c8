"""A JwksVerifier on a machine that was paused (a suspended host, a VM paused on a hypervisor
that stops its monotonic clock): its wall clock, set right on resuming, says the time went
by, and the copy of the keys and the verifications cached from it age by it too, as the
revocation and key snapshots do (`freshness`). A key dropped from the JWKS during the pause
verifies nothing after it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import SharedTime, SkewedClock, bearer, call_http, http_scope, ok_app
from test_keys_remote import JWKS, KEYS
from test_keys_remote_reads import NEW_KEYS, signed

from s3auth_asgi import BearerTokenMiddleware
from s3auth_asgi.keys.remote import JwksVerifier

pytestmark = pytest.mark.anyio
REFRESH = 300


def paused_host(tmp_path: Path, **options: int) -> tuple[SkewedClock, JwksVerifier, Path]:
    """A verifier whose monotonic clock stands still (the whole test is one pause); its
    wall clock moves with the true time."""
    wall, source = SkewedClock(SharedTime(), 0.0), tmp_path / "jwks.json"
    source.write_bytes(JWKS)
    stopped = wall()
    verifier = JwksVerifier(
        source, clock=wall, monotonic=lambda: stopped, refresh_seconds=REFRESH, **options
    )
    return wall, verifier, source


async def test_after_a_pause_the_first_token_waits_for_the_jwks(tmp_path: Path) -> None:
    wall, verifier, source = paused_host(tmp_path)
    app = BearerTokenMiddleware(ok_app, verifier, cache_size=0)
    leaked = signed(KEYS, wall)
    assert (await call_http(app, http_scope(headers=bearer(leaked)))).status == 200
    source.write_text(json.dumps(NEW_KEYS.jwks(0)))  # `k1` leaked: dropped meanwhile
    wall.advance(2 * REFRESH)  # the pause, by the wall clock alone
    answer = await call_http(app, http_scope(headers=bearer(leaked)))
    assert (answer.status, verifier.fetches) == (401, 2)
    assert verifier.keys_overdue() is False


async def test_after_a_pause_a_cached_verification_no_longer_stands(tmp_path: Path) -> None:
    wall, verifier, source = paused_host(tmp_path)
    app = BearerTokenMiddleware(ok_app, verifier)
    leaked = signed(KEYS, wall)

    async def status() -> int:
        return (await call_http(app, http_scope(headers=bearer(leaked)))).status

    assert await status() == 200
    source.write_text(json.dumps(NEW_KEYS.jwks(0)))
    wall.advance(REFRESH - 1)
    await verifier.load()  # the keys without `k1`, read within the stand
    assert (await status(), verifier.fetches) == (200, 2)  # still the cached verification
    wall.advance(1)  # the stand is over by the wall clock, not by the stopped one
    assert (await status(), verifier.fetches) == (401, 2)
    assert len(app.cache) == 0
