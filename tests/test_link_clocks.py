"""A mailed link's expiry, when the host that issued it and the host that judges it read
different clocks: the issue time written in the link is the issuing host's, but a link
never outlives its lifetime by more than the clock-skew allowance past the store's own
Last-Modified of it, however far ahead the issuing host's clock runs."""

from __future__ import annotations

import pytest
from conftest import make_settings
from support import SharedTime, SkewedClock, StoreOnSharedTime

from s3auth_asgi import S3AuthService
from s3auth_asgi.account_tokens import InvalidAccountTokenError, Purpose
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
