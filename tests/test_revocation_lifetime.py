"""How long a logout's or a logout-everywhere's revocation holds is decided by the issuer's
settings: the access-token lifetime plus the leeway, the longest a token issued before it
is accepted. A `TokenBlacklist` made without a lifetime takes it from the `S3AUTH_*`
variables, as `S3AuthService()` does, or refuses to write; reading and the sweep need
none, every entry's key saying until when it matters."""

from __future__ import annotations

import time
from typing import Any

import pytest
from conftest import SECRET, make_settings
from support import Clock, login, make_clocked_service

from s3auth_asgi import S3AuthService, S3AuthSettings, TokenBlacklist
from s3auth_asgi.errors import ConfigurationError, TokenExpiredError, TokenRevokedError
from s3auth_asgi.storage import ObjectStore, keys

pytestmark = pytest.mark.anyio

HOUR_TOKENS = {"S3AUTH_SECRET_KEY": SECRET, "S3AUTH_ACCESS_TOKEN_EXPIRE_MINUTES": "60"}


@pytest.fixture(name="hour_tokens")
def hour_tokens_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hosts configured by the environment, which says access tokens live an hour."""
    for name, value in HOUR_TOKENS.items():
        monkeypatch.setenv(name, value)


async def revoke(blacklist: TokenBlacklist, kind: str, claims: dict[str, Any]) -> None:
    if kind == "session":
        await blacklist.revoke_session(claims["sid"])
    else:
        await blacklist.revoke_user(claims["sub"], [claims["sid"]])


@pytest.mark.parametrize("kind", ["session", "user"])
@pytest.mark.usefixtures("hour_tokens")
async def test_a_revocation_by_a_bare_blacklist_holds_as_long_as_the_token_verifies(
    kind: str,
) -> None:
    clock, store = Clock(), ObjectStore.from_url("memory://")
    issuer = S3AuthService(store=store, clock=clock)  # its settings from the environment
    _, pair = await login(issuer)
    claims = issuer.verify_access_token(pair.access_token)
    assert claims["exp"] - claims["iat"] == 3600
    writer = TokenBlacklist(store, clock=clock)
    await revoke(writer, kind, claims)
    # Past the 31 minutes a revocation once held by default, 27 before the token expires.
    clock.advance(33 * 60)
    assert issuer.verify_access_token(pair.access_token)["sid"] == claims["sid"]
    reader = TokenBlacklist(store, clock=clock)  # another process, started now
    await reader.ensure_fresh()
    assert reader.revoked_error(claims) is not None
    await writer.ensure_fresh()  # its own snapshot, synced since
    assert writer.revoked_error(claims) is not None
    await issuer.ensure_fresh()
    with pytest.raises(TokenRevokedError):
        issuer.decode_token(pair.access_token)
    # The entry holds until the token's end, plus the leeway within which it verifies.
    [entry] = [keys.parse_revocation(info.key) async for info in store.list(keys.REVOCATIONS)]
    assert entry is not None and entry.expires_s == claims["exp"] + 5


@pytest.mark.usefixtures("hour_tokens")
async def test_a_bare_blacklist_revokes_an_hour_token_by_its_id() -> None:
    clock, store = Clock(), ObjectStore.from_url("memory://")
    issuer = S3AuthService(store=store, clock=clock)
    _, pair = await login(issuer)
    claims = issuer.verify_access_token(pair.access_token)
    blacklist = TokenBlacklist(store, clock=clock)
    await blacklist.add(claims["jti"], claims["exp"])
    clock.advance(59 * 60)
    assert await TokenBlacklist(store, clock=clock).is_blacklisted(claims["jti"])


@pytest.mark.usefixtures("hour_tokens")
async def test_the_entry_ends_and_is_swept_once_no_token_it_covers_verifies() -> None:
    clock, store = Clock(), ObjectStore.from_url("memory://")
    clock.now = float(int(clock.now))  # whole seconds: the boundaries below are exact
    issuer = S3AuthService(store=store, clock=clock)
    _, pair = await login(issuer)
    claims = issuer.verify_access_token(pair.access_token)
    writer = TokenBlacklist(store, clock=clock)
    await writer.revoke_session(claims["sid"])
    end = claims["exp"] + 5
    clock.now = end - 1.0  # the token's last second, within the leeway
    issuer.verify_access_token(pair.access_token)
    clock.now = float(end)
    with pytest.raises(TokenExpiredError):
        issuer.verify_access_token(pair.access_token)
    # Held the skew allowance longer, for a token issued by a host whose clock is ahead
    # (or, for a `jti` entry, within the leeway)...
    clock.now = float(end + 10)
    started_now = TokenBlacklist(store, clock=clock)
    await started_now.ensure_fresh()
    assert len(started_now.snapshot) == 1
    clock.now = float(end + 11)
    await writer.sync()
    assert len(writer.snapshot) == 0
    # ... and kept as long again, for a process whose clock is that far behind.
    clock.now = float(end + 20)
    assert await writer.cleanup() == 0
    clock.now = float(end + 21)
    store.reset_counts()
    assert await writer.cleanup() == 1
    assert dict(store.requests) == {"list": 1, "delete": 1}
    assert [info async for info in store.list(keys.REVOCATIONS)] == []


async def test_a_blacklist_with_no_settings_to_read_refuses_to_write_and_still_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Settings made in code: the environment says nothing, not even the secret key.
    monkeypatch.delenv("S3AUTH_SECRET_KEY", raising=False)
    store = ObjectStore.from_url("memory://")
    blacklist = TokenBlacklist(store)
    writes = [
        lambda: blacklist.revoke_session("s1"),
        lambda: blacklist.revoke_user("u1", ["s1"]),
        lambda: blacklist.add("j1", time.time() + 600),
    ]
    for write in writes:
        with pytest.raises(ConfigurationError, match=r"from_settings.*lookback_seconds"):
            await write()
    assert dict(store.requests) == {}
    assert blacklist.lookback_seconds is None
    await blacklist.ensure_fresh()
    assert dict(store.requests) == {"list": 1, "get": 1}


async def test_settings_made_in_code_give_the_blacklist_the_issuers_lifetime() -> None:
    clock, store = Clock(), ObjectStore.from_url("memory://")
    settings = make_settings(access_token_expire_minutes=60, revocation_skew_seconds=20)
    issuer = make_clocked_service(clock=clock, store=store, access_token_expire_minutes=60)
    writer = TokenBlacklist.from_settings(store, settings, clock=clock)
    assert (writer.lookback_seconds, writer.skew_ms) == (3605, 20_000)
    assert issuer.blacklist.lookback_seconds == issuer.settings.access_token_accepted_seconds
    _, pair = await login(issuer)
    claims = issuer.verify_access_token(pair.access_token)
    await writer.revoke_session(claims["sid"])
    clock.advance(59 * 60)
    await issuer.ensure_fresh()
    with pytest.raises(TokenRevokedError):
        issuer.decode_token(pair.access_token)


def test_the_lifetime_a_revocation_holds_is_the_token_lifetime_plus_the_leeway() -> None:
    settings = S3AuthSettings(secret_key=SECRET, access_token_expire_minutes=90, leeway_seconds=7)
    assert settings.access_token_accepted_seconds == 90 * 60 + 7
