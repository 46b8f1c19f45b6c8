"""Shared fixtures: every storage test runs on memory://, a temporary file:// directory and
two S3 endpoints on 127.0.0.1, each started once per session: moto's server (reached through
the AWS_* variables) and SeaweedFS, a real S3-compatible server (reached through obstore
options; see seaweedfs_server.py).

The contract tests of the store, the service and the races (`on_every_store`) also run on
Azure Blob Storage (Azurite, azurite_server.py) and Google Cloud Storage (fake-gcs-server
behind a translating proxy, gcs_server.py), each started once per session on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import azurite_server
import gcs_server
import pytest
import seaweedfs_server

from s3auth_asgi import S3AuthService, S3AuthSettings
from s3auth_asgi.storage import ObjectStore, Store

SECRET = "test-secret-key-that-is-long-enough-0123456789"
BACKENDS = ("memory", "file", "s3", "seaweedfs")
"""`s3` is moto: fast, but its conditional writes are not atomic under load. `seaweedfs` is
a real server whose conditional writes are."""
EVERY_STORE = (*BACKENDS, "azure", "gcs")
"""Every store the package supports: the contract tests run on each."""
on_every_store = pytest.mark.parametrize("store_url", EVERY_STORE, indirect=True)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    # obstore's async API needs asyncio.
    return "asyncio"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real S3 endpoint: moto's threaded server on a free loopback port."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in _AWS_ENV}
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ALLOW_HTTP="true",
    )
    try:
        yield endpoint
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


_AWS_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ALLOW_HTTP",
)


def make_bucket(endpoint: str) -> str:
    import boto3

    name = f"s3auth-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[seaweedfs_server.SeaweedFS]:
    """SeaweedFS (`weed mini`) on free loopback ports in a temporary directory, for the whole
    session; `ObjectStore.from_url` reaches the buckets made on it. Skipped only when the
    binary cannot run on this machine; a server that does not start is an error."""
    binary = seaweedfs_server.weed_binary()
    reason = seaweedfs_server.unusable_reason(binary)
    if reason is not None or binary is None:
        pytest.skip(f"SeaweedFS: {reason}")
    directory = tmp_path_factory.mktemp("seaweedfs")
    with (
        seaweedfs_server.running(binary, directory) as server,
        seaweedfs_server.route_store_urls(server),
    ):
        yield server


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[azurite_server.Azurite]:
    """Azurite's blob service for the whole session, `az://` URLs reaching it. Skipped only
    when Node.js or Azurite is not installed; an emulator that does not start is an error."""
    command, reason = azurite_server.executable()
    if command is None:
        pytest.skip(f"Azure (Azurite): {reason}")
    with azurite_server.running(command, tmp_path_factory.mktemp("azurite")) as server:
        yield server


@pytest.fixture(scope="session")
def fake_gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[gcs_server.FakeGCS]:
    """fake-gcs-server and its proxy for the whole session, `gs://` URLs reaching them.
    Skipped only when the binary is not there for this machine."""
    binary, reason = gcs_server.binary()
    if binary is None:
        pytest.skip(f"GCS (fake-gcs-server): {reason}")
    with gcs_server.running(binary, tmp_path_factory.mktemp("fake-gcs")) as server:
        yield server


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store URL on each backend (a new bucket or container on the servers), empty
    but for what `s3auth check` leaves on a server's: the verdict of its store probes
    (`checked`)."""
    if request.param == "memory":
        return "memory://"
    if request.param == "file":
        return f"file://{tmp_path / 'store'}"
    return checked(unchecked_url(request, request.param))


def unchecked_url(request: pytest.FixtureRequest, backend: str) -> str:
    """A new bucket or container on the server of `backend`, empty."""
    if backend == "seaweedfs":
        server: seaweedfs_server.SeaweedFS = request.getfixturevalue("seaweedfs")
        return server.fresh_url()
    if backend == "azure":
        emulator: azurite_server.Azurite = request.getfixturevalue("azurite")
        return emulator.fresh_url()
    if backend == "gcs":
        fake: gcs_server.FakeGCS = request.getfixturevalue("fake_gcs")
        return fake.fresh_url()
    endpoint = request.getfixturevalue("moto_endpoint")
    return f"s3://{make_bucket(endpoint)}/auth"


def checked(url: str) -> str:
    """`url`, its store given the verdict that `s3auth check` leaves (1 PUT): a service's
    check of it then costs 1 GET, where a store without one is probed, ten requests more,
    at its first start or write (`store_check`; test_store_check.py probes fresh ones)."""
    from s3auth_asgi.cli.context import run_async
    from s3auth_asgi.storage.verdicts import record_verdict

    store = ObjectStore.from_url(url)
    assert run_async(lambda: record_verdict(store, "s3auth check", time.time())) == "written"
    return url


@pytest.fixture
def backend(request: pytest.FixtureRequest, store_url: str) -> str:
    """`memory`, `file`, `s3` (moto), `seaweedfs`, `azure` or `gcs`: the `store_url`
    parameter, since both S3 servers have s3:// URLs."""
    callspec = getattr(request.node, "callspec", None)
    param = callspec.params.get("store_url") if callspec is not None else None
    return str(param) if param in EVERY_STORE else store_url.split(":", 1)[0]


@pytest.fixture
def store(store_url: str) -> ObjectStore:
    return ObjectStore.from_url(store_url)


# Cheap argon2 parameters keep the suite fast; the hashing tests use the defaults.
FAST_HASHING = {"argon2_memory_kib": 1024, "argon2_time_cost": 1}
# The defaults, OWASP's least: an app made with FAST_HASHING warns of its cost, so a test
# that counts the app's warnings, and hashes nothing, makes it with these.
DEFAULT_HASHING = {"argon2_memory_kib": 19456, "argon2_time_cost": 2}


def make_settings(store_url: str = "memory://", **overrides: object) -> S3AuthSettings:
    values = {"store_url": store_url, "secret_key": SECRET, **FAST_HASHING, **overrides}
    return S3AuthSettings(**values)  # type: ignore[arg-type]


def make_service(
    store_url: str = "memory://", *, store: Store | None = None, **overrides: object
) -> S3AuthService:
    """A service over `store_url`; pass `store` to share one memory:// store, or a fake."""
    return S3AuthService(make_settings(store_url, **overrides), store=store)


@pytest.fixture
def service(store_url: str) -> S3AuthService:
    return make_service(store_url)
