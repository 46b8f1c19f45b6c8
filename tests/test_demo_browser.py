"""The demo page in a real browser: headless Chromium (Debian's `chromium` package) driven
by Playwright against the demo app served by uvicorn on a free loopback port."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from conftest import FAST_HASHING

from s3auth_asgi import S3AuthService
from s3auth_asgi.demo.app import create_demo_app
from s3auth_asgi.demo.config import demo_settings

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="the browser test needs the `playwright` package (pip install playwright)",
)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(
        "Debian's chromium is not installed (apt-get install -y chromium, or `make browser`)",
        allow_module_level=True,
    )

PASSWORD = "Secret123!"
TIMEOUT_MS = 10_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def demo_url(tmp_path: Path) -> Iterator[str]:
    environ = {f"S3AUTH_{k.upper()}": str(v) for k, v in FAST_HASHING.items()}
    service = S3AuthService(demo_settings(tmp_path / ".s3auth-demo", environ))
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_demo_app(service), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the demo server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_register_log_in_see_sessions_and_log_out(demo_url: str) -> None:
    expect = sync_api.expect
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            blocked: list[str] = []
            page.on(
                "console",
                lambda message: (
                    blocked.append(message.text)
                    if "Content Security Policy" in message.text
                    else None
                ),
            )
            page.goto(demo_url + "/")

            page.fill("#register-username", "alice")
            page.fill("#register-email", "alice@example.com")
            page.fill("#register-password", PASSWORD)
            page.click("#register-form button[type=submit]")
            expect(page.locator("#register-result")).to_contain_text("Registered alice")

            page.fill("#login-password", PASSWORD)  # the username was filled in for us
            page.click("#login-form button[type=submit]")
            expect(page.locator("#profile-username")).to_have_text("alice")
            expect(page.locator("#profile-email")).to_have_text("alice@example.com")
            rows = page.locator("#sessions tr")
            expect(rows).to_have_count(1)
            expect(rows.first).to_contain_text("this session")
            expect(rows.first).to_contain_text("127.0.0.1")

            # A reload forgets the access token; the HttpOnly refresh cookie brings it back.
            page.reload()
            expect(page.locator("#profile-username")).to_have_text("alice")

            page.click("#call-api")
            expect(page.locator("#api-result")).to_have_text("Hello, alice!")

            page.click("#logout")
            expect(page.locator("#signed-out")).to_be_visible()
            expect(page.locator("#signed-in")).to_be_hidden()
            expect(page.locator("#log")).to_contain_text("POST /auth/logout → 204")
            page.reload()  # the session is over: the cookie no longer signs anyone in
            page.wait_for_load_state("networkidle")
            expect(page.locator("#signed-out")).to_be_visible()

            page.fill("#login-username", "alice")
            page.click("#hammer")
            expect(page.locator("#hammer-results li")).to_have_count(12)
            statuses = page.locator("#hammer-results li").evaluate_all(
                "items => items.map(item => item.dataset.status)"
            )
            assert statuses[0] == "401"
            assert statuses[-1] == "429"
            assert blocked == []
        finally:
            browser.close()
