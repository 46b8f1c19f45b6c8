"""`s3auth cleanup` on a host whose clock runs ahead of the store's by more than the skew
allowance: judged by that clock, the sweep would delete the revocation of an access token
every other host still accepts, and a process started after it would accept the token
again. The command first times a write of its own against the store's Last-Modified, and
refuses to sweep by a clock that far ahead; within the allowance it sweeps as before."""

from __future__ import annotations

import io
import time
from pathlib import Path

import anyio
import pytest
from conftest import SECRET, make_settings
from support import login

from s3auth_asgi import S3AuthService, TokenRevokedError, cli
from s3auth_asgi.cli import cleanup, failures
from s3auth_asgi.storage import ObjectStore, keys

SKEW = 10  # the default allowance
HOUR = 3600


def logged_out(url: str) -> str:
    """An access token whose session a host on the right clock has just logged out: its
    revocation holds while the token lives (30 minutes)."""
    host = S3AuthService(make_settings(url))

    async def log_out() -> str:
        _, pair = await login(host)
        assert await host.revoke_refresh_token(pair.refresh_token)
        return pair.access_token

    return anyio.run(log_out, backend="asyncio")


def cleanup_ahead(
    url: str, ahead: float, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str, list[str]]:
    """`s3auth cleanup` on a host `ahead` seconds ahead of the store's clock: its exit
    code, output and what it left under `revocations/` (and that its probe is gone)."""
    monkeypatch.setenv("S3AUTH_STORE_URL", url)
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    monkeypatch.setattr(cleanup, "CLOCK", lambda: time.time() + ahead)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["cleanup"], stdout=out, stderr=err)

    async def left() -> list[str]:
        store = ObjectStore.from_url(url)
        assert [info.key async for info in store.list(keys.PROBES)] == []
        return [info.key async for info in store.list(keys.REVOCATIONS)]

    return code, out.getvalue(), err.getvalue(), anyio.run(left, backend="asyncio")


def accepted_by_a_new_process(url: str, token: str) -> bool:
    async def started() -> bool:
        host = S3AuthService(make_settings(url))
        await host.blacklist.sync()
        try:
            host.decode_token(token)
        except TokenRevokedError:
            return False
        return True

    return anyio.run(started, backend="asyncio")


def test_a_cleanup_by_a_clock_an_hour_ahead_refuses_and_unrevokes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"file://{tmp_path / 'store'}"
    token = logged_out(url)
    code, out, err, left = cleanup_ahead(url, HOUR, monkeypatch)
    assert code == failures.REFUSED, (out, err)
    assert out == ""
    assert "clock" in err and "ahead of the store's" in err
    assert "S3AUTH_REVOCATION_SKEW_SECONDS (10)" in err
    assert len(left) == 1
    assert not accepted_by_a_new_process(url, token)


def test_a_cleanup_by_a_clock_ahead_within_the_allowance_sweeps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"file://{tmp_path / 'store'}"
    logged_out(url)
    code, out, err, left = cleanup_ahead(url, SKEW - 2, monkeypatch)
    assert code == failures.OK and err == "", err
    assert out.startswith("deleted 0 expired object(s)")
    assert len(left) == 1
