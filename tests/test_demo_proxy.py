"""The demo as `make demo` runs it (uvicorn on loopback): a client that rotates
X-Forwarded-For does not get a fresh rate-limit budget per claimed address, and a client
that knows only the demo's address (another user of the machine) cannot read its outbox."""

from __future__ import annotations

import os
import re
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
    banner = tmp_path / "banner.txt"
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
        stdout=banner.open("wb"),
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


def test_the_outbox_of_a_running_demo_opens_with_the_printed_key_only(
    demo_url: str, tmp_path: Path
) -> None:
    printed = re.search(
        r"^  outbox:   (\S+)/#outbox=(\S+)  ", (tmp_path / "banner.txt").read_text(), re.M
    )
    assert printed is not None and printed[1] == demo_url
    with httpx.Client(base_url=demo_url, timeout=10) as someone:
        registered = someone.post(
            "/auth/register",
            json={"username": "alice", "email": "alice@example.com", "password": "Secret123!"},
        )
        assert registered.status_code == 201
        refused = someone.get("/demo/outbox")
        assert refused.status_code == 404
        assert refused.headers["content-type"] == "application/problem+json"
        deadline = time.monotonic() + 10
        while True:  # the mail goes out after the answer
            shown = someone.get("/demo/outbox", headers={"Demo-Outbox-Key": printed[2]})
            assert shown.status_code == 200
            if shown.json()["messages"] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert [m["to"] for m in shown.json()["messages"]] == ["alice@example.com"]
