"""Where mailed links lead. No password-reset poisoning: the links mailed for a reset, a
verification and a new address start with S3AUTH_PUBLIC_URL whatever Host,
X-Forwarded-Host or Forwarded header the request that caused them carried, a trusted
proxy's included. And the demo's page that takes a token sends no Referer and runs no
script but its own (OWASP's Forgot Password cheat sheet)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mail_support import link_in, mailing_settings, smtp_server
from test_app import PASSWORD, bearer, client_for, login, mounted, register
from test_demo import demo_service

from s3auth_asgi import S3AuthService
from s3auth_asgi.demo.app import create_demo_app

pytestmark = pytest.mark.anyio

FRONT_END = "https://app.example.com"
HOSTILE = {
    "Host": "evil.example",
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-Proto": "http",
    "Forwarded": "host=evil.example;proto=http",
}


async def test_mailed_links_ignore_a_hostile_host_header() -> None:
    with smtp_server() as server:
        settings = mailing_settings(
            server,
            public_url=FRONT_END,
            trusted_proxies=["127.0.0.1"],
            trust_x_forwarded_for=True,
        )
        service = S3AuthService(settings)
        async with client_for(mounted(service), base_url="http://evil.example") as client:
            await register(client, "alice")  # a verification link
            tokens = await login(client, "alice")
            asked = await client.post(
                "/auth/password/forgot", json={"username": "alice"}, headers=HOSTILE
            )
            assert asked.status_code == 202
            resent = await client.post(
                "/auth/email/verify/resend", json={"username": "alice"}, headers=HOSTILE
            )
            assert resent.status_code == 202
            changed = await client.patch(
                "/auth/me",
                json={"email": "alice2@example.com", "current_password": PASSWORD},
                headers={**bearer(tokens), **HOSTILE},
            )
            assert changed.status_code == 200, changed.text
            await service.mail.drain()
        # Registration's and the resend's verification, the reset, the new address's link,
        # and the notice to the old address (no link).
        received = server.inbox.wait_for(5)
    links = [link_in(m) for m in received if "#token=" in m.get_body().get_content()]
    assert len(links) == 4
    for link in links:
        assert re.fullmatch(rf"{FRONT_END}/(reset-password|verify-email)#token=\S+", link), link
    for message in received:
        assert "evil.example" not in message.as_string()


@pytest.mark.parametrize("path", ["/reset-password", "/verify-email"])
async def test_the_demos_page_that_takes_a_token_sends_no_referrer(
    tmp_path: Path, path: str
) -> None:
    service = demo_service(tmp_path)
    async with client_for(create_demo_app(service), base_url="http://localhost") as client:
        page = await client.get(path)
    assert page.status_code == 200
    assert page.headers["referrer-policy"] == "no-referrer"
    # Scripts of this page alone: none from another origin reads the fragment.
    assert "script-src 'sha256-" in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
