"""When a JwksVerifier reads the JWKS again, on hosts whose clocks step and for reads that
end early: a read is timed on the monotonic clock, which no step of the host's clock moves,
and a read cut short (its request cancelled) is a read that failed, not keys still to come.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from support import (
    SharedTime,
    SkewedClock,
    bearer,
    call_http,
    http_scope,
    ok_app,
    run_lifespan,
)
from test_keys_remote import JWKS, KEYS, RawHttpServer, jwks_server, sending, token

from s3auth_asgi import BearerTokenMiddleware, S3AuthSettings
from s3auth_asgi.keys.algorithms import generate_key
from s3auth_asgi.keys.keyset import KeyEntry, KeySet
from s3auth_asgi.keys.remote import JwksVerifier
from s3auth_asgi.tokens import TokenCodec
from s3auth_asgi.types import Clock

pytestmark = pytest.mark.anyio
__all__ = ["jwks_server"]  # the fixture, used here by name

NEW_KEYS = KeySet([KeyEntry("k2", "EdDSA", generate_key("EdDSA"))])


def signed(keys: KeySet, clock: Clock) -> str:
    settings = S3AuthSettings(secret_key="Zq7#vL2pXw9!mRt4Kd8@Hs3^Nb6&Yc1*", algorithm="EdDSA")
    issued, _ = TokenCodec(settings, keys=keys, clock=clock).issue_access_token(
        user_id="u", username="u", session_id="s", is_admin=False, scopes=[]
    )
    return issued


async def test_a_clock_stepped_back_delays_no_read_of_the_jwks(tmp_path: Path) -> None:
    """A host that booted with its clock an hour ahead reads the JWKS, then NTP steps its
    clock back. The key set changes (the key `k1` leaked: dropped, `k2` signs), and the host
    serves nothing for twice `refresh_seconds`: its first token waits for a read, so `k1`
    verifies nothing, and a token naming `k2` is verified from that read, not an hour
    later."""
    true_time = SharedTime()
    host = SkewedClock(true_time, 3600.0)
    source = tmp_path / "jwks.json"
    source.write_bytes(JWKS)
    verifier = JwksVerifier(
        source,
        clock=host,
        monotonic=lambda: true_time.now,  # the true time's pace, whatever the steps
        refresh_seconds=300,
        min_refresh_seconds=30,
    )
    app = BearerTokenMiddleware(ok_app, verifier, cache_size=0)
    auth_service = SkewedClock(true_time, 0.0)
    assert (await call_http(app, http_scope(headers=bearer(signed(KEYS, host))))).status == 200
    host.offset = 0.0
    source.write_text(json.dumps(NEW_KEYS.jwks(0)))
    true_time.advance(2 * 300)
    leaked, new = signed(KEYS, auth_service), signed(NEW_KEYS, auth_service)
    statuses = [
        (await call_http(app, http_scope(headers=bearer(tok)))).status for tok in (leaked, new)
    ]
    assert (statuses, verifier.fetches) == ([401, 200], 2)


async def test_a_clock_stepped_back_does_not_stretch_a_cached_verification(
    tmp_path: Path,
) -> None:
    """A token verified and cached on a host whose clock is then stepped back: its key is
    dropped from the JWKS and the verifier reads it again. The verification stood
    `refresh_seconds` of true time, as on a host whose clock never moves, so the token is
    verified again and refused then, not the step's length later; until then it is served
    from the cache, and its `exp` is judged on the host's clock all along."""
    true_time = SharedTime()
    host = SkewedClock(true_time, 3600.0)
    source = tmp_path / "jwks.json"
    source.write_bytes(JWKS)
    verifier = JwksVerifier(
        source, clock=host, monotonic=lambda: true_time.now, refresh_seconds=300
    )
    app = BearerTokenMiddleware(ok_app, verifier)
    leaked = signed(KEYS, host)

    async def status() -> int:
        return (await call_http(app, http_scope(headers=bearer(leaked)))).status

    assert await status() == 200
    host.offset = 3600.0 - 600  # NTP steps the host's clock back ten minutes
    source.write_text(json.dumps(NEW_KEYS.jwks(0)))  # `k1` leaked: dropped
    true_time.advance(300 - 0.001)
    await verifier.load()  # the keys without `k1`, read within the interval
    assert (await status(), verifier.fetches) == (200, 2)  # still the cached verification
    true_time.advance(0.001)
    assert (await status(), verifier.fetches) == (401, 2)  # verified again, a read too soon
    assert len(app.cache) == 0


def hanging(server: RawHttpServer, connection: socket.socket, request: bytes) -> None:
    """Answers nothing until the server closes."""
    server.closed.wait()


async def test_a_first_read_cut_short_leaves_tokens_503_not_401(
    jwks_server: Callable[..., RawHttpServer],
) -> None:
    """The first token's request is cancelled while the verifier reads the JWKS (its client
    went away, a timeout of the host's). That read ended without keys, as a failed one
    does: the next tokens get 503 `keys_unavailable` (try again), never 401 (sign in
    again), and no read until `min_refresh_seconds` have passed."""
    server = jwks_server(hanging)
    verifier = JwksVerifier(server.url, timeout_seconds=5)
    app = BearerTokenMiddleware(ok_app, verifier)
    with anyio.move_on_after(0.1):
        await call_http(app, http_scope(headers=bearer(token())))
    answers = [await call_http(app, http_scope(headers=bearer(token()))) for _ in range(2)]
    assert [(a.status, a.json()["code"]) for a in answers] == [(503, "keys_unavailable")] * 2
    assert (verifier.fetches, len(server.requests)) == (1, 1)


@pytest.mark.parametrize(
    ("hook", "started"), [("read_keys_again", True), ("load", False)], ids=["logs", "raises"]
)
async def test_a_startup_read_of_an_unreachable_jwks_either_logs_or_stops_the_app(
    jwks_server: Callable[..., RawHttpServer],
    hook: str,
    started: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The two startup reads docs/keys.md offers a Litestar app, with the JWKS answering 404:
    `read_keys_again` logs the failed read and the app starts, its tokens refused with 503
    until a read succeeds; `load` raises, and the app does not start."""
    from litestar import Litestar
    from litestar.middleware import DefineMiddleware

    server = jwks_server(sending(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
    verifier = JwksVerifier(server.url, timeout_seconds=2)
    app = Litestar(
        [],
        middleware=[DefineMiddleware(BearerTokenMiddleware, tokens=verifier)],
        on_startup=[getattr(verifier, hook)],
        on_shutdown=[verifier.close],
        logging_config=None,  # the root logger's handlers, caplog's among them, left be
    )
    messages: list[dict[str, Any]] = []
    raised = False
    try:
        await run_lifespan(app, sent=messages)
    except Exception:  # Litestar raises what failed its startup again, once it said so
        raised = True
    startup = "lifespan.startup.complete" if started else "lifespan.startup.failed"
    assert (messages[0]["type"], raised) == (startup, not started), messages
    failed = [r for r in caplog.records if r.getMessage().startswith("reading the JWKS failed")]
    assert (verifier.fetches, len(failed)) == (1, 1)
    answer = await call_http(
        BearerTokenMiddleware(ok_app, verifier), http_scope(headers=bearer(token()))
    )
    assert (answer.status, answer.json()["code"]) == (503, "keys_unavailable")
