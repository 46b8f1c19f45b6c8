"""The operations of the fault sweep (`test_fault_sweep`), each sent through the auth app
of a `World`, and what holds once each is answered (no tests here: the name keeps pytest
from collecting it).

A claim that never finished holds its name for a reservation's time: the checks that free
a name or claim one again do it on `World.later`, a host that far ahead.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import make_settings
from test_app import PASSWORD, bearer
from test_app_lifecycle import NEW_PASSWORD
from test_faults import FaultyStore

from s3auth_asgi import S3AuthService, TokenRevokedError, User
from s3auth_asgi.mail import FileMailer
from s3auth_asgi.storage import ObjectStore, keys

LATER = make_settings().name_reservation_seconds + 1
"""Seconds ahead at which every reservation counts as abandoned (and no link expired)."""
PAST_REVOCATIONS = (
    make_settings().access_token_accepted_seconds + 2 * make_settings().revocation_skew_seconds + 1
)
"""Seconds ahead at which no host holds a revocation written now."""


@dataclass
class World:
    """alice (with two sessions and links mailed to her) and root, an administrator, on
    one memory:// store; `client` speaks to an app whose store fails as told."""

    inner: ObjectStore
    faulty: FaultyStore
    service: S3AuthService
    client: httpx.AsyncClient
    alice: str = ""
    sessions: list[dict[str, Any]] = field(default_factory=list)
    root: dict[str, Any] = field(default_factory=dict)
    spent: str = ""
    """A refresh token of a third session of alice's, two rotations old: a reuse."""
    thief: dict[str, Any] = field(default_factory=dict)
    """That session's current pair, in a thief's hands."""
    links: dict[str, str] = field(default_factory=dict)

    def other(self, **options: Any) -> S3AuthService:
        """Another instance on the store, its own snapshot and clock."""
        return S3AuthService(make_settings(), store=self.inner, **options)

    def later(self) -> S3AuthService:
        """Another instance, a reservation's time later and more: a claim that never
        finished counts as abandoned."""
        return self.other(clock=lambda: time.time() + LATER)


async def _tokens(client: httpx.AsyncClient, name: str, password: str = PASSWORD) -> Any:
    answer = await client.post("/auth/login", data={"username": name, "password": password})
    assert answer.status_code == 200, answer.text
    return answer.json()


async def build_world(tmp_path: Path, client: httpx.AsyncClient, world: World) -> None:
    service = world.service
    alice = await service.create_user("alice", "alice@example.com", PASSWORD)
    world.alice = alice.id
    await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    world.sessions = [await _tokens(client, "alice") for _ in range(2)]
    world.root = await _tokens(client, "root")
    stolen = await _tokens(client, "alice")
    world.spent = stolen["refresh_token"]
    for _ in range(2):
        rotated = await client.post(
            "/auth/refresh", json={"refresh_token": stolen["refresh_token"]}
        )
        assert rotated.status_code == 200, rotated.text
        stolen = rotated.json()
    world.thief = stolen
    tokens = service.account_tokens
    world.links["reset"] = await tokens.issue("password-reset", alice)
    world.links["verify"] = await tokens.issue("email-verification", alice)
    await service.request_email_change(alice.id, "alice@new.example")
    await service.mail.drain()
    assert isinstance(service.mail.mailer, FileMailer)
    (change,) = [m for m in service.mail.mailer.messages(100) if m.kind == "email_change"]
    world.links["change"] = change.text.split("#token=")[1].split()[0]


# The operations ----------------------------------------------------------------------

Send = Callable[[World], Awaitable[httpx.Response]]
Check = Callable[[World], Awaitable[None]]


async def register(w: World) -> httpx.Response:
    body = {"username": "newbie", "email": "newbie@example.com", "password": PASSWORD}
    return await w.client.post("/auth/register", json=body)


async def registered(w: World) -> None:
    found = await w.other().authenticate_user("newbie@example.com", PASSWORD)
    if found is None:  # its names were held by the claim that failed, for a while
        found = await w.later().create_user("newbie", "newbie@example.com", PASSWORD)
    assert found.username == "newbie"


