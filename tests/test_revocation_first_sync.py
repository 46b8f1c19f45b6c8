"""A process's first revocation sync takes in every entry that still matters, whatever its
age: each entry's key says until when it matters, so a reader needs no token lifetime of
its own to know how far back to look. Its cost is bounded by the sweep, which deletes the
entries that no longer matter; the syncs after it list only what is new."""

from __future__ import annotations

from typing import Any

import pytest
from support import Clock, bearer, call_http, http_scope, login, make_clocked_service, ok_app

from s3auth_asgi import TokenBlacklist
from s3auth_asgi.middleware.bearer import BearerTokenMiddleware
from s3auth_asgi.middleware.blacklist import BlacklistMiddleware
from s3auth_asgi.models import EndedSessions
from s3auth_asgi.storage import ObjectStore, keys

pytestmark = pytest.mark.anyio


async def test_a_verify_only_reader_started_long_after_a_logout_refuses_its_tokens() -> None:
    # The auth service issues 60-minute tokens; a service that only verifies them adds
    # BlacklistMiddleware with a bare TokenBlacklist, and starts 40 minutes after a logout.
    clock = Clock()
    store = ObjectStore.from_url("memory://")
    issuer = make_clocked_service(clock=clock, store=store, access_token_expire_minutes=60)
    _, pair = await login(issuer)
    await issuer.revoke_refresh_token(pair.refresh_token)
    clock.advance(40 * 60)
    reader = TokenBlacklist(store, clock=clock)
    app = BearerTokenMiddleware(BlacklistMiddleware(ok_app, reader), issuer.tokens)
    store.reset_counts()
    response = await call_http(app, http_scope("/api/items", bearer(pair.access_token)))
    assert response.status == 401  # valid for 20 more minutes, and logged out
    assert dict(store.requests) == {"list": 1, "get": 1}


async def write_entry(
    store: ObjectStore, written_s: float, kind: Any, subject: str, until: int
) -> None:
    body: Any = EndedSessions([subject]) if kind == "user" else {}
    await store.create(keys.revocation(int(written_s * 1000), kind, until, subject), body)


async def test_a_first_sync_lists_every_entry_and_takes_in_only_those_still_live() -> None:
    clock = Clock()
    store = ObjectStore.from_url("memory://")
    now = clock()
    # 1,000 entries past their end that no sweep has deleted yet, among them logouts
    # everywhere, whose bodies a sync would otherwise read; and three still live, one
    # written two hours ago by an issuer of three-hour tokens.
    for i in range(1000):
        kind = "user" if i % 100 == 0 else "session"
        await write_entry(store, now - 7200 + i, kind, f"old{i:04d}", int(now) - 60)
    await write_entry(store, now - 7200, "session", "long-lived", int(now) + 3600)
    await write_entry(store, now - 60, "user", "everywhere", int(now) + 1800)
    await write_entry(store, now - 30, "jti", "one-token", int(now) + 600)

    reader = TokenBlacklist(store, clock=clock)
    store.reset_counts()
    assert await reader.sync() == 3
    # One LIST per 1,000 keys under revocations/, one GET per live logout-everywhere,
    # one GET of the end of every session.
    assert dict(store.requests) == {"list": 2, "get": 2}
    assert len(reader.snapshot) == 3
    assert reader.revoked_error({"sid": "long-lived"}) is not None
    assert reader.revoked_error({"sid": "everywhere"}) is not None
    assert reader.revoked_error({"jti": "one-token"}) is not None
    assert reader.revoked_error({"sid": "old0100"}) is None

    store.reset_counts()
    assert await reader.sync() == 0  # the next sync lists only what is new
    assert dict(store.requests) == {"list": 1, "get": 1}

    # The sweep deletes what no longer matters: the next process's first sync is one LIST
    # (and the GETs of the live entry's body and of the end of every session).
    assert await reader.cleanup() == 1000
    restarted = TokenBlacklist(store, clock=clock)
    store.reset_counts()
    assert await restarted.sync() == 3
    assert dict(store.requests) == {"list": 1, "get": 2}
