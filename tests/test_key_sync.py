"""Stored signing keys reach every process within their sync interval, whatever the process
does with them: one that only verifies tokens reads them again too, and one whose JWKS
cannot be written to S3AUTH_JWKS_PUBLISH_URL still reads them and signs.

Processes share one memory:// store and one clock moved by hand; request counts say who
read what.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from support import Clock, bearer, call_http, http_scope, make_clocked_service, ok_app

from s3auth_asgi import BearerTokenMiddleware, BlacklistMiddleware, S3AuthService
from s3auth_asgi.app.caller import CallerCheck
from s3auth_asgi.app.host_auth import HostAuth
from s3auth_asgi.errors import InvalidTokenError, UnknownSigningKeyError
from s3auth_asgi.keys.algorithms import generate_key
from s3auth_asgi.keys.keyset import KeyEntry
from s3auth_asgi.keys.stored import KeyStore
from s3auth_asgi.storage import ObjectStore

pytestmark = pytest.mark.anyio

SYNC = 60
PUBLISH = 500  # S3AUTH_KEY_PUBLISH_SECONDS: > max-age 300 + twice the sync interval


def keyed(
    store: ObjectStore, clock: Clock, algorithm: str = "ES256", **overrides: Any
) -> S3AuthService:
    return make_clocked_service(
        store=store,
        clock=clock,
        algorithm=algorithm,
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
    await KeyStore(store).retire(leaked.kid, clock(), after=0, immediately=True, undo_margin=0)
    store.reset_counts()
    clock.advance(SYNC - 2)
    assert await verify(api, forged(auth, leaked, 1)) == 200  # fresh keys: not read again
    await background_reads(api)
    # No key read: a revocation sync's GET alone (of the end of every session, beside its
    # LIST), where the stack syncs revocations.
    assert store.requests["get"] == store.requests["list"] <= 1

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


# A JWKS that cannot be published -----------------------------------------------------


def unwritable(tmp_path: Path) -> str:
    """A publish URL under a plain file: every write fails, as on a volume gone away."""
    (tmp_path / "a-file").write_text("")
    return f"file://{tmp_path}/a-file/jwks.json"


async def test_a_jwks_that_cannot_be_published_leaves_the_keys_read_and_signing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock, store = Clock(), ObjectStore.from_url("memory://")
    service = keyed(store, clock, jwks_publish_url=unwritable(tmp_path))
    first = await service.tokens.signing_key()  # the first start: nothing else can sign
    assert service.verify_access_token(forged(service, first, 0))
    assert store.requests["get"] == 2  # the set found missing, the clock's probe read back
    failures = publish_failures(caplog)
    assert len(failures) == 1 and failures[0].levelno == logging.ERROR
    assert str(tmp_path) not in failures[0].getMessage()

    # Within the interval nothing is tried again; the next read tries the publish again.
    assert (await service.tokens.signing_key()).kid == first.kid
    assert store.requests["get"] == 2 and len(publish_failures(caplog)) == 1
    clock.advance(2 * SYNC)
    assert (await service.tokens.signing_key()).kid == first.kid
    assert store.requests["get"] == 3 and len(publish_failures(caplog)) == 2


def publish_failures(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "JWKS" in r.getMessage()]


async def test_a_key_from_the_environment_signs_while_its_jwks_cannot_be_published(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pem = generate_key("ES256").as_pem(private=True).decode()
    clock, store = Clock(), ObjectStore.from_url("memory://")
    service = keyed(store, clock, signing_key=pem, jwks_publish_url=unwritable(tmp_path))
    key = await service.tokens.signing_key()
    assert service.verify_access_token(forged(service, key, 0))
    for _ in range(5):  # requests within the interval try no write
        await service.ensure_fresh()
    assert len(publish_failures(caplog)) == 1 and service.is_stale()
    clock.advance(SYNC)
    (tmp_path / "a-file").unlink()
    await service.ensure_fresh()
    assert not service.is_stale()  # written: nothing left to do
    assert len(publish_failures(caplog)) == 1
    assert [k["kid"] for k in _published(tmp_path / "a-file" / "jwks.json")] == [key.kid]


async def test_a_new_key_signs_only_once_published_and_the_current_one_signs_meanwhile(
    tmp_path: Path,
) -> None:
    clock, store = Clock(), ObjectStore.from_url("memory://")
    target = tmp_path / "www" / "jwks.json"
    service = keyed(store, clock, jwks_publish_url=f"file://{target}")
    current = await service.tokens.signing_key()
    assert [k["kid"] for k in _published(target)] == [current.kid]

    target.parent.rename(tmp_path / "gone")
    (tmp_path / "www").write_text("")  # the publish target can no longer be written
    new = await KeyStore(store).rotate("ES256", clock(), PUBLISH)
    clock.advance(PUBLISH)
    assert (await service.tokens.signing_key()).kid == current.kid  # read, not published

    (tmp_path / "www").unlink()
    clock.advance(2 * SYNC)
    assert (await service.tokens.signing_key()).kid == new.kid  # published: it signs
    assert [k["kid"] for k in _published(target)] == [current.kid, new.kid]


def _published(target: Path) -> list[dict[str, Any]]:
    keys: list[dict[str, Any]] = json.loads(target.read_text())["keys"]
    return keys


# After an idle spell -------------------------------------------------------------------


async def test_after_an_idle_spell_the_first_token_waits_for_the_keys() -> None:
    """Keys two intervals old are overdue: as with revocations, the request waits for a
    read rather than accepting a token of a key retired meanwhile (and caching it)."""
    clock, store = Clock(), ObjectStore.from_url("memory://")
    auth, api = keyed(store, clock), keyed(store, clock)
    leaked = await auth.tokens.signing_key()
    await api.ensure_fresh()
    app = BearerTokenMiddleware(ok_app, api)
    assert (await call_http(app, http_scope(headers=bearer(forged(auth, leaked, 0))))).status == 200

    await KeyStore(store).rotate("ES256", clock(), 0)
    clock.advance(1)
    await KeyStore(store).retire(leaked.kid, clock(), after=0, immediately=True, undo_margin=0)
    clock.advance(2 * SYNC)  # no request meanwhile
    store.reset_counts()
    answer = await call_http(app, http_scope(headers=bearer(forged(auth, leaked, 1))))
    assert answer.status == 401
    assert dict(store.requests) == {"get": 1}
    assert len(app.cache) == 1  # the token accepted before the spell; not this one


async def host_auth(service: S3AuthService, token: str) -> None:
    await HostAuth(service, service).caller(http_scope(headers=bearer(token)))


async def auth_app(service: S3AuthService, token: str) -> None:
    callers = CallerCheck(service, service, service)
    await callers.resolve(Request(http_scope(headers=bearer(token))), "admin")


VERIFYING_ITSELF = {"HostAuth.caller": host_auth, "the auth app": auth_app}


@pytest.mark.parametrize("path", VERIFYING_ITSELF)
async def test_after_an_idle_spell_code_verifying_itself_waits_for_the_keys(path: str) -> None:
    """The host's dependencies and the auth app verify a token the middleware did not:
    with overdue keys they too read them first."""
    verify = VERIFYING_ITSELF[path]
    clock, store = Clock(), ObjectStore.from_url("memory://")
    auth, api = keyed(store, clock), keyed(store, clock)
    leaked = await auth.tokens.signing_key()
    await api.ensure_fresh()
    await verify(api, forged(auth, leaked, 0))

    await KeyStore(store).rotate("ES256", clock(), 0)
    clock.advance(1)
    await KeyStore(store).retire(leaked.kid, clock(), after=0, immediately=True, undo_margin=0)
    clock.advance(2 * SYNC)  # no request meanwhile
    with pytest.raises(InvalidTokenError, match="unknown key"):
        await verify(api, forged(auth, leaked, 1))


async def test_fresh_or_stale_keys_are_not_waited_for() -> None:
    clock, store = Clock(), ObjectStore.from_url("memory://")
    service = keyed(store, clock)
    token = forged(service, await service.tokens.signing_key(), 0)
    app = BearerTokenMiddleware(ok_app, service, cache_size=0)
    store.reset_counts()
    clock.advance(2 * SYNC - 1)  # stale, not overdue: answered, a read started
    assert (await call_http(app, http_scope(headers=bearer(token)))).status == 200
    assert sum(store.requests.values()) == 0
    await background_reads(service)
    assert dict(store.requests) == {"get": 1}
