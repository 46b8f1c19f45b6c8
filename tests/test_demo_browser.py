"""The demo page in a real browser: headless Chromium (Debian's `chromium` package) driven
by Playwright against the demo app served by uvicorn on a free loopback port.

The admin test takes a screenshot of the page (in its temporary directory); with
S3AUTH_UPDATE_SCREENSHOT=1 it also writes it to docs/images/demo.png, the picture the README
and docs/cli.md show (optimised by `optipng` when it is installed):

    S3AUTH_UPDATE_SCREENSHOT=1 .venv/bin/python -m pytest tests/test_demo_browser.py -k admin
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from conftest import FAST_HASHING
from support import serving

from s3auth_asgi import S3AuthService
from s3auth_asgi.demo.app import create_demo_app
from s3auth_asgi.demo.config import demo_settings
from s3auth_asgi.totp import decode_secret, time_step, totp

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
# A loaded 2-core machine can take seconds to hash a password and answer; the assertions are
# about what the page shows, not how soon.
TIMEOUT_MS = 20_000
VIEWPORT = {"width": 1200, "height": 800}
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "images" / "demo.png"
UPDATE_SCREENSHOT = os.environ.get("S3AUTH_UPDATE_SCREENSHOT") == "1"

FIREFOX_ON_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
)
# A User-Agent of the kind that used to stretch the sessions table over five lines.
LONG_USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; SM-S928B Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.122 Mobile Safari/537.36 "
    "[FB_IAB/FB4A;FBAV/470.0.0.43.109;FBBV/612345678;FBDM/{density=3.0,width=1440,height=3088};"
    "FBLC/en_GB;FBRV/0;FBCR/Vodafone;FBMF/samsung;FBBD/samsung;FBPN/com.facebook.katana;]"
)


OUTBOX_KEY = "4mI3x0vqkP7Y2bTqJpV0mS9wLr6cN1dHfE8uAoZsQyG"


@dataclass
class Demo:
    url: str
    directory: Path
    environ: dict[str, str]

    @property
    def outbox_link(self) -> str:
        """The link `s3auth demo` prints for whoever started it: the page, with the mails."""
        return f"{self.url}/#outbox={OUTBOX_KEY}"

    def create_users(self, *names: str, admin: bool = False) -> None:
        """Accounts made the way `s3auth --demo user create` makes them: by a service of
        its own on the demo's store (in a thread: Playwright's loop runs in this one)."""
        service = S3AuthService(demo_settings(self.directory, self.environ))

        async def create() -> None:
            for name in names:
                await service.create_user(name, f"{name}@example.com", PASSWORD, is_admin=admin)

        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(anyio.run, create).result()

    def log_in_elsewhere(self, username: str, user_agent: str) -> dict[str, str]:
        """A session of `username` on another device: its Authorization header."""
        response = httpx.post(
            self.url + "/auth/login",
            data={"username": username, "password": PASSWORD},
            headers={"User-Agent": user_agent},
        )
        assert response.status_code == 200, response.text
        return {"Authorization": "Bearer " + response.json()["access_token"]}

    def api_status(self, headers: dict[str, str]) -> int:
        return httpx.get(self.url + "/api/hello", headers=headers).status_code


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    environ = {f"S3AUTH_{k.upper()}": str(v) for k, v in FAST_HASHING.items()}
    directory = tmp_path / ".s3auth-demo"
    service = S3AuthService(demo_settings(directory, environ))
    with serving(create_demo_app(service, outbox_key=OUTBOX_KEY)) as url:
        yield Demo(url, directory, environ)


@pytest.fixture
def page(demo: Demo) -> Iterator[Any]:
    """A page on the demo that fails the test if its Content-Security-Policy blocks
    anything, or if the page's script throws."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            # Chromium's own User-Agent, without the "Headless" a person never sees.
            major = browser.version.split(".")[0]
            user_agent = (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                f"Chrome/{major}.0.0.0 Safari/537.36"
            )
            page = browser.new_page(viewport=VIEWPORT, user_agent=user_agent)
            page.set_default_timeout(TIMEOUT_MS)
            sync_api.expect.set_options(timeout=TIMEOUT_MS)
            troubles: list[str] = []
            page.on(
                "console",
                lambda message: (
                    troubles.append(message.text)
                    if "Content Security Policy" in message.text
                    else None
                ),
            )
            page.on("pageerror", lambda error: troubles.append(str(error)))
            page.goto(demo.url + "/")
            yield page
            assert troubles == []
        finally:
            browser.close()