async def log_in(w: World) -> httpx.Response:
    return await w.client.post("/auth/login", data={"username": "alice", "password": PASSWORD})


async def refresh(w: World) -> httpx.Response:
    return await w.client.post(
        "/auth/refresh", json={"refresh_token": w.sessions[0]["refresh_token"]}
    )


async def reuse(w: World) -> httpx.Response:
    answer = await w.client.post("/auth/refresh", json={"refresh_token": w.spent})
    if answer.status_code == 401:  # the same refusal, however the ending was interrupted
        assert answer.json()["code"] == "refresh_token_reused", answer.text
    return answer


async def logout(w: World) -> httpx.Response:
    return await w.client.post(
        "/auth/logout", json={"refresh_token": w.sessions[0]["refresh_token"]}
    )


async def logout_by_access_token(w: World) -> httpx.Response:
    return await w.client.post("/auth/logout", headers=bearer(w.sessions[0]))


async def end_own_session(w: World) -> httpx.Response:
    sid = w.other().decode_token(w.sessions[0]["access_token"])["sid"]
    return await w.client.delete(f"/auth/sessions/{sid}", headers=bearer(w.sessions[0]))


async def logout_all(w: World) -> httpx.Response:
    return await w.client.post("/auth/logout-all", headers=bearer(w.sessions[0]))


async def end_session(w: World) -> httpx.Response:
    other = w.other()
    sid = other.decode_token(w.sessions[1]["access_token"])["sid"]
    return await w.client.delete(f"/auth/sessions/{sid}", headers=bearer(w.sessions[0]))


async def change_password(w: World) -> httpx.Response:
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    return await w.client.post("/auth/password", json=body, headers=bearer(w.sessions[0]))


async def ask_new_address(w: World) -> httpx.Response:
    body = {"email": "alice@other.example", "current_password": PASSWORD}
    return await w.client.patch("/auth/me", json=body, headers=bearer(w.sessions[0]))


async def forgot(w: World) -> httpx.Response:
    return await w.client.post("/auth/password/forgot", json={"username": "alice"})


async def reset(w: World) -> httpx.Response:
    body = {"token": w.links["reset"], "new_password": NEW_PASSWORD}
    return await w.client.post("/auth/password/reset", json=body)


async def verify(w: World) -> httpx.Response:
    return await w.client.post("/auth/email/verify", json={"token": w.links["verify"]})


async def confirm_address(w: World) -> httpx.Response:
    return await w.client.post("/auth/email/verify", json={"token": w.links["change"]})


async def resend(w: World) -> httpx.Response:
    return await w.client.post("/auth/email/verify/resend", json={"username": "alice"})


async def admin_create(w: World) -> httpx.Response:
    body = {"username": "newbie", "email": "newbie@example.com", "password": PASSWORD}
    return await w.client.post("/auth/admin/users", json=body, headers=bearer(w.root))


def admin_update(**changes: Any) -> Send:
    async def send(w: World) -> httpx.Response:
        return await w.client.patch(
            f"/auth/admin/users/{w.alice}", json=changes, headers=bearer(w.root)
        )

    return send


async def admin_delete(w: World) -> httpx.Response:
    return await w.client.delete(f"/auth/admin/users/{w.alice}", headers=bearer(w.root))


async def admin_revoke(w: World) -> httpx.Response:
    return await w.client.post(f"/auth/admin/users/{w.alice}/revoke", headers=bearer(w.root))


async def admin_set_password(w: World) -> httpx.Response:
    return await w.client.post(
        f"/auth/admin/users/{w.alice}/password",
        json={"new_password": NEW_PASSWORD},
        headers=bearer(w.root),
    )


async def admin_end_session(w: World) -> httpx.Response:
    sid = w.other().decode_token(w.sessions[1]["access_token"])["sid"]
    return await w.client.delete(
        f"/auth/admin/users/{w.alice}/sessions/{sid}", headers=bearer(w.root)
    )


# What holds once the retry is answered -------------------------------------------------


