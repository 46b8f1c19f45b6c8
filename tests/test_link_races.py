"""Each kind of mailed link (a reset, a verification, a new address's) used at once by
several instances on one store, their clocks apart within the skew allowance: exactly one
use succeeds, on memory:// and on a file:// directory, and the link is spent for every
instance afterwards."""

from __future__ import annotations

import re
from pathlib import Path

import anyio
import pytest
from conftest import make_settings
from support import SharedTime, SkewedClock

from s3auth_asgi import S3AuthService
from s3auth_asgi.account_tokens import InvalidAccountTokenError, Purpose
from s3auth_asgi.errors import EmailTakenError
from s3auth_asgi.mail import Message
from s3auth_asgi.storage import ObjectStore

pytestmark = pytest.mark.anyio
PASSWORD = "Secret123!"
NEW = "raced@new.example"
OFFSETS = (-10, -4, 0, 3, 10)  # seconds: the default allowance either way


class Outbox:
    def __init__(self) -> None:
        self.sent: list[Message] = []

    async def send(self, message: Message) -> None:
        self.sent.append(message)


async def _use(service: S3AuthService, purpose: Purpose, token: str, i: int) -> None:
    if purpose == "password-reset":
        await service.reset_password(token, f"Raced-pass-{i}x")
    elif purpose == "email-verification":
        await service.verify_email(token)
    else:
        await service.confirm_email_change(token)


@pytest.mark.parametrize("where", ["memory", "file"])
@pytest.mark.parametrize("purpose", ["password-reset", "email-verification", "email-change"])
async def test_a_link_used_at_once_on_every_instance_works_once(
    tmp_path: Path, where: str, purpose: Purpose
) -> None:
    url = "memory://" if where == "memory" else f"file://{tmp_path / 'store'}"
    shared = ObjectStore.from_url(url)
    settings = make_settings(url, public_url="https://app.example.com")
    time, outbox = SharedTime(), Outbox()
    hosts = [
        S3AuthService(settings, store=shared, clock=SkewedClock(time, offset), mailer=outbox)
        for offset in OFFSETS
    ]
    user = await hosts[0].create_user("raced", "raced@example.com", PASSWORD)
    if purpose == "email-change":
        await hosts[1].request_email_change(user.id, NEW)
    elif purpose == "email-verification":
        assert await hosts[1].send_email_verification(user)
    else:
        await hosts[1].request_password_reset("raced")
    await hosts[1].mail.drain()
    (mailed,) = [m for m in outbox.sent if m.kind.replace("_", "-") == purpose]
    found = re.search(r"#token=(\S+)", mailed.text)
    assert found is not None
    token = found[1]
    time.advance(60)
    outcomes: list[str] = []

    async def use(i: int, host: S3AuthService) -> None:
        try:
            await _use(host, purpose, token, i)
            outcomes.append("used")
        except InvalidAccountTokenError:
            outcomes.append("refused")
        except EmailTakenError:  # a use at once claimed the new address first
            outcomes.append("taken")

    async with anyio.create_task_group() as tg:
        for i, host in enumerate(hosts):
            tg.start_soon(use, i, host)
    assert outcomes.count("used") == 1, outcomes
    assert set(outcomes) <= (
        {"used", "refused", "taken"} if purpose == "email-change" else {"used", "refused"}
    )
    after = await hosts[2].get_user_by_id(user.id)
    assert after is not None
    assert after.email_verified
    assert after.email == (NEW if purpose == "email-change" else "raced@example.com")
    for i, host in enumerate(hosts):  # spent, for every clock
        with pytest.raises(InvalidAccountTokenError):
            await _use(host, purpose, token, i)
