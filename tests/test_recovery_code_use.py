"""A recovery code given in place of the authenticator app's code, at a login's second step
or a re-authentication, is what a thief of the codes would do: its event says so (and how
many are left, never which one), and the account's address is told, in the background,
at no store request more than a code of the app costs."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import make_settings
from support import Clock
from test_app import PASSWORD, bearer, client_for, mounted, register
from test_app_totp import code_at, first_step, login_with, new_codes, second_step, turn_on
from test_change_notices import notices
from test_mail_after_answer import Recorder, yielding

from s3auth_asgi import S3AuthService
from s3auth_asgi.code_uses import recovery_codes_left
from s3auth_asgi.events import AuthEvent
from s3auth_asgi.mail import FileMailer

pytestmark = pytest.mark.anyio

ALICE = "alice@example.com"
KIND = "recovery_code_used_notice"


def mailed_service(tmp_path: Path, clock: Clock) -> S3AuthService:
    return S3AuthService(make_settings(), mailer=FileMailer(tmp_path / "outbox"), clock=clock)


def logged(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == name]


def factor_of(record: logging.LogRecord) -> tuple[Any, Any]:
    event: AuthEvent = record.auth_event  # type: ignore[attr-defined]
    flat = (record.second_factor, record.recovery_codes_left)  # type: ignore[attr-defined]
    assert (event.second_factor, event.recovery_codes_left) == flat
    return flat


def left_in(text: str) -> int:
    found = re.search(r"Recovery codes left: ([0-9]+)\.", text)
    assert found is not None, text
    return int(found[1])


async def recovery_notices(service: S3AuthService) -> list[str]:
    return [text for kind, text in await notices(service, ALICE) if kind == KIND]


async def test_a_login_with_a_recovery_code_says_so_and_tells_the_owner(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="s3auth_asgi.events")
    clock = Clock()
    service = mailed_service(tmp_path, clock)
    async with client_for(mounted(service)) as client:
        await register(client, "alice")
        seed = await turn_on(client, service, "alice")
        tokens = await login_with(client, service, await first_step(client, "alice"), seed, clock)
        codes = await new_codes(client, tokens)
        await service.blacklist.sync()
        # A code of the app: said so, no count, nothing mailed.
        token = await first_step(client, "alice")
        code = code_at(seed, clock)
        await service.blacklist.sync()  # fresh, as under steady traffic
        service.store.reset_counts()
        assert (await second_step(client, token, code)).status_code == 200
        by_app = dict(service.store.requests)
        token = await first_step(client, "alice")
        assert (await second_step(client, token, "000000")).status_code == 403
        # A recovery code: said so, with what is left; the owner is told, at no request more.
        token = await first_step(client, "alice")
        service.store.reset_counts()
        answer = await second_step(client, token, codes[3])
        assert answer.status_code == 200, answer.text
        assert dict(service.store.requests) == by_app == {"get": 2, "put": 3}
        # The tokens say `otp`, as for the app's code: RFC 8176 has no value of its own.
        claims = service.verify_access_token(answer.json()["access_token"])
        assert claims["amr"] == ["pwd", "otp"]
        steps = [factor_of(r) for r in logged(caplog, "login_totp")]
        assert steps == [("totp", None), ("totp", None), (None, None), ("recovery_code", 9)]
        (mailed,) = await recovery_notices(service)
        assert "Recovery codes left: 9" in mailed and codes[3] not in mailed
        assert "3-" not in mailed and "Only" not in mailed
        assert "password" in mailed and "new recovery codes" in mailed

        # The owner's trail keeps it too.
        page = await client.get("/auth/me/events", headers=bearer(tokens))
        kept = [
            (e["event"]["outcome"], e["event"]["second_factor"], e["event"]["recovery_codes_left"])
            for e in page.json()["events"]
            if e["event"]["name"] == "login_totp"
        ]  # those of one second are in no order of their own
        assert sorted(kept, key=str) == sorted(
            [
                ("success", "totp", None),
                ("success", "totp", None),
                ("failure", None, None),
                ("success", "recovery_code", 9),
            ],
            key=str,
        )

        # With few left, the notice says so.
        for used in codes[:3] + codes[4:]:
            token = await first_step(client, "alice")
            assert (await second_step(client, token, used)).status_code == 200
        # Sent in the background, so in no order of their own.
        texts = {left_in(text): text for text in await recovery_notices(service)}
        assert sorted(texts) == list(range(10))
        assert "Only" not in texts[3] and "None" not in texts[3]
        assert "Only 2 are left" in texts[2] and "Only 1 is left" in texts[1]
        assert "None is left" in texts[0] and "Only" not in texts[0]


async def test_a_reauthentication_with_a_recovery_code_says_so_and_tells_the_owner(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="s3auth_asgi.events")
    clock = Clock()
    service = mailed_service(tmp_path, clock)
    async with client_for(mounted(service)) as client:
        await register(client, "alice")
        seed = await turn_on(client, service, "alice")
        tokens = await login_with(client, service, await first_step(client, "alice"), seed, clock)
        codes = await new_codes(client, tokens)

        async def reauthenticate(code: str) -> httpx.Response:
            body = {"current_password": PASSWORD, "code": code}
            return await client.post("/auth/reauthenticate", json=body, headers=bearer(tokens))

        code = code_at(seed, clock)
        await service.blacklist.sync()  # fresh, as under steady traffic
        service.store.reset_counts()
        assert (await reauthenticate(code)).status_code == 200
        by_app = dict(service.store.requests)
        assert (await reauthenticate("000000")).status_code == 403
        service.store.reset_counts()
        answer = await reauthenticate(codes[0])
        assert answer.status_code == 200, answer.text
        assert dict(service.store.requests) == by_app
        claims = service.verify_access_token(answer.json()["access_token"])
        assert claims["amr"] == ["pwd", "otp"]
        steps = [factor_of(r) for r in logged(caplog, "reauthenticate")]
        assert steps == [("totp", None), (None, None), ("recovery_code", 9)]
        (mailed,) = await recovery_notices(service)
        assert "Recovery codes left: 9" in mailed and codes[0] not in mailed


async def test_without_a_mailer_the_event_still_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="s3auth_asgi.events")
    clock = Clock()
    service = S3AuthService(make_settings(), clock=clock)
    async with client_for(mounted(service)) as client:
        await register(client, "alice")
        seed = await turn_on(client, service, "alice")
        tokens = await login_with(client, service, await first_step(client, "alice"), seed, clock)
        codes = await new_codes(client, tokens)
        token = await first_step(client, "alice")
        assert (await second_step(client, token, codes[9])).status_code == 200
        assert service.mail.pending == 0 and not service.mail.failures
    assert factor_of(logged(caplog, "login_totp")[-1]) == ("recovery_code", 9)


async def test_a_host_that_accepts_a_recovery_code_itself_tells_the_owner(
    tmp_path: Path,
) -> None:
    """`accept_totp_code` called from a host's own login tells the owner as the auth app
    does; `recovery_codes_left` says what is left."""
    clock = Clock()
    service = mailed_service(tmp_path, clock)
    async with client_for(mounted(service)) as client:
        alice = await register(client, "alice")
        seed = await turn_on(client, service, "alice")
        tokens = await login_with(client, service, await first_step(client, "alice"), seed, clock)
        codes = await new_codes(client, tokens)
    found = await service.totp_login_record(alice["id"])
    assert found is not None
    user = await service.accept_totp_code(found, codes[5])
    assert recovery_codes_left(user) == 9
    (mailed,) = await recovery_notices(service)
    assert "Recovery codes left: 9" in mailed


async def test_the_notice_is_sent_once_the_answer_is() -> None:
    """And whatever the settings of the notices of logins say: it tells of a change, the
    codes spent, as the factor's other notices do."""
    log: list[str] = []
    clock = Clock()
    settings = make_settings(public_url="https://app.example.com", new_device_notices=False)
    service = S3AuthService(settings, mailer=Recorder(log), clock=clock)
    async with client_for(yielding(mounted(service), log)) as client:
        await register(client, "alice")
        seed = await turn_on(client, service, "alice")
        tokens = await login_with(client, service, await first_step(client, "alice"), seed, clock)
        codes = await new_codes(client, tokens)
        token = await first_step(client, "alice")
        await service.mail.drain()
        log.clear()
        assert (await second_step(client, token, codes[0])).status_code == 200
        await service.mail.drain()
    assert log == ["answer 200", "mail recovery_code_used_notice"]


