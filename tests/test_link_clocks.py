"""A mailed link's expiry, when the host that issued it and the host that judges it read
different clocks: the issue time written in the link is the issuing host's, but a link
never outlives its lifetime by more than the clock-skew allowance past the store's own
Last-Modified of it, however far ahead the issuing host's clock runs, nor dies sooner than
its lifetime less the allowance after it, however far behind; and the host that judges it
says when the issuing host's clock was off by more than the allowance."""

from __future__ import annotations

import logging
import re

import pytest
from conftest import make_settings
from support import SharedTime, SkewedClock, StoreOnSharedTime

from s3auth_asgi import S3AuthService
from s3auth_asgi.account_tokens import InvalidAccountTokenError, Purpose
from s3auth_asgi.mail import Message
from s3auth_asgi.storage import ObjectStore

pytestmark = pytest.mark.anyio
SKEW = 10  # the default allowance


async def _issued(issuer: S3AuthService, purpose: Purpose) -> str:
    user = await issuer.create_user("alice", "alice@example.com", "Secret123!")
    if purpose == "email-change":
        user = (await issuer.request_email_change(user.id, "alice@new.example")).user
    return await issuer.account_tokens.issue(purpose, user)


@pytest.mark.parametrize("purpose", ["password-reset", "email-verification", "email-change"])
@pytest.mark.parametrize("ahead", [SKEW, 600, 86400])
async def test_a_link_from_a_host_ahead_lives_no_longer_than_by_the_stores_clock(
    purpose: Purpose, ahead: int
) -> None:
    time = SharedTime()
    store = StoreOnSharedTime(ObjectStore.from_url("memory://"), lambda: time.now)
    settings = make_settings(public_url="https://app.example.com")
    issuer = S3AuthService(settings, store=store, clock=SkewedClock(time, ahead))
    judge = S3AuthService(settings, store=store, clock=SkewedClock(time, 0))
    token = await _issued(issuer, purpose)
    lifetime = judge.account_tokens.lifetime(purpose)
    time.advance(lifetime - 1)
    await judge.account_tokens.redeem(purpose, token)  # within its lifetime: it works
    time.advance(SKEW + 2)
    with pytest.raises(InvalidAccountTokenError):
        await judge.account_tokens.redeem(purpose, token)
    # The same for the host that issued it, whose own clock says it has time left.
    if ahead > SKEW:
        with pytest.raises(InvalidAccountTokenError):
            await issuer.account_tokens.redeem(purpose, token)


@pytest.mark.parametrize("purpose", ["password-reset", "email-verification", "email-change"])
@pytest.mark.parametrize("behind", [SKEW + 1, 45 * 60, 3 * 86400])
async def test_a_link_from_a_host_behind_lives_its_lifetime_by_the_stores_clock(
    purpose: Purpose, behind: int
) -> None:
    time = SharedTime()
    store = StoreOnSharedTime(ObjectStore.from_url("memory://"), lambda: time.now)
    settings = make_settings(public_url="https://app.example.com")
    issuer = S3AuthService(settings, store=store, clock=SkewedClock(time, -behind))
    judge = S3AuthService(settings, store=store, clock=SkewedClock(time, 0))
    token = await _issued(issuer, purpose)
    lifetime = judge.account_tokens.lifetime(purpose)
    time.advance(lifetime - SKEW - 1)
    await judge.account_tokens.redeem(purpose, token)  # not dead on arrival: it works
    await issuer.account_tokens.redeem(purpose, token)
    time.advance(SKEW + 2)  # its lifetime and a second past the store's time of it
    with pytest.raises(InvalidAccountTokenError):
        await judge.account_tokens.redeem(purpose, token)


class Inbox:
    def __init__(self) -> None:
        self.sent: list[Message] = []

    async def send(self, message: Message) -> None:
        self.sent.append(message)


async def test_a_reset_link_from_a_host_45_minutes_behind_works_a_minute_later() -> None:
    time = SharedTime()
    store = StoreOnSharedTime(ObjectStore.from_url("memory://"), lambda: time.now)
    settings = make_settings(public_url="https://app.example.com")
    inbox = Inbox()
    behind = SkewedClock(time, -45 * 60)
    issuer = S3AuthService(settings, store=store, clock=behind, mailer=inbox)
    judge = S3AuthService(settings, store=store, clock=SkewedClock(time, 0))
    user = await issuer.create_user("alice", "alice@example.com", "Secret123!")
    await issuer.request_password_reset("alice")
    await issuer.mail.drain()
    (mailed,) = inbox.sent
    link = re.search(r"#token=(\S+)", mailed.text)
    assert link is not None
    time.advance(60)
    await judge.reset_password(link[1], "Another456!")
    assert await judge.authenticate_user("alice", "Another456!") is not None
    after = await judge.get_user_by_id(user.id)
    assert after is not None
    assert after.session_generation != user.session_generation


@pytest.mark.parametrize(("offset", "said"), [(-45 * 60, "2700 s behind"), (600, "600 s ahead")])
async def test_a_link_from_a_host_off_by_more_than_the_allowance_is_logged(
    offset: int, said: str, caplog: pytest.LogCaptureFixture
) -> None:
    time = SharedTime()
    store = StoreOnSharedTime(ObjectStore.from_url("memory://"), lambda: time.now)
    settings = make_settings()
    issuer = S3AuthService(settings, store=store, clock=SkewedClock(time, offset))
    judge = S3AuthService(settings, store=store, clock=SkewedClock(time, 0))
    token = await _issued(issuer, "password-reset")
    caplog.set_level(logging.WARNING, logger="s3auth_asgi")
    await judge.account_tokens.redeem("password-reset", token)
    time.advance(judge.account_tokens.lifetime("password-reset") + SKEW + 1)
    with pytest.raises(InvalidAccountTokenError):  # refused: said as well
        await judge.account_tokens.redeem("password-reset", token)
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(lines) == 2
    for line in lines:
        assert said in line
        assert "password-reset" in line
        for part in token.split("."):
            assert part not in line


async def test_a_link_from_a_host_within_the_allowance_is_judged_by_its_own_times(
    caplog: pytest.LogCaptureFixture,
) -> None:
    time = SharedTime()
    store = StoreOnSharedTime(ObjectStore.from_url("memory://"), lambda: time.now)
    settings = make_settings()
    issuer = S3AuthService(settings, store=store, clock=SkewedClock(time, -SKEW))
    judge = S3AuthService(settings, store=store, clock=SkewedClock(time, 0))
    token = await _issued(issuer, "password-reset")
    caplog.set_level(logging.WARNING, logger="s3auth_asgi")
    time.advance(judge.account_tokens.lifetime("password-reset") - SKEW - 1)
    await judge.account_tokens.redeem("password-reset", token)
    time.advance(1)  # its lifetime past the issue time written in it
    with pytest.raises(InvalidAccountTokenError):
        await judge.account_tokens.redeem("password-reset", token)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
