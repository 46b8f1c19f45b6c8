"""A notice of a change goes once the change is written, whatever fails after: the store
failing at any request of a new password (by a reset link, by its owner, by an
administrator), of an administrator's new address or of the link that confirms a user's
own, before it is sent or after it landed
(its answer lost), then the same request tried again. Once the change is in effect its
notice has gone, once per write that made it: a retry that finds the change made (a spent
link, a current password that is the new one, an address the account has already) makes no
change, so it is the failed request's to tell."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest
from conftest import make_settings
from test_faults import FaultyStore

from s3auth_asgi import S3AuthError, S3AuthService, StoreUnavailableError, User
from s3auth_asgi.mail import Message
from s3auth_asgi.storage import ObjectStore

pytestmark = pytest.mark.anyio
PASSWORD = "SecurePass123!"
NEW_PASSWORD = "Brand-new-pass-7"
ADDRESS = "victim@example.com"
MOVED = "moved@new.example"
SETTINGS = make_settings(public_url="https://app.example.com")


class Outbox:
    def __init__(self) -> None:
        self.sent: list[Message] = []

    async def send(self, message: Message) -> None:
        self.sent.append(message)


Change = Callable[[S3AuthService, User, str], Awaitable[object]]


@dataclass(frozen=True)
class Case:
    change: Change
    notice: str
    requests: int
    """How many store requests it makes (the owner's change: its new pair's two too)."""
    write: int
    """Which of them writes the change to the record."""
    at_best: tuple[int, ...] = ()
    """Those whose failure fails nothing: the release of the old address (its retirement
    and its DELETE), a clean-up."""
    told: str = ""
    """The kind of its notice, when not `{notice}_changed_notice`."""


CASES = {
    "reset": Case(lambda s, u, link: s.reset_password(link, NEW_PASSWORD), "password", 9, 6),
    "change": Case(
        lambda s, u, link: s.change_password(u.id, PASSWORD, NEW_PASSWORD), "password", 12, 7
    ),
    "set": Case(lambda s, u, link: s.set_password(u.id, NEW_PASSWORD), "password", 7, 5),
    "email": Case(lambda s, u, link: s.update_user(u.id, email=MOVED), "email", 6, 4, (5, 6)),
    # Disabled too: the sessions are ended first and listed again after the write.
    "email-disable": Case(
        lambda s, u, link: s.update_user(u.id, email=MOVED, is_active=False),
        "email",
        11,
        7,
        (8, 9),
    ),
    # The link mailed to a user's own new address (`link` is that one here).
    "confirm": Case(
        lambda s, u, link: s.confirm_email_change(link),
        "email",
        8,
        5,
        (6, 7, 8),  # the old address's release, the token's DELETE
        "email_change_confirmed_notice",
    ),
}


async def _in_effect(store: ObjectStore, user: User, notice: str) -> bool:
    service = S3AuthService(SETTINGS, store=store)
    if notice == "password":
        return await service.authenticate_user(user.username, NEW_PASSWORD) is not None
    found = await service.get_user_by_id(user.id)
    return found is not None and found.email == MOVED


@pytest.mark.parametrize("name", CASES)
async def test_a_change_that_landed_is_told_whatever_fails_after(name: str) -> None:
    case = CASES[name]
    for step in range(1, case.requests + 1):
        for after in (False, True):
            inner = ObjectStore.from_url("memory://")
            asked = Outbox()
            setup = S3AuthService(SETTINGS, store=inner, mailer=asked)
            user = await setup.create_user("victim", ADDRESS, PASSWORD)
            await setup.create_token_pair(user)
            link = await setup.account_tokens.issue("password-reset", user)
            if name == "confirm":
                await setup.request_email_change(user.id, MOVED)
                await setup.mail.drain()
                mailed = next(m for m in asked.sent if m.kind == "email_change")
                link = mailed.text.split("#token=")[1].split()[0]
            faulty, outbox = FaultyStore(inner), Outbox()
            service = S3AuthService(SETTINGS, store=faulty, mailer=outbox)
            faulty.fail_at, faulty.after = step, after
            if step in case.at_best:
                await case.change(service, user, link)
            else:
                with pytest.raises(StoreUnavailableError):
                    await case.change(service, user, link)
            landed = await _in_effect(inner, user, case.notice)
            faulty.fail_at = None
            try:
                await case.change(service, user, link)
                retried = True
            except S3AuthError:  # the link spent, the password or the address changed
                retried = False
            await service.mail.drain()
            told = [m for m in outbox.sent if m.kind.endswith("_notice")]
            assert {m.to for m in told} <= {ADDRESS}, (step, after)
            kind = case.told or f"{case.notice}_changed_notice"
            assert {m.kind for m in told} <= {kind}, (step, after)
            # An administrator's new password tried again is written again, and told again.
            writes = int(landed) + int(retried and (name == "set" or not landed))
            assert await _in_effect(inner, user, case.notice) == (writes > 0), (step, after)
            # The one write the service cannot tell from a failure: the record's own, whose
            # answer the store lost (obstore resends it first, and takes its own bytes
            # found there for success: `storage.resends`).
            unknown = int(landed and (step, after) == (case.write, True))
            assert len(told) == writes - unknown, (step, after, landed, retried)
