"""S3AUTH_REQUIRE_VERIFIED_EMAIL=true with no mailer is taken, since an administrator may
mean to approve each account by marking it verified, but warned of as the app warns of what
it takes and may not be meant: a line when the app is made, and a `[warn]` line of
`s3auth check`. Self-registered accounts can then never verify, and never log in until an
administrator marks them verified."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from conftest import DEFAULT_HASHING, make_settings
from test_cli import check_warnings

from s3auth_asgi import S3AuthService
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.mail import FileMailer
from s3auth_asgi.storage import ObjectStore

WARNING = (
    "S3AUTH_REQUIRE_VERIFIED_EMAIL is true but no mailer is configured (S3AUTH_SMTP_HOST, "
    "S3AUTH_MAIL_OUTBOX, or a mailer given to S3AuthService in code): a self-registered "
    "account can never verify its address, and cannot log in until an administrator marks "
    "it verified"
)


def test_check_warns_of_registrations_that_can_never_verify(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warned = check_warnings(tmp_path, monkeypatch, S3AUTH_REQUIRE_VERIFIED_EMAIL="true")
    assert warned == [WARNING]
    # With mail sent, the link verifies the address: nothing to warn of.
    outbox = {
        "S3AUTH_MAIL_OUTBOX": str(tmp_path / "outbox"),
        "S3AUTH_MAIL_FROM": "auth@example.com",
    }
    assert check_warnings(tmp_path, monkeypatch, **outbox) == []


def test_the_app_logs_the_same_warning_once_when_it_is_made(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    required = make_settings(require_verified_email=True, **DEFAULT_HASHING)

    def made(**options: object) -> list[str]:
        caplog.clear()
        service = S3AuthService(store=ObjectStore.from_url("memory://"), **options)  # type: ignore[arg-type]
        with caplog.at_level(logging.WARNING, logger="s3auth_asgi"):
            create_auth_app(service)
        return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]

    assert made(settings=required) == [WARNING]
    # A mailer given in code sends the links, as one from the settings does.
    assert made(settings=required, mailer=FileMailer(tmp_path / "outbox")) == []
    outbox = make_settings(
        **DEFAULT_HASHING,
        require_verified_email=True,
        mail_outbox=str(tmp_path / "outbox"),
        mail_from="auth@example.com",
    )
    assert made(settings=outbox) == []
    assert made(settings=make_settings(**DEFAULT_HASHING)) == []