def log_in(page: Any, username: str) -> None:
    page.fill("#login-username", username)
    page.fill("#login-password", PASSWORD)
    page.click("#login-form button[type=submit]")
    sync_api.expect(page.locator("#notice")).to_contain_text(f"Logged in as {username}")


def assert_fits(page: Any, selector: str) -> None:
    """Nothing in the card is wider than the card."""
    widths = page.locator(selector).evaluate(
        "card => ({scroll: card.scrollWidth, client: card.clientWidth,"
        " table: card.querySelector('table').scrollWidth})"
    )
    assert widths["scroll"] <= widths["client"], widths
    assert widths["table"] <= widths["client"], widths


def test_register_log_in_see_sessions_and_log_out(demo: Demo, page: Any) -> None:
    expect = sync_api.expect

    # The rules shown beside the field are the service's, as its document gives them.
    document = httpx.get(demo.url + "/auth/openapi.json").json()
    rules = document["components"]["schemas"]["RegisterRequest"]["properties"]["password"]
    expect(page.locator("#register-password-rules")).to_have_text(rules["description"])
    expect(page.locator("#register-password")).to_have_attribute(
        "aria-describedby", "register-password-rules register-password-error"
    )

    # A weak password: every rule it breaks, beside the password field.
    page.fill("#register-username", "alice")
    page.fill("#register-email", "alice@example.com")
    page.fill("#register-password", "kwtpfx")
    page.click("#register-form button[type=submit]")
    password_error = page.locator("#register-password-error")
    expect(password_error).to_be_visible()
    expect(password_error.locator("li")).to_have_text(
        [
            "The password must be at least 8 characters",
            "The password needs an upper-case letter",
            "The password needs a digit",
        ]
    )
    expect(page.locator("#register-password")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#register-username")).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("#register-result")).to_have_text(
        "The password does not meet the password policy"
    )
    # An email the server refuses: beside the email field, the password error gone.
    page.fill("#register-email", "alice@")
    page.fill("#register-password", PASSWORD)
    expect(password_error).to_be_hidden()  # typing clears a field's error
    page.click("#register-form button[type=submit]")
    expect(page.locator("#register-email-error")).to_contain_text("not valid")
    expect(page.locator("#register-email")).to_have_attribute("aria-invalid", "true")
    expect(password_error).to_be_hidden()

    page.fill("#register-email", "alice@example.com")
    page.click("#register-form button[type=submit]")
    expect(page.locator("#register-result")).to_contain_text("Registered alice")
    expect(page.locator("#register-email-error")).to_be_hidden()

    # A wrong password: said under the form.
    page.fill("#login-password", "Wrong1234")  # the username was filled in for us
    page.click("#login-form button[type=submit]")
    expect(page.locator("#login-result")).to_contain_text("Invalid username or password")
    expect(page.locator("#signed-in")).to_be_hidden()

    log_in(page, "alice")
    expect(page.locator("#profile-username")).to_have_text("alice")
    expect(page.locator("#profile-email")).to_have_text("alice@example.com")
    # Not an administrator: no admin panel, and a word on how to get one.
    expect(page.locator("#admin")).to_be_hidden()
    expect(page.locator("#admin-hint")).to_contain_text("--admin")
    rows = page.locator("#sessions tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("this session")
    expect(rows.first).to_contain_text("127.0.0.1")

    # Two more devices. A reload forgets the access token; the HttpOnly refresh cookie
    # brings it back, and the table lists all three.
    firefox = demo.log_in_elsewhere("alice", FIREFOX_ON_WINDOWS)
    demo.log_in_elsewhere("alice", LONG_USER_AGENT)
    page.reload()
    expect(page.locator("#profile-username")).to_have_text("alice")
    expect(rows).to_have_count(3)
    devices = page.locator("#sessions .device")
    own_user_agent = page.evaluate("navigator.userAgent")
    current = page.locator("#sessions tr", has_text="this session").locator(".device")
    expect(current).to_have_text("Chrome on Linux")
    expect(current).to_have_attribute("title", own_user_agent)
    other = page.locator("#sessions .device", has_text="Firefox on Windows")
    expect(other).to_have_attribute("title", FIREFOX_ON_WINDOWS)
    names = devices.all_inner_texts()
    assert all(" on " in name for name in names), names
    assert "Chrome Mobile WebView on Android" in names or "Facebook on Android" in names, names
    # One line per device, and the table keeps to its card, at the screenshot's size and
    # on a phone.
    assert devices.evaluate_all("spans => spans.every(s => s.getClientRects().length === 1)")
    assert_fits(page, "#sessions-card")
    page.set_viewport_size({"width": 390, "height": 844})
    assert_fits(page, "#sessions-card")
    page.set_viewport_size(VIEWPORT)

    # Revoking the Firefox session: confirmed, and its token stops working.
    assert demo.api_status(firefox) == 200
    page.locator("#sessions tr", has_text="Firefox on Windows").locator("button.revoke").click()
    expect(page.locator("#notice")).to_contain_text("Session revoked: Firefox on Windows")
    expect(rows).to_have_count(2)
    assert demo.api_status(firefox) == 401

    page.click("#call-api")
    expect(page.locator("#api-result")).to_have_text("Hello, alice!")

    page.click("#logout")
    expect(page.locator("#notice")).to_contain_text("Logged out")
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


def test_an_admin_ends_sessions_and_disables_an_account(
    demo: Demo, page: Any, tmp_path: Path
) -> None:
    expect = sync_api.expect
    demo.create_users("root", admin=True)
    demo.create_users("bob", "carol", "dave", "erin", "frank")
    root_elsewhere = demo.log_in_elsewhere("root", FIREFOX_ON_WINDOWS)

    log_in(page, "root")
    admin = page.locator("#admin")
    expect(admin).to_be_visible()
    expect(page.locator("#admin-hint")).to_be_hidden()
    expect(page.locator("#sessions tr")).to_have_count(2)
    assert_fits(page, "#sessions-card")
    assert_fits(page, "#admin")

    # Six accounts, five to a page, in the order of their (random) ids. An admin does not
    # lock themselves out from here.
    users = page.locator("#admin-users tr")
    listed = "rows => rows.map(row => row.dataset.username)"
    own_toggle = page.locator("#admin-users tr[data-username=root] button.toggle")
    expect(users).to_have_count(5)
    expect(page.locator("#admin-previous")).to_be_disabled()
    first_page = users.evaluate_all(listed)
    page.click("#admin-next")
    expect(users).to_have_count(1)
    expect(page.locator("#admin-next")).to_be_disabled()
    assert sorted(first_page + users.evaluate_all(listed)) == sorted(
        ["root", "bob", "carol", "dave", "erin", "frank"]
    )
    if "root" not in first_page:
        expect(own_toggle).to_be_disabled()
    page.click("#admin-previous")
    expect(users).to_have_count(5)
    if "root" in first_page:
        expect(own_toggle).to_be_disabled()

    name, bystander = [n for n in first_page if n != "root"][:2]
    target = demo.log_in_elsewhere(name, FIREFOX_ON_WINDOWS)
    row = page.locator(f"#admin-users tr[data-username={name}]")
    dialog = page.locator("#confirm")

    # Ending someone's sessions asks first, then says what it did.
    row.locator("button.end-sessions").click()
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"End every session of {name}?")
    page.click("#confirm-ok")
    expect(dialog).to_be_hidden()
    expect(page.locator("#notice")).to_contain_text(f"Revoked 1 session of {name}")
    assert demo.api_status(target) == 401
    target = demo.log_in_elsewhere(name, FIREFOX_ON_WINDOWS)

    # A cancelled disable changes nothing.
    other = page.locator(f"#admin-users tr[data-username={bystander}]")
    other.locator("button.toggle").click()
    page.click("#confirm-cancel")
    expect(dialog).to_be_hidden()
    expect(other.locator("button.toggle")).to_have_text("Disable")
    expect(page.locator("#log")).not_to_contain_text("PATCH")

    # A reset link mailed at the owner's address, which the administrator never sees.
    row.locator("button.reset").click()
    expect(dialog).to_contain_text(f"Mail {name} a link")
    page.click("#confirm-ok")
    expect(page.locator("#notice")).to_contain_text(f"A reset link is on its way to {name}")
    expect(page.locator("#log")).to_contain_text("/password-reset → 202")

    # Changed by another administrator since the list was loaded: the change is refused
    # (412, on the ETag the row was shown with) and said so, until the list is reloaded.
    user_id = row.get_attribute("data-user-id")
    changed = httpx.patch(
        f"{demo.url}/auth/admin/users/{user_id}",
        json={"full_name": "Renamed"},
        headers=root_elsewhere,
    )
    assert changed.status_code == 200, changed.text
    row.locator("button.toggle").click()
    page.click("#confirm-ok")
    expect(page.locator("#notice")).to_contain_text("changed since you loaded it")
    expect(page.locator("#log")).to_contain_text("→ 412")
    assert demo.api_status(target) == 200
    page.click("#admin-reload")
    expect(row.locator("td").first).to_have_attribute("title", "Renamed")

    # Disabling: confirmed; the account is logged out and cannot log in.
    row.locator("button.toggle").click()
    expect(dialog).to_contain_text(f"Disable {name}?")
    page.click("#confirm-ok")
    expect(page.locator("#notice")).to_contain_text(f"{name} is disabled and logged out everywhere")
    expect(row.locator("td .status").last).to_have_text("disabled")
    expect(row.locator("button.toggle")).to_have_text("Enable")
    assert demo.api_status(target) == 401
    refused = httpx.post(demo.url + "/auth/login", data={"username": name, "password": PASSWORD})
    assert refused.status_code == 401

    page.evaluate("window.scrollTo(0, 0)")
    shot = tmp_path / "demo.png"
    page.screenshot(path=shot)
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    if UPDATE_SCREENSHOT:
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)
        if optipng := shutil.which("optipng"):
            subprocess.run([optipng, "-quiet", "-o5", "-strip", "all", str(SCREENSHOT)], check=True)

    row.locator("button.toggle").click()  # enabling asks nothing
    expect(page.locator("#notice")).to_contain_text(f"{name} is enabled again")
    expect(row.locator("button.toggle")).to_have_text("Disable")
    demo.log_in_elsewhere(name, FIREFOX_ON_WINDOWS)


