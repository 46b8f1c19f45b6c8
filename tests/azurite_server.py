"""Azure Blob Storage for the tests: Azurite, Microsoft's emulator, started once per session.

Azurite is an npm package; `make test` installs a pinned version into `.venv/node` (the
last one that runs on Node.js older than 22, which is what Debian ships). It runs with
in-memory persistence on a free port of 127.0.0.1 and without telemetry (otherwise it
reaches out to an outside host). obstore opens `az://` URLs on it through
`AZURE_STORAGE_USE_EMULATOR` and `AZURITE_BLOB_STORAGE_URL`, set while the session runs
(`env()` gives them for a subprocess); the emulator's well-known account and key sign the
requests. Each store is a container of its own, created here with a Shared Key request
(obstore does not create containers).

No tests here (the name keeps pytest from collecting it); conftest holds the fixtures.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import email.utils
import hashlib
import hmac
import os
import re
import shutil
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

ACCOUNT = "devstoreaccount1"
# The emulator's published development key, the same in every installation.
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
API_VERSION = "2021-08-06"
STARTUP_SECONDS = 60.0
_ENV = ("AZURE_STORAGE_USE_EMULATOR", "AZURITE_BLOB_STORAGE_URL")
# A line of Azurite's access log: "PUT /devstoreaccount1/{container}/{blob}?{query} HTTP/1.1"
_ACCESS = re.compile(
    rf'"(?P<method>[A-Z]+) /{ACCOUNT}/(?P<container>[^/?\s]+)(?P<blob>/[^?\s]+)?'
    r"(?:\?(?P<query>\S*))? HTTP/"
)


def executable() -> tuple[Path | None, str | None]:
    """`azurite-blob` as `make test` installs it (or from the PATH), or why it cannot run."""
    if shutil.which("node") is None:
        return None, "Node.js is not installed (make test installs it with apt where it can)"
    installed = Path(sys.prefix) / "node" / "node_modules" / ".bin" / "azurite-blob"
    found = installed if installed.exists() else shutil.which("azurite-blob")
    if found is None:
        return None, f"Azurite is not installed: make test puts it in {installed.parents[2]}"
    return Path(found), None


def _signed(method: str, resource: str, query: dict[str, str]) -> dict[str, str]:
    """Shared Key headers for a request without a body (Azure's canonical form: every
    standard header empty, the x-ms-* headers, then the resource and its query)."""
    headers = {"x-ms-date": email.utils.formatdate(usegmt=True), "x-ms-version": API_VERSION}
    canonical = "".join(f"{name}:{value}\n" for name, value in sorted(headers.items()))
    canonical += f"/{ACCOUNT}{resource}" + "".join(
        f"\n{name}:{value}" for name, value in sorted(query.items())
    )
    to_sign = method + "\n" * 12 + canonical
    key = base64.b64decode(ACCOUNT_KEY)
    signature = base64.b64encode(hmac.new(key, to_sign.encode(), hashlib.sha256).digest())
    return {**headers, "Authorization": f"SharedKey {ACCOUNT}:{signature.decode()}"}


@dataclass
class Azurite:
    endpoint: str
    log: Path

    def env(self) -> dict[str, str]:
        """What a process needs to open this emulator's `az://` URLs."""
        return {"AZURE_STORAGE_USE_EMULATOR": "true", "AZURITE_BLOB_STORAGE_URL": self.endpoint}

    def make_container(self) -> str:
        name = f"s3auth-{uuid.uuid4().hex[:12]}"
        resource = f"/{ACCOUNT}/{name}"
        query = {"restype": "container"}
        request = urllib.request.Request(  # noqa: S310 (loopback)
            f"{self.endpoint}{resource}?restype=container",
            headers={**_signed("PUT", resource, query), "Content-Length": "0"},
            method="PUT",
        )
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 (loopback)
            return name

    def fresh_url(self) -> str:
        """`az://<a new, empty container>/auth`."""
        return f"az://{self.make_container()}/auth"

    def requests(self, store_url: str) -> dict[str, int]:
        """The requests Azurite has answered for the container of `store_url`, by kind (get,
        put, delete, list) as `ObjectStore.requests` counts them, read from its access log.
        A line is written as its answer goes out, so the log is read until it stops
        growing."""
        container = urlsplit(store_url).netloc
        text, seen = "", None
        while text != seen:
            seen, text = text, self.log.read_text(errors="replace")
            time.sleep(0.1)
        counts: collections.Counter[str] = collections.Counter()
        for found in _ACCESS.finditer(text):
            if found["container"] == container:
                kind = _kind(found["method"], found["blob"] is not None, found["query"] or "")
                counts.update([kind] if kind else [])
        return dict(counts)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _kind(method: str, blob: bool, query: str) -> str | None:
    """What `ObjectStore` calls a request (None: one on the container itself)."""
    if "comp=batch" in query:  # a batch of up to 256 blob deletions
        return "delete"
    if "comp=list" in query:
        return "list"
    if not blob:
        return None
    return {"GET": "get", "HEAD": "get", "PUT": "put", "DELETE": "delete"}.get(method)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running(command: Path, directory: Path) -> Iterator[Azurite]:
    """Azurite's blob service until the block ends, with the emulator variables set
    meanwhile. A failure to start is an error with the log's end, not a skip."""
    port = _free_port()
    log = directory / "azurite.log"
    args = [str(command), "--blobHost", "127.0.0.1", "--blobPort", str(port)]
    args += ["--inMemoryPersistence", "--skipApiVersionCheck", "--loose", "--disableTelemetry"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=directory,
            preexec_fn=_exit_with_parent,
        )
    server = Azurite(endpoint=f"http://127.0.0.1:{port}", log=log)
    saved = {name: os.environ.get(name) for name in _ENV}
    try:
        _wait_until_ready(proc, server)
        os.environ.update(server.env())
        yield server
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _wait_until_ready(proc: subprocess.Popen[bytes], server: Azurite) -> None:
    """Until a container can be made, for at most STARTUP_SECONDS."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"Azurite exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            server.make_container()
            return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"Azurite did not answer on {server.endpoint}:\n{server.log_tail()}"
                ) from None
        time.sleep(0.1)
