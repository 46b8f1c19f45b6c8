"""One auth event is small whoever makes it. The auth app cuts what a client sends (its
address, its User-Agent) before an event holds it; a host's code makes events of its own
(`new_event`, then `emit` and `audit.record`, as the hooks section of the docs shows) with
any text it has, and an event is cut the same way wherever it is made: its text fields
cleaned of control characters and cut, so that no trail object or log record grows with
them."""

from __future__ import annotations

import logging

import msgspec
import pytest
from conftest import make_service

from s3auth_asgi.events import AuthEvent, emit, new_event
from s3auth_asgi.recovery_codes import CODE_COUNT
from s3auth_asgi.storage import keys

pytestmark = pytest.mark.anyio

HUGE = "\x1b[31m\r\n" + "\U0001f600" * 250_000
"""A terminal escape and a line break, then a megabyte of four-byte characters."""
CUT = {
    "reason": 64,
    "user_id": 64,
    "actor_id": 64,
    "session_id": 64,
    "client": 64,
    "user_agent": 256,
    "previous_email": 254,
}
STORED_BYTES = 3_259
"""A trail object with every text field at its limit in four-byte characters (its user id
is one, 32 characters, or the trail does not keep it), stamped with a time of this
century to the microsecond, of a recovery code's use with every code left."""


def cut(length: int) -> str:
    return ("[31m" + "\U0001f600" * length)[:length]


def huge_event(user_id: str) -> AuthEvent:
    texts = {name: HUGE for name in CUT if name != "user_id"}
    return new_event(
        "email_change_request",
        "refused",
        user_id=user_id,
        clock=lambda: 1796454590.1928413,
        second_factor="recovery_code",
        recovery_codes_left=CODE_COUNT,
        **texts,
    )


async def test_a_host_made_event_is_cut_before_the_trail_keeps_it() -> None:
    service = make_service()
    user = await service.create_user("alice", "alice@example.com", "Secure-pass-123!")
    event = huge_event(user.id)
    assert {name: len(getattr(event, name)) for name in CUT} == CUT | {"user_id": 32}
    assert event.reason == cut(64) and event.user_agent == cut(256)
    assert await service.audit.record(event)
    (stored,) = [info async for info in service.store.list(keys.user_audit(user.id))]
    assert stored.size == STORED_BYTES
    (entry,), _ = await service.audit.page(user.id)
    assert entry.event == event


def test_a_host_made_event_is_cut_before_it_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="s3auth_asgi.events")
    emit(huge_event("u" * 1_000_000))
    (record,) = [r for r in caplog.records if r.name == "s3auth_asgi.events"]
    assert {name: len(getattr(record, name)) for name in CUT} == CUT
    assert record.user_id == "u" * 64  # type: ignore[attr-defined]
    assert record.getMessage() == f"auth event email_change_request refused {cut(64)}"


def test_an_event_is_cut_however_it_is_made() -> None:
    """Built directly, copied with a change, or read back: the same bound."""
    made = AuthEvent(name="login", outcome="failure", at=0.0, reason=HUGE)
    assert made.reason == cut(64)
    changed = msgspec.structs.replace(made, client=HUGE)
    assert changed.client == cut(64)
    raw = msgspec.json.encode({"name": "login", "outcome": "failure", "at": 0, "client": HUGE})
    assert msgspec.json.decode(raw, type=AuthEvent).client == cut(64)
    assert AuthEvent(name="login", outcome="success", at=0.0, client="  ").client is None
