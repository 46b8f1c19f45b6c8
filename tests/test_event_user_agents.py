"""The User-Agent of an auth event (OWASP's "which user agent"): the auth app names the
client's, as its session records it, in the event, the log record's attributes and the
account's trail; an event without a request names none. A User-Agent is whatever a client
sends: control characters that forge or colour a log line, and as long as the server's
parser takes. Cleaned and cut as a session's, it keeps a trail's objects small."""

from __future__ import annotations

import logging

import msgspec
import pytest
from conftest import make_service
from support import Clock, make_clocked_service
from test_app import PASSWORD, client_for, mounted, register

from s3auth_asgi.events import AuthEvent, new_event
from s3auth_asgi.storage import keys

pytestmark = pytest.mark.anyio

HOSTILE = b"Mozilla/5.0\x1b[31m\x85auth event login success\x9b\x00\x7f\t" + b"x" * 20_000
"""ESC, NEL and CSI as Latin-1 reads them, NUL, DEL and a tab, and 20 KB."""
CLEANED = ("Mozilla/5.0[31mauth event login success" + "x" * 20_000)[:256]
EVENT_BYTES_MAX = 1024
"""Far more than an event with a cut User-Agent holds, far less than an uncut one would."""


def logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "s3auth_asgi.events"]


async def test_a_hostile_user_agent_is_cleaned_and_cut_in_the_event_log_and_trail(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="s3auth_asgi.events")
    service = make_service()
    headers = {"User-Agent": HOSTILE}
    async with client_for(mounted(service), headers=headers) as client:  # type: ignore[arg-type]
        alice = await register(client, "alice")
        wrong = await client.post("/auth/login", data={"username": "alice", "password": "Nope1!"})
        assert wrong.status_code == 401
        good = await client.post("/auth/login", data={"username": "alice", "password": PASSWORD})
        assert good.status_code == 200
    (session,) = await service.get_user_active_sessions(alice["id"])
    assert session.device_info == CLEANED
    records = logged(caplog)
    events: list[AuthEvent] = [r.auth_event for r in records]  # type: ignore[attr-defined]
    assert [e.name for e in events] == ["register", "login", "login"]
    assert [e.user_agent for e in events] == [CLEANED] * 3
    assert [r.user_agent for r in records] == [CLEANED] * 3  # type: ignore[attr-defined]
    trail, _ = await service.audit.page(alice["id"])
    assert [entry.event.user_agent for entry in trail] == [CLEANED] * 3
    stored = [info async for info in service.store.list(keys.user_audit(alice["id"]))]
    assert len(stored) == 3
    assert all(info.size <= EVENT_BYTES_MAX for info in stored)


async def test_a_failed_login_of_nobody_keeps_the_same_event_in_its_decoy_trail() -> None:
    """The decoy trail of a name that is nobody's gets the event an account's trail gets,
    User-Agent included: the same object, but for the user id, at the same cost."""
    service = make_clocked_service(clock=Clock())
    headers = {"User-Agent": HOSTILE}
    async with client_for(mounted(service), headers=headers) as client:  # type: ignore[arg-type]
        alice = await register(client, "alice")
        for name in ("alice", "nobody"):
            wrong = await client.post("/auth/login", data={"username": name, "password": "x"})
            assert wrong.status_code == 401
    stored = {
        info.key: await service.store.get(info.key, AuthEvent)
        async for info in service.store.list(keys.AUDIT)
    }
    failed = [e.value for e in stored.values() if e is not None and e.value.outcome == "failure"]
    assert len(stored) == 3 and len(failed) == 2
    owners = {e.user_id for e in failed}
    assert alice["id"] in owners and len(owners) == 2
    assert {msgspec.structs.replace(e, user_id=None) for e in failed} == {
        msgspec.structs.replace(failed[0], user_id=None)
    }
    assert failed[0].user_agent == CLEANED


def test_an_event_without_a_request_names_no_user_agent() -> None:
    event = new_event("admin_user_delete", "success", user_id="u" * 32, clock=Clock())
    assert event.user_agent is None