def test_forgot_password_reset_from_the_outbox_and_log_in(demo: Demo, page: Any) -> None:
    expect = sync_api.expect
    demo.create_users("alice")
    outbox = page.locator("#outbox li")
    closed = page.locator("#outbox-closed")
    # A browser that came without the printed link (another user of the machine) is told
    # where the mails are, and shown none.
    expect(closed).to_be_visible()
    expect(closed).to_contain_text("outbox")
    page.fill("#forgot-username", "alice@example.com")
    page.click("#forgot-form button[type=submit]")
    expect(page.locator("#forgot-result")).to_contain_text("Check your inbox")
    page.click("#outbox-refresh")
    expect(outbox).to_have_count(0)
    expect(closed).to_be_visible()

    # The printed link, opened in the page already there: the mails, and the key gone
    # from the address bar and the history.
    page.goto(demo.outbox_link)
    mail = page.locator("#outbox li", has_text="Reset your password")
    expect(mail).to_contain_text("to alice@example.com")
    expect(closed).to_be_hidden()
    assert page.evaluate("location.href") == demo.url + "/"
    # The link in the mail leads back to the page, at the reset form, the outbox still shown.
    mail.locator("a").click()
    expect(page.locator("#reset-card")).to_be_visible()
    expect(mail).to_be_visible()
    page.fill("#reset-password", "weak")
    page.click("#reset-form button[type=submit]")
    expect(page.locator("#reset-password-error")).to_contain_text("at least 8 characters")
    page.fill("#reset-password", "Brand-new-pass-7")
    page.click("#reset-form button[type=submit]")
    expect(page.locator("#notice")).to_contain_text("Password changed")
    expect(page.locator("#reset-card")).to_be_hidden()
    assert page.evaluate("location.pathname + location.hash") == "/"

    page.fill("#login-username", "alice")
    page.fill("#login-password", "Brand-new-pass-7")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#notice")).to_contain_text("Logged in as alice")
    expect(page.locator("#profile-verified")).to_have_text("yes")  # the reset link proved it


