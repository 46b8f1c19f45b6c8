"""A handler of the event loggers that raises (a log shipper whose server is down) costs
its record, never the operation that made it: the request is answered as it would be, the
audit trail and the hooks still get the event, and a key change that landed is not
reported as failed."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from conftest import make_service
from test_app import PASSWORD, client_for, mounted
from test_cli_keys import PUBLISH, T0

from s3auth_asgi.events import AuthEvent
from s3auth_asgi.keys.stored import KeyStore
from s3auth_asgi.storage import ObjectStore


class SinkDown(logging.Handler):
    """A handler that does not catch what fails in it, as `logging.Handler` asks."""

    def __init__(self) -> None:
        super().__init__()
        self.tried: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.tried.append(record.getMessage())
        raise ConnectionError("the log server is down")


@pytest.fixture
def sink(caplog: pytest.LogCaptureFixture) -> Iterator[SinkDown]:
    caplog.set_level(logging.INFO, logger="s3auth_asgi")
    handler = SinkDown()
    events = logging.getLogger("s3auth_asgi.events")
    events.addHandler(handler)
    try:
        yield handler
    finally:
        events.removeHandler(handler)


def reported(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "s3auth_asgi" and r.levelno == logging.ERROR and r.exc_info
    ]


@pytest.mark.anyio
async def test_a_failing_event_sink_fails_no_request(
    sink: SinkDown, caplog: pytest.LogCaptureFixture
) -> None:
    service = make_service()
    told: list[AuthEvent] = []
    service.hooks.on("after_register")(told.append)
    service.hooks.on("login_failed")(told.append)
    async with client_for(mounted(service)) as client:
        registered = await client.post(
            "/auth/register",
            json={"username": "alice", "email": "alice@example.com", "password": PASSWORD},
        )
        assert registered.status_code == 201, registered.text
        wrong = await client.post("/auth/login", data={"username": "alice", "password": "No1!"})
        assert wrong.status_code == 401, wrong.text
    user_id = registered.json()["id"]
    assert [(e.name, e.outcome, e.user_id) for e in told] == [
        ("register", "success", user_id),
        ("login", "failure", user_id),
    ]
    trail, _ = await service.audit.page(user_id)
    assert [(e.event.name, e.event.outcome) for e in trail] == [
        ("login", "failure"),
        ("register", "success"),
    ]
    assert sink.tried == [
        "auth event register success",
        "auth event login failure invalid_credentials",
    ]
    assert reported(caplog) == [
        "auth event register success not logged: a handler of s3auth_asgi.events failed",
        "auth event login failure invalid_credentials not logged: a handler of "
        "s3auth_asgi.events failed",
    ]


@pytest.mark.anyio
async def test_a_key_change_that_landed_is_not_failed_by_its_sink(
    sink: SinkDown, caplog: pytest.LogCaptureFixture
) -> None:
    store = ObjectStore.from_url("memory://")
    keys = KeyStore(store)
    (first,) = (await keys.read_or_create("ES256", T0)).keys
    added = await keys.rotate("ES256", T0, PUBLISH)
    found = await keys.read()
    assert found is not None
    assert [k.kid for k in found[0].keys] == [first.kid, added.kid]
    assert [m.split(" kid=")[0] for m in sink.tried] == [
        "key event key_create success",
        "key event key_rotate success",
    ]
    assert len(reported(caplog)) == 2