async def test_a_reauthentication_of_a_session_ended_elsewhere_spends_no_code(
    tmp_path: Path,
) -> None:
    """The session is judged before the code is accepted: a session ended on another
    instance, whose revocation this one has not read yet (so the middleware lets its token
    through), is refused with its recovery code left unspent and nothing mailed."""
    clock = Clock()
    service = mailed_service(tmp_path, clock)
    other = S3AuthService(make_settings(), store=service.store, clock=clock)
    async with client_for(mounted(service)) as client:
        alice = await register(client, "alice")
        seed = await turn_on(client, service, "alice")
        tokens = await login_with(client, service, await first_step(client, "alice"), seed, clock)
        codes = await new_codes(client, tokens)
        await service.blacklist.sync()  # fresh: the next revocation is not read yet
        sid = service.verify_access_token(tokens["access_token"])["sid"]
        assert await other.revoke_session(alice["id"], sid)
        service.store.reset_counts()
        body = {"current_password": PASSWORD, "code": codes[0]}
        answer = await client.post("/auth/reauthenticate", json=body, headers=bearer(tokens))
        assert answer.status_code == 401 and answer.json()["code"] == "token_revoked"
        # The caller's record (the password), the session's GET, and the failure's event
        # in the account's trail: no record read again, no code written.
        assert dict(service.store.requests) == {"get": 2, "put": 1}
    found = await service.totp_login_record(alice["id"])
    assert found is not None and recovery_codes_left(found.value) == 10
    assert await recovery_notices(service) == []