async def _refused(w: World, *which: int, for_good: bool = True) -> None:
    """The sessions `which` are refused (`_pairs_refused`)."""
    await _pairs_refused(w, [w.sessions[index] for index in which], for_good=for_good)


async def _pairs_refused(w: World, pairs: list[dict[str, Any]], *, for_good: bool) -> None:
    """The sessions of `pairs` are refused: their access tokens at once, and their refresh
    `for_good`, on a host that holds none of the revocations written now (it is then what
    the ending wrote besides them that refuses it); else on one that holds them."""
    other = w.other()
    await other.ensure_fresh()
    for pair in pairs:
        with pytest.raises(TokenRevokedError):
            other.decode_token(pair["access_token"])
    if for_good:
        other = w.other(clock=lambda: time.time() + PAST_REVOCATIONS)
        await other.ensure_fresh()
    for pair in pairs:
        with pytest.raises(TokenRevokedError):
            await other.refresh_access_token(pair["refresh_token"])


async def family_ended(w: World) -> None:
    """A reuse ended the thief's session, its access token at once and its refresh for
    good; alice's other sessions go on."""
    await _pairs_refused(w, [w.thief], for_good=True)
    assert await w.other().refresh_access_token(w.sessions[1]["refresh_token"])


async def first_ended(w: World) -> None:
    await _refused(w, 0)


async def _logged_out(w: World, index: int) -> None:
    """The session `index`, which a logout by refresh token or an ending by id named, has
    ended: its refresh is refused for good. Its access token is refused at once, but where
    the ending was cut short after its DELETE landed and before its revocation did (its
    retry finds no session, and writes nothing): then the session is gone and no
    revocation names it, and the token lives out its lifetime."""
    pair = w.sessions[index]
    other = w.other()
    await other.ensure_fresh()
    try:
        claims = other.decode_token(pair["access_token"])
    except TokenRevokedError:
        pass
    else:
        session_key = keys.session(str(claims["sub"]), str(claims["sid"]))
        assert session_key not in [i.key async for i in w.inner.list(keys.SESSIONS)]
        subject = keys.revocation_subject(str(claims["sid"]))
        assert not [i async for i in w.inner.list(keys.REVOCATIONS) if subject in i.key]
    later = w.other(clock=lambda: time.time() + PAST_REVOCATIONS)
    await later.ensure_fresh()
    with pytest.raises(TokenRevokedError):
        await later.refresh_access_token(pair["refresh_token"])


async def first_logged_out(w: World) -> None:
    await _logged_out(w, 0)


async def second_logged_out(w: World) -> None:
    await _logged_out(w, 1)


async def both_ended(w: World) -> None:
    await _refused(w, 0, 1)


async def second_ended(w: World) -> None:
    await _refused(w, 1)


async def new_password(w: World) -> None:
    other = w.other()
    assert await other.authenticate_user("alice", PASSWORD) is None
    assert await other.authenticate_user("alice", NEW_PASSWORD) is not None
    await _refused(w, 1)


async def alice_logs_in(w: World) -> None:
    assert await w.other().authenticate_user("alice", PASSWORD) is not None


async def readdressed(w: World) -> None:
    other = w.other()
    if await other.get_user_by_email("alice@admin.example") is None:
        await w.later().update_user(w.alice, email="alice@admin.example")
    found = await other.authenticate_user("alice@admin.example", PASSWORD)
    assert found is not None and found.id == w.alice
    # The old address is free once the change that let it go is surely over.
    assert await w.later().create_user("heir", "alice@example.com", PASSWORD)


async def password_changed_or_sessions_ended(w: World) -> None:
    """A change refused on retry (its caller's session ended by the first try) left the
    old password or the new one, and no session either way, for good."""
    other = w.other()
    if await other.authenticate_user("alice", NEW_PASSWORD) is None:
        assert await other.authenticate_user("alice", PASSWORD) is not None
    await _refused(w, 1)


async def disabled(w: World) -> None:
    assert await w.other().authenticate_user("alice", PASSWORD) is None
    await both_ended(w)


