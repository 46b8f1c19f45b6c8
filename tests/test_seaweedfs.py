"""SeaweedFS as a store: the conditional writes everything rests on, and `s3auth check`.

The contract, service and race tests run on SeaweedFS through the `store_url` fixture;
these are what is particular to it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SECRET
from seaweedfs_server import SeaweedFS

from s3auth_asgi.storage import ObjectStore, StoreConflict

pytestmark = pytest.mark.anyio


async def test_conditional_writes_are_refused_when_they_must_be(seaweedfs: SeaweedFS) -> None:
    store = ObjectStore.from_url(seaweedfs.fresh_url())
    etag = await store.create("t/a.json", {"n": 1})
    with pytest.raises(StoreConflict):  # If-None-Match: * on an existing key
        await store.create("t/a.json", {"n": 2})
    fresh = await store.replace("t/a.json", {"n": 2}, etag)
    assert fresh != etag
    for stale in (etag, '"s3auth-never-issued"'):  # If-Match with an ETag not current
        with pytest.raises(StoreConflict):
            await store.replace("t/a.json", {"n": 3}, stale)
    with pytest.raises(StoreConflict):  # If-Match on a key that does not exist
        await store.replace("t/missing.json", {"n": 1}, fresh)
    got = await store.get("t/a.json", dict)
    assert got is not None and got.value == {"n": 2} and got.etag == fresh


def _s3auth() -> list[str]:
    """The installed `s3auth` command, or the module when the script is not installed."""
    script = shutil.which("s3auth", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "s3auth_asgi.cli"]


def test_s3auth_check_passes_on_seaweedfs(seaweedfs: SeaweedFS) -> None:
    """The command as an operator runs it: settings and credentials from the environment
    only (none of this process's AWS_* variables, which may point at moto)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3AUTH_"))}
    env.update(seaweedfs.env())
    env.update(S3AUTH_STORE_URL=seaweedfs.fresh_url(), S3AUTH_SECRET_KEY=SECRET)
    run = subprocess.run(
        [*_s3auth(), "check"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "[FAIL]" not in run.stdout
    for passed in ("reachable", "create-if-absent", "conditional update (If-Match)"):
        assert f"[ok]   {passed}" in run.stdout, run.stdout
    assert "All checks passed." in run.stdout