def test_the_outbox_links_only_the_mailed_links_to_the_page(demo: Demo, page: Any) -> None:
    # An address is the registrant's words in the mail; its local part may look like a
    # mailed link to another site, which the outbox must show as text.
    lure = "//evil.example/#token=abc@example.com"
    answer = httpx.post(
        demo.url + "/auth/register",
        json={"username": "lure", "email": lure, "password": PASSWORD},
    )
    assert answer.status_code == 201, answer.text
    outbox = demo.directory / "outbox"
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not any(outbox.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.01)  # the mail goes out after the answer
    page.goto(demo.outbox_link)
    mail = page.locator("#outbox li", has_text="Confirm your email address")
    sync_api.expect(mail).to_contain_text(f"confirm that {lure} is your address")
    links = mail.locator("a").evaluate_all("links => links.map(link => link.href)")
    assert len(links) == 1 and links[0].startswith(demo.url + "/verify-email#token="), links


def test_a_user_turns_on_the_second_factor_and_logs_in_with_a_code(demo: Demo, page: Any) -> None:
    expect = sync_api.expect
    demo.create_users("alice")
    log_in(page, "alice")
    status = page.locator("#totp-status")
    expect(status).to_contain_text("Off")

    # The password, then the seed shown for the app: as text, and as the otpauth:// URI.
    page.fill("#totp-start-password", PASSWORD)
    page.click("#totp-start-form button[type=submit]")
    secret = page.locator("#totp-secret")
    expect(secret).to_be_visible()
    shown = secret.inner_text()
    uri = page.locator("#totp-uri").inner_text()
    assert uri.startswith("otpauth://totp/") and f"secret={shown}&" in uri, uri
    seed = decode_secret(shown)
    page.fill("#totp-confirm-code", totp(seed, time.time()))
    page.click("#totp-confirm-form button[type=submit]")
    codes = page.locator("#totp-recovery-codes li")
    expect(codes).to_have_count(10)
    expect(page.locator("#totp-recovery")).to_contain_text("Save these")
    expect(status).to_contain_text("On")
    expect(secret).to_be_hidden()
    recovery = codes.all_inner_texts()
    # What is shown once is shown on the page alone, not in the API log.
    log = page.locator("#log").inner_text()
    assert shown not in log and not any(code in log for code in recovery), log

    page.click("#logout")
    expect(page.locator("#signed-out")).to_be_visible()

    # The password, then a code; a wrong one is refused beside the field.
    page.fill("#login-username", "alice")
    page.fill("#login-password", PASSWORD)
    page.click("#login-form button[type=submit]")
    field = page.locator("#totp-login-code")
    expect(field).to_be_visible()
    expect(field).to_be_focused()
    expect(field).to_have_attribute("autocomplete", "one-time-code")
    expect(field).to_have_attribute("inputmode", "numeric")
    expect(page.locator("#login-form")).to_be_hidden()
    step = time_step(time.time())
    window = {totp(seed, (step + shift) * 30) for shift in range(-1, 3)}
    wrong = next(code for code in ("000000", "111111", "222222") if code not in window)
    field.fill(wrong)
    page.click("#totp-login-form button[type=submit]")
    expect(page.locator("#totp-login-code-error")).to_have_text(
        "The code is wrong or has been used"
    )
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#signed-in")).to_be_hidden()
    # The confirming code's step is spent: the next step's code, which the window admits.
    field.fill(totp(seed, time.time() + 30))
    page.click("#totp-login-form button[type=submit]")
    expect(page.locator("#notice")).to_contain_text("Logged in as alice")
    expect(status).to_contain_text("On")
    assert "mfa1." not in page.locator("#log").inner_text()

    # New recovery codes: the password (a wrong one refused beside its field), then ten new
    # codes shown once, as at turn-on; the ones made before stop working.
    page.fill("#totp-codes-password", "Wrong1234")
    page.click("#totp-codes-form button[type=submit]")
    expect(page.locator("#totp-codes-password-error")).to_have_text("The current password is wrong")
    expect(page.locator("#totp-codes-password")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#totp-recovery")).to_be_hidden()
    page.fill("#totp-codes-password", PASSWORD)
    page.click("#totp-codes-form button[type=submit]")
    expect(page.locator("#totp-recovery")).to_contain_text("made before no longer work")
    expect(codes).to_have_count(10)
    expect(page.locator("#totp-codes-password")).to_have_value("")
    renewed = codes.all_inner_texts()
    assert not set(renewed) & set(recovery), (renewed, recovery)
    log = page.locator("#log").inner_text()
    assert not any(code in log for code in renewed), log
    page.click("#totp-recovery-done")
    expect(page.locator("#totp-recovery")).to_be_hidden()

    # At the next login a code made before is refused, and a new one works.
    page.click("#logout")
    page.fill("#login-username", "alice")
    page.fill("#login-password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.click("#totp-login-recovery")
    expect(field).to_have_attribute("inputmode", "text")
    field.fill(recovery[1])
    page.click("#totp-login-form button[type=submit]")
    expect(page.locator("#totp-login-code-error")).to_have_text(
        "The code is wrong or has been used"
    )
    field.fill(renewed[1])
    page.click("#totp-login-form button[type=submit]")
    expect(page.locator("#notice")).to_contain_text("Logged in as alice")

    # Off again, with the password and a recovery code.
    page.fill("#totp-disable-password", PASSWORD)
    page.fill("#totp-disable-code", renewed[0])
    page.click("#totp-disable-form button[type=submit]")
    expect(status).to_contain_text("Off")
    expect(page.locator("#notice")).to_contain_text("second factor is off")
