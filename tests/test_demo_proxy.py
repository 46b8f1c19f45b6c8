"""The demo as `make demo` runs it (uvicorn on loopback): a client that rotates
X-Forwarded-For does not get a fresh rate-limit budget per claimed address."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def demo_url(tmp_path: Path) -> object:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("S3AUTH_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "s3auth_asgi.cli",
            "demo",
            "--port",
            str(port),
            "--dir",
            str(tmp_path / "demo"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/auth/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("the demo did not start")
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_rotating_x_forwarded_for_from_loopback_is_still_one_client(demo_url: str) -> None:
    statuses = []
    with httpx.Client(base_url=demo_url, timeout=10) as client:
        for i in range(60):
            response = client.post(
                "/auth/login",
                data={"username": f"nobody{i}", "password": "Wrong-password-1"},
                headers={"X-Forwarded-For": f"198.51.100.{i}"},
            )
            statuses.append(response.status_code)
    assert set(statuses) <= {401, 429}
    assert statuses.count(429) >= 30  # the per-address budget (20) is one budget here
