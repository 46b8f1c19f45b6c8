"""An S3AUTH_PUBLIC_URL over plain http:// to another machine is taken (a network of one's
own may be trusted), but warned of as the app warns of what it takes and may not be meant:
every mailed reset and verification link then opens a page anyone on the path can rewrite,
to read the token in its fragment and take the account over. A loopback front end, as in
development, is no one else's path."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from conftest import DEFAULT_HASHING, make_settings
from test_cli import check_warnings

from s3auth_asgi import S3AuthService
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.storage import ObjectStore

WARNING = (
    "S3AUTH_PUBLIC_URL is plain http:// to app.example.com: every mailed reset or "
    "verification link opens a page that whoever is on the network path can rewrite to read "
    "the link's token and take the account over; use https://"
)


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("http://app.example.com", [WARNING]),
        ("HTTP://App.Example.com:8080/front", [WARNING]),
        ("https://app.example.com", []),
        ("http://localhost:5173", []),
        ("http://127.0.0.1:5173", []),
        ("http://[::1]:5173", []),
    ],
)
def test_check_warns_of_mailed_links_over_plain_http(
    url: str, warned: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert check_warnings(tmp_path, monkeypatch, S3AUTH_PUBLIC_URL=url) == warned


def test_the_app_logs_the_same_warning_once_when_it_is_made(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def made(url: str) -> list[str]:
        caplog.clear()
        settings = make_settings(public_url=url, **DEFAULT_HASHING)
        service = S3AuthService(settings, store=ObjectStore.from_url("memory://"))
        with caplog.at_level(logging.WARNING, logger="s3auth_asgi"):
            create_auth_app(service)
        return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]

    assert made("http://app.example.com") == [WARNING]
    assert made("https://app.example.com") == []
