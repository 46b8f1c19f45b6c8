"""A new address is shown waiting exactly while its link works, when the host that mailed
the link reads another clock than the host that shows it: the link's check holds the
issuing host's time to the store's Last-Modified of the link, and so does whatever shows
the address, at no store request more."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from conftest import make_settings
from support import SharedTime, SkewedClock, StoreOnSharedTime
from test_app import PASSWORD, assert_problem, bearer, client_for, login, mounted
from test_app_lifecycle import mailed_token
from test_email_change import NEW, OLD

from s3auth_asgi import S3AuthService
from s3auth_asgi.mail import FileMailer
from s3auth_asgi.models import AccountToken
from s3auth_asgi.storage import ObjectStore

pytestmark = pytest.mark.anyio
SKEW = 10  # the default allowance


async def _shown(service: S3AuthService, client: httpx.AsyncClient, user_id: str) -> object:
    """The waiting address as the owner and an administrator see it; the owner's GET /me
    makes no request but the read of its record."""
    mine, root = await login(client, "alice"), await login(client, "root")
    await service.ensure_fresh()
    service.store.reset_counts()
    me = (await client.get("/auth/me", headers=bearer(mine))).json()
    assert dict(service.store.requests) == {"get": 1}
    theirs = (await client.get(f"/auth/admin/users/{user_id}", headers=bearer(root))).json()
    assert me["email"] == theirs["email"] == OLD
    assert me["pending_email"] == theirs["pending_email"]
    return me["pending_email"]


# How much longer than its lifetime its link works on a host whose clock is right: within
# the allowance, by the issue time written in it; beyond, by the store's time of it held
# to the allowance.
@pytest.mark.parametrize(
    ("offset", "longer"),
    [(600, SKEW), (-3600, -SKEW), (SKEW, SKEW), (-5, -5)],
    ids=["ahead", "behind", "ahead-within", "behind-within"],
)
@pytest.mark.parametrize("expired", [False, True], ids=["last-second", "expired"])
async def test_an_address_is_shown_waiting_while_its_link_works_whatever_the_issuers_clock(
    tmp_path: Path, offset: int, longer: int, expired: bool
) -> None:
    time = SharedTime()
    store = StoreOnSharedTime(ObjectStore.from_url("memory://"), lambda: time.now)
    settings = make_settings()
    out = FileMailer(tmp_path / "out")
    issuer = S3AuthService(settings, store=store, clock=SkewedClock(time, offset), mailer=out)
    judge = S3AuthService(settings, store=store, clock=SkewedClock(time, 0))
    await issuer.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    alice = await issuer.create_user("alice", OLD, PASSWORD, email_verified=True)
    await issuer.request_email_change(alice.id, NEW)
    link = await mailed_token(issuer, "email_change", NEW)
    lifetime = judge.account_tokens.lifetime("email-change")
    time.advance(lifetime + longer - 1 + int(expired))
    async with client_for(mounted(judge)) as client:
        shown = await _shown(judge, client, alice.id)
        answer = await client.post("/auth/email/verify", json={"token": link})
    if expired:
        assert shown is None
        assert_problem(answer, 400, "invalid_account_token")
    else:
        assert shown == NEW
        assert answer.status_code == 204, answer.text
        moved = await judge.get_user_by_id(alice.id)
        assert moved is not None
        assert moved.email == NEW


async def test_the_record_keeps_the_very_last_modified_the_links_check_reads(
    tmp_path: Path,
) -> None:
    # memory:// stamps Last-Modified to the microsecond, which the record must keep as is.
    service = S3AuthService(
        make_settings(), store=ObjectStore.from_url("memory://"), mailer=FileMailer(tmp_path)
    )
    alice = await service.create_user("alice", OLD, PASSWORD, email_verified=True)
    asked = (await service.request_email_change(alice.id, NEW)).user
    link = await mailed_token(service, "email_change", NEW)
    key, token = await service.account_tokens.redeem("email-change", link)
    found = await service.store.get(key, AccountToken)
    assert found is not None
    stored = await service.get_user_by_id(alice.id)
    assert stored is not None
    assert stored.pending_email_stored_at == found.last_modified.timestamp()
    assert (stored.pending_email_at, stored.pending_email_expires_at) == (
        token.created_at,
        token.expires_at,
    )
    assert asked.pending_email_stored_at == stored.pending_email_stored_at
