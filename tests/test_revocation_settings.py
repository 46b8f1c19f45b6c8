"""A `TokenBlacklist(store)` made without numbers takes all three from the `S3AUTH_*`
settings, read once: the access-token lifetime (for writing), the sync interval and the skew
allowance (for reading too). With the skew raised in the environment a bare reader looks back
as far as the settings say, and catches a revocation from a host whose clock is that far
behind. A process whose settings cannot be read (one that only verifies, given nothing)
still reads, with the settings' default interval and allowance, and refuses to write."""

from __future__ import annotations

import logging
import os

import pytest
from conftest import SECRET, make_settings
from support import SharedTime, SkewedClock

from s3auth_asgi import S3AuthSettings, TokenBlacklist
from s3auth_asgi.errors import ConfigurationError
from s3auth_asgi.storage import ObjectStore

pytestmark = pytest.mark.anyio
SESSION = "sessionBBBBBBBBBBBBBBB"
REVOKED = {"jti": "j", "sid": SESSION}


def environment(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    for name in os.environ:
        if name.startswith("S3AUTH_"):
            monkeypatch.delenv(name)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[None]:
    reads: list[None] = []
    read = S3AuthSettings.from_env

    def counted(*args: object, **kwargs: object) -> S3AuthSettings:
        reads.append(None)
        return read(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(S3AuthSettings, "from_env", counted)
    return reads


async def test_a_bare_reader_takes_the_skew_and_sync_interval_from_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environment(
        monkeypatch,
        S3AUTH_SECRET_KEY=SECRET,
        S3AUTH_REVOCATION_SKEW_SECONDS="310",
        S3AUTH_REVOCATION_SYNC_SECONDS="2.5",
    )
    reads = count_reads(monkeypatch)
    time, store = SharedTime(), ObjectStore.from_url("memory://")
    reader = TokenBlacklist(store, clock=SkewedClock(time, 0.0))
    await reader.ensure_fresh()
    time.advance(60)
    await reader.sync()  # its cursor is now well past the slow host's clock
    slow = TokenBlacklist.from_settings(
        store, make_settings(revocation_skew_seconds=310), clock=SkewedClock(time, -300.0)
    )
    await slow.revoke_session(SESSION)
    time.advance(2.4)
    assert not reader.is_stale()
    time.advance(0.1)
    assert reader.is_stale()
    time.advance(2.5)  # twice the interval: overdue, so waited for
    store.reset_counts()
    await reader.ensure_fresh()
    assert dict(store.requests) == {"list": 1, "get": 1}
    assert reader.revoked_error(REVOKED) is not None
    # Its writes hold for the lifetime the same settings give, read that once time.
    await reader.revoke_session("other-session")
    assert reader.lookback_seconds == 30 * 60 + 5
    assert (reader.sync_seconds, reader.skew_ms) == (2.5, 310_000)
    assert len(reads) == 1


async def test_numbers_given_are_kept_and_the_rest_read(monkeypatch: pytest.MonkeyPatch) -> None:
    environment(
        monkeypatch,
        S3AUTH_SECRET_KEY=SECRET,
        S3AUTH_ACCESS_TOKEN_EXPIRE_MINUTES="60",
        S3AUTH_REVOCATION_SKEW_SECONDS="30",
        S3AUTH_REVOCATION_SYNC_SECONDS="1",
    )
    reads = count_reads(monkeypatch)
    blacklist = TokenBlacklist(ObjectStore.from_url("memory://"), skew_seconds=20)
    await blacklist.ensure_fresh()
    assert (blacklist.lookback_seconds, blacklist.sync_seconds, blacklist.skew_ms) == (
        3605,
        1.0,
        20_000,
    )
    given = TokenBlacklist(
        ObjectStore.from_url("memory://"), lookback_seconds=60, sync_seconds=3, skew_seconds=0
    )
    await given.ensure_fresh()
    await given.revoke_session(SESSION)
    assert (given.lookback_seconds, given.sync_seconds, given.skew_ms) == (60, 3, 0)
    assert len(reads) == 1  # the bare one's; the one given everything read nothing


async def test_without_settings_a_reader_reads_with_the_defaults_and_refuses_to_write(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A process that only verifies: no secret key, so no settings to read.
    environment(monkeypatch)
    reads = count_reads(monkeypatch)
    store = ObjectStore.from_url("memory://")
    reader = TokenBlacklist(store)
    caplog.set_level(logging.WARNING, "s3auth_asgi")
    await reader.ensure_fresh()
    assert dict(store.requests) == {"list": 1, "get": 1}
    assert (reader.sync_seconds, reader.skew_ms) == (5.0, 10_000)
    assert caplog.records == []
    with pytest.raises(ConfigurationError, match=r"from_settings.*lookback_seconds"):
        await reader.revoke_session(SESSION)
    assert dict(store.requests) == {"list": 1, "get": 1}
    assert len(reads) == 1


async def test_a_revocation_variable_that_cannot_be_read_with_the_rest_is_warned_of(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    environment(monkeypatch, S3AUTH_REVOCATION_SKEW_SECONDS="60")
    reader = TokenBlacklist(ObjectStore.from_url("memory://"))
    caplog.set_level(logging.WARNING, "s3auth_asgi")
    await reader.ensure_fresh()
    await reader.sync()
    [warning] = [record.getMessage() for record in caplog.records]
    assert warning.startswith(
        "TokenBlacklist: S3AUTH_REVOCATION_SKEW_SECONDS is set, but the S3AUTH_* settings "
        "cannot be read (S3AUTH_SECRET_KEY is not set"
    )
    assert warning.endswith(
        "): reading with the default sync interval (5 s) and skew allowance (10 s); give "
        "TokenBlacklist(store, sync_seconds=..., skew_seconds=...) or use "
        "TokenBlacklist.from_settings"
    )
    assert reader.skew_ms == 10_000