async def deleted(w: World) -> None:
    assert await w.other().get_user_by_id(w.alice) is None
    await both_ended(w)
    assert await w.later().create_user("alice", "alice@example.com", PASSWORD)


async def deletion_cut_short(w: World) -> None:
    """Before a deletion that failed is tried again: while alice's record is open, her
    sessions refresh; once it is closed or gone, none does on an instance that holds no
    revocation (the deletion's closing marker has it read the record), and their access
    tokens are refused wherever the revocations are synced."""
    found = await w.inner.get(keys.user(w.alice), User)
    unsynced = w.other()
    if found is not None and not found.value.deleting:
        for index, pair in enumerate(w.sessions):
            renewed = await unsynced.refresh_access_token(pair["refresh_token"])
            w.sessions[index] = renewed.to_dict()
        return
    for pair in w.sessions:
        with pytest.raises(TokenRevokedError):
            await unsynced.refresh_access_token(pair["refresh_token"])
    synced = w.other()
    await synced.ensure_fresh()
    for pair in w.sessions:
        with pytest.raises(TokenRevokedError):
            synced.decode_token(pair["access_token"])


async def moved(w: World) -> None:
    other = w.other()
    if await other.get_user_by_email("alice@new.example") is None:
        await w.later().confirm_email_change(w.links["change"])
    found = await other.authenticate_user("alice@new.example", PASSWORD)
    assert found is not None and found.id == w.alice
    # The old address is free once the change that let it go is surely over.
    assert await w.later().create_user("heir", "alice@example.com", PASSWORD)


async def verified(w: World) -> None:
    found = await w.other().get_user_by_id(w.alice)
    assert found is not None and found.email_verified


async def rescoped(w: World) -> None:
    found = await w.other().get_user_by_id(w.alice)
    assert found is not None and found.scopes == ["reports"]
    await both_ended(w)


async def nothing(w: World) -> None:
    return None


@dataclass(frozen=True)
class Op:
    send: Send
    check: Check
    ok: int
    """The status of a success."""
    again: tuple[int, ...] = ()
    """The 4xx a retry may answer once the first try landed (the change is made)."""
    cut_short: Check | None = None
    """What holds between a first try that failed and its retry."""


OPS: dict[str, Op] = {
    "register": Op(register, registered, 201, (409,)),
    "login": Op(log_in, alice_logs_in, 200),
    "refresh": Op(refresh, nothing, 200),
    "reuse": Op(reuse, family_ended, 401, (401,)),
    "logout": Op(logout, first_logged_out, 204, (401,)),
    "logout-bearer": Op(logout_by_access_token, first_ended, 204, (401,)),
    "logout-all": Op(logout_all, both_ended, 200, (401,)),
    "end-session": Op(end_session, second_logged_out, 204, (404,)),
    "end-own-session": Op(end_own_session, first_ended, 204, (401,)),
    "ask-new-address": Op(ask_new_address, alice_logs_in, 200),
    "change-password": Op(change_password, password_changed_or_sessions_ended, 200, (401,)),
    "forgot": Op(forgot, nothing, 202),
    "reset": Op(reset, password_changed_or_sessions_ended, 204, (400,)),
    "verify": Op(verify, verified, 204, (400,)),
    "confirm-address": Op(confirm_address, moved, 204, (400, 409)),
    "resend": Op(resend, nothing, 202),
    "admin-create": Op(admin_create, registered, 201, (409,)),
    "admin-disable": Op(admin_update(is_active=False), disabled, 200),
    "admin-scopes": Op(admin_update(scopes=["reports"]), rescoped, 200),
    "admin-email": Op(admin_update(email="alice@admin.example"), readdressed, 200, (409,)),
    "admin-delete": Op(admin_delete, deleted, 204, (404,), deletion_cut_short),
    "admin-revoke": Op(admin_revoke, both_ended, 200),
    "admin-set-password": Op(admin_set_password, new_password, 204),
    "admin-end-session": Op(admin_end_session, second_logged_out, 204, (404,)),
}
