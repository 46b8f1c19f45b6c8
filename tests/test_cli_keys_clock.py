"""`s3auth keys rotate --now` and `keys retire --now` on a host whose clock runs ahead of
the store's by more than the skew allowance. Dated by that clock, a key rotated in at once
would sign on no correctly set clock until the lead had passed (the leaked key it replaces
signing on meanwhile), and a key retired at once could be one that, by the right time, still
signs: its tokens would stop verifying as they are issued. Each command first times a write
of its own against the store's Last-Modified, as `s3auth cleanup` does, and refuses."""

from __future__ import annotations

import os
import time

import anyio
import pytest
from conftest import SECRET
from test_cli import Run

from s3auth_asgi import S3AuthSettings
from s3auth_asgi.cli import failures
from s3auth_asgi.cli import keys as cli_keys
from s3auth_asgi.keys.stored import KeyStore, StoredKey
from s3auth_asgi.storage import ObjectStore, keys
from s3auth_asgi.tokens import TokenCodec

HOUR = 3600
SKEW = 10  # S3AUTH_REVOCATION_SKEW_SECONDS's default
PUBLISH = 3600  # S3AUTH_KEY_PUBLISH_SECONDS's default


class Host:
    """The commands' clock: the real time (the memory store's), `ahead` seconds on."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead


@pytest.fixture(name="host")
def host_fixture(monkeypatch: pytest.MonkeyPatch) -> Host:
    for name in list(os.environ):
        if name.startswith("S3AUTH_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    monkeypatch.setenv("S3AUTH_ALGORITHM", "ES256")
    host = Host()
    monkeypatch.setattr(cli_keys, "CLOCK", host)
    return host


def stored(store: ObjectStore) -> list[StoredKey]:
    found = anyio.run(KeyStore(store).read, backend="asyncio")
    return [] if found is None else found[0].keys


def first_key(store: ObjectStore) -> StoredKey:
    """The key a service's first start makes, on the right clock."""
    codec = TokenCodec(S3AuthSettings.from_env(), clock=time.time, store=store)
    assert codec.ring is not None
    anyio.run(codec.ring.sync, backend="asyncio")
    (key,) = stored(store)
    return key


def probes_left(store: ObjectStore) -> list[str]:
    async def listed() -> list[str]:
        return [info.key async for info in store.list(keys.PROBES)]

    return anyio.run(listed, backend="asyncio")


def assert_refused_by_the_clock(run: Run) -> None:
    assert run.code == failures.REFUSED, run
    assert "clock is at least" in run.err and "ahead of the store's" in run.err, run
    assert f"S3AUTH_REVOCATION_SKEW_SECONDS ({SKEW})" in run.err and "(NTP)" in run.err


def test_a_rotation_at_once_by_a_clock_an_hour_ahead_is_refused(host: Host) -> None:
    store = ObjectStore.from_url("memory://")
    before = [first_key(store)]
    host.ahead = HOUR
    rotate = Run("keys", "rotate", "--now", open_store=lambda url: store)
    assert_refused_by_the_clock(rotate)
    assert stored(store) == before and probes_left(store) == []
    # Within the allowance, it is done as before.
    host.ahead = SKEW - 2
    rotate = Run("keys", "rotate", "--now", open_store=lambda url: store)
    assert rotate.code == 0 and "signs from now" in rotate.out, rotate
    assert len(stored(store)) == 2 and probes_left(store) == []


def test_a_retirement_at_once_by_a_clock_ahead_ends_no_key_that_still_signs(host: Host) -> None:
    store = ObjectStore.from_url("memory://")
    old = first_key(store)
    assert Run("keys", "rotate", open_store=lambda url: store).code == 0  # signs in an hour
    before = stored(store)
    # By this clock the new key has taken over; by the store's, the old one still signs.
    host.ahead = PUBLISH + 60
    retire = Run("keys", "retire", old.kid, "--now", open_store=lambda url: store)
    assert_refused_by_the_clock(retire)
    assert stored(store) == before and probes_left(store) == []
