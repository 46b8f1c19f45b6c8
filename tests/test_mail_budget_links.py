"""A spent mail budget answers the same 202 and mails nothing (`AuthRateLimits.mail_admitted`):
the owner is not refused a link because the budget that refuses has mailed one within its
emission interval, which the link outlives. Settings under which a link can expire sooner
than the budgets let the next one go (a short S3AUTH_PASSWORD_RESET_MINUTES, slow
`recovery_*` limits) are taken but warned of, as the app warns of what it takes and may not
be meant: a line when the app is made, a `[warn]` line of `s3auth check`."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from conftest import DEFAULT_HASHING, make_settings
from support import Clock, clock_fixture  # noqa: F401 (a fixture)
from test_cli import check_warnings
from test_recovery_limits import ALICE, ask, mails_to_alice, with_alice

from s3auth_asgi import S3AuthService
from s3auth_asgi.account_tokens import InvalidAccountTokenError
from s3auth_asgi.app import DEFAULT_AUTH_LIMITS, create_auth_app
from s3auth_asgi.lifecycle_settings import short_lived_links
from s3auth_asgi.mail import FileMailer
from s3auth_asgi.ratelimit import RateLimit
from s3auth_asgi.storage import ObjectStore

RESET_WARNING = (
    "S3AUTH_PASSWORD_RESET_MINUTES=10: a reset link can expire before the limits on the "
    "mails asked for by name let another go to its inbox (up to 660 s, the emission "
    "intervals of recovery_account and recovery_inbox): whoever keeps asking for an "
    "account's reset can leave its owner without a working link; make the links live "
    "longer or the limits admit mails more often"
)


def test_the_defaults_warn_of_nothing() -> None:
    assert short_lived_links(make_settings(), DEFAULT_AUTH_LIMITS) == []
    # Without the limits nothing is refused quietly, whatever the links' lifetime.
    assert short_lived_links(make_settings(password_reset_minutes=1), {}) == []


def test_a_link_shorter_than_the_budgets_refusals_is_warned_of() -> None:
    short = make_settings(password_reset_minutes=10)
    assert short_lived_links(short, DEFAULT_AUTH_LIMITS) == [RESET_WARNING]
    # 11 minutes outlive the 5 + 6 of the default limits.
    assert short_lived_links(make_settings(password_reset_minutes=11), DEFAULT_AUTH_LIMITS) == []
    # Slow limits: three mails a day per inbox refuse for 8 hours, which a verification
    # link (48 hours) outlives and a reset link (30 minutes) does not.
    slow = {**DEFAULT_AUTH_LIMITS, "recovery_inbox": RateLimit(3, 86400)}
    (warning,) = short_lived_links(make_settings(), slow)
    assert warning.startswith("S3AUTH_PASSWORD_RESET_MINUTES=30: ")
    assert "(up to 29100 s," in warning
    slower = {**slow, "recovery_inbox": RateLimit(1, 7 * 86400)}
    reset, verification = short_lived_links(make_settings(), slower)
    assert reset.startswith("S3AUTH_PASSWORD_RESET_MINUTES=30: ")
    assert verification.startswith(
        "S3AUTH_EMAIL_VERIFICATION_HOURS=48: a verification link can expire before"
    )


@pytest.mark.anyio
async def test_a_short_link_is_what_leaves_the_owner_without_one(
    tmp_path: Path, clock: Clock
) -> None:
    """Why it is warned of: a stranger asking for the owner's reset keeps the inbox's
    budget spent; the owner's own ask is answered 202 and mails nothing, and the newest
    link the inbox got is the stranger's of up to 6 minutes before, which a 5-minute link
    has outlived."""
    service = S3AuthService(
        make_settings(rate_limit_store="store", password_reset_minutes=5),
        store=ObjectStore.from_url("memory://"),
        clock=clock,
        mailer=FileMailer(tmp_path / "outbox"),
    )
    await with_alice(service)
    for i in range(DEFAULT_AUTH_LIMITS["recovery_inbox"].max_requests):
        assert (await ask(service, f"198.51.100.{i + 1}", ALICE[i % 2])).status_code == 202
    clock.advance(5 * 60 + 30)  # every link mailed has expired; the budget refuses still
    before = len(await mails_to_alice(service))
    assert before == DEFAULT_AUTH_LIMITS["recovery_inbox"].max_requests
    assert (await ask(service, "192.0.2.10", "alice")).status_code == 202
    newest, *_ = mails = await mails_to_alice(service)
    assert len(mails) == before  # refused quietly: nothing mailed
    with pytest.raises(InvalidAccountTokenError):  # and the newest link has expired
        await service.reset_password(newest, "Brand-new-pass-7")


def test_check_warns_of_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    warned = check_warnings(tmp_path, monkeypatch, S3AUTH_PASSWORD_RESET_MINUTES="10")
    assert warned == [RESET_WARNING]
    limits = "recovery_account=3/60,recovery_inbox=10/60"
    assert check_warnings(tmp_path, monkeypatch, S3AUTH_RATE_LIMITS=limits) == []


def test_the_app_logs_it_for_the_limits_it_counts(caplog: pytest.LogCaptureFixture) -> None:
    def made(**options: object) -> list[str]:
        caplog.clear()
        service = S3AuthService(
            make_settings(password_reset_minutes=10, **DEFAULT_HASHING),
            store=ObjectStore.from_url("memory://"),
        )
        with caplog.at_level(logging.WARNING, logger="s3auth_asgi"):
            create_auth_app(service, **options)  # type: ignore[arg-type]
        return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]

    assert made() == [RESET_WARNING]
    assert made(rate_limit=False) == []  # no budget refuses any mail
