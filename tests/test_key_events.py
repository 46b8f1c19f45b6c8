"""Key events: each change of the stored signing keys is one record of the event log, by the
process that made it (`cli` or `service`), whoever else tried at once; a read or a token
that changes nothing costs no request more and logs nothing. Against memory:// and file://
stores, two service instances on one store, and `s3auth keys` through its main()."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import anyio
import pytest
import test_cli_keys
from support import Clock, StoreWrapper, make_clocked_service, stored_user
from test_cli_keys import PUBLISH, T0, Keys

from s3auth_asgi import S3AuthService
from s3auth_asgi.events import log_fields, new_event
from s3auth_asgi.keys.events import KEY_EVENT_NAMES, KeyEvent
from s3auth_asgi.keys.stored import KeyStore
from s3auth_asgi.storage import ObjectStore

clock = test_cli_keys.clock  # the fixtures, under their names
stored_keys = test_cli_keys.stored_keys

LOGGER = "s3auth_asgi.events.keys"
FLAT = ("outcome", "reason", "kid", "by")
AUTH_EVENT_ONLY = tuple(
    set(log_fields(new_event("login", "success", clock=lambda: 0.0)))
    - {"auth_event", "event", "outcome", "reason"}
)
"""Every flat field of an auth event's record that a key event has not."""


def key_events(caplog: pytest.LogCaptureFixture) -> list[tuple[int, KeyEvent]]:
    """Each key event logged, with its level; the flat fields agree with the Struct, and the
    fields of an auth event's record are there (None) for formatters that name them."""
    found = []
    for record in caplog.records:
        if record.name != LOGGER:
            continue
        event: KeyEvent = record.auth_event  # type: ignore[attr-defined]
        assert isinstance(event, KeyEvent) and event.name in KEY_EVENT_NAMES
        assert record.event == event.name  # type: ignore[attr-defined]
        for field in FLAT:
            assert getattr(record, field) == getattr(event, field)
        assert record.removed == list(event.removed)  # type: ignore[attr-defined]
        assert record.added == [k.kid for k in event.added]  # type: ignore[attr-defined]
        assert record.retiring == [k.kid for k in event.retiring]  # type: ignore[attr-defined]
        assert record.replaced == list(event.replaced)  # type: ignore[attr-defined]
        for field in AUTH_EVENT_ONLY:
            assert getattr(record, field) is None
        assert record.getMessage().startswith(f"key event {event.name} {event.outcome}")
        found.append((record.levelno, event))
    return found


class BothReadFirst(StoreWrapper):
    """Holds each read of the key set until two have been made: two processes judge the
    same version, so only one write of theirs can land and the other tries again."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.reads = 0
        self.both = anyio.Event()

    async def call(self, name: str, run: Any) -> Any:
        answer = await run()
        if name == "get" and self.reads < 2:
            self.reads += 1
            if self.reads == 2:
                self.both.set()
            await self.both.wait()
        return answer


def instance(store: Any, clock: Clock) -> S3AuthService:
    return make_clocked_service(
        clock=clock, store=store, algorithm="ES256", key_publish_seconds=500, key_sync_seconds=60
    )


@pytest.mark.anyio
async def test_two_instances_starting_at_once_log_the_first_key_set_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="s3auth_asgi")
    time = Clock()
    inner = ObjectStore.from_url("memory://")
    store = BothReadFirst(inner)
    first, second = instance(store, time), instance(store, time)
    async with anyio.create_task_group() as group:
        for service in (first, second):
            group.start_soon(service.tokens.ring.sync)  # type: ignore[union-attr]
    # Both timed their clocks against the store's (a probe each) and tried to create it;
    # one landed.
    assert inner.requests["put"] == 4
    found = await KeyStore(inner).read()
    assert found is not None
    (key,) = found[0].keys
    events = key_events(caplog)
    assert [(level, e.name, e.outcome, e.by, e.kid) for level, e in events] == [
        (logging.INFO, "key_create", "success", "service", key.kid)
    ]
    assert events[0][1].activates_at == key.activates_at
    # Later reads that find the set as it was: one GET each, no event.
    caplog.clear()
    time.advance(60)
    inner.reset_counts()
    for service in (first, second):
        await service.tokens.ring.sync()  # type: ignore[union-attr]
    assert dict(inner.requests) == {"get": 2}
    token = (await first.create_token_pair(await stored_user(first, "alice"))).access_token
    inner.reset_counts()
    assert second.verify_access_token(token)
    assert sum(inner.requests.values()) == 0
    assert key_events(caplog) == []


@pytest.mark.anyio
async def test_rotations_that_collide_are_one_event_each_not_one_per_attempt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    time = Clock()
    inner = ObjectStore.from_url("memory://")
    await KeyStore(inner).read_or_create("ES256", time())
    caplog.set_level(logging.INFO, logger="s3auth_asgi")
    caplog.clear()  # the key_create, seen where an earlier test left the level at INFO
    store = BothReadFirst(inner)
    inner.reset_counts()
    added = []

    async def rotate() -> None:
        added.append(await KeyStore(store).rotate("ES256", time(), PUBLISH))

    async with anyio.create_task_group() as group:
        for _ in range(2):
            group.start_soon(rotate)
    assert inner.requests["put"] == 3  # one write lost, and was made again
    events = key_events(caplog)
    assert sorted((e.name, e.outcome, e.by, e.kid) for _, e in events) == sorted(
        ("key_rotate", "success", "service", key.kid) for key in added
    )
    assert {level for level, _ in events} == {logging.INFO}
    assert {e.activates_at for _, e in events} == {time() + PUBLISH}


def test_the_commands_changes_are_events_of_the_cli(
    stored_keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="s3auth_asgi")
    stored_keys.codec()  # a service's first start: the first key
    (first,) = stored_keys.stored()
    caplog.clear()
    assert stored_keys.run("keys", "list").code == 0
    assert key_events(caplog) == []

    assert stored_keys.run("keys", "rotate").code == 0
    pending = stored_keys.stored()[-1]
    rotated = key_events(caplog)
    assert [(lv, e.name, e.outcome, e.by, e.kid, e.activates_at, e.immediately, e.removed)
            for lv, e in rotated] == [
        (logging.INFO, "key_rotate", "success", "cli", pending.kid, T0 + PUBLISH, False, ())
    ]  # fmt: skip

    # A leak: a rotation at once withdraws the pending key, and warns.
    caplog.clear()
    assert stored_keys.run("keys", "rotate", "--now").code == 0
    leak = stored_keys.stored()[-1]
    ((level, event),) = key_events(caplog)
    assert (level, event.name, event.kid, event.immediately, event.removed) == (
        logging.WARNING, "key_rotate", leak.kid, True, (pending.kid,)
    )  # fmt: skip

    # Refused: the key that signs. One failure, naming the stored key.
    caplog.clear()
    assert stored_keys.run("keys", "retire", leak.kid).code != 0
    ((level, event),) = key_events(caplog)
    assert (level, event.name, event.outcome, event.reason, event.kid, event.by) == (
        logging.WARNING, "key_retire", "failure", "refused", leak.kid, "cli"
    )  # fmt: skip
    caplog.clear()
    assert stored_keys.run("keys", "retire", "no-such-kid").code != 0
    ((level, event),) = key_events(caplog)
    assert (event.outcome, event.kid) == ("failure", None)  # a kid no key has is not logged

    # The first key, retired once its last token expires; then at once.
    stored_keys.clock.now = T0 + 60
    caplog.clear()
    assert stored_keys.run("keys", "retire", first.kid).code == 0
    ((level, event),) = key_events(caplog)
    (retiring,) = [k for k in stored_keys.stored() if k.kid == first.kid]
    assert (level, event.name, event.outcome, event.kid, event.retires_at, event.removed) == (
        logging.INFO, "key_retire", "success", first.kid, retiring.retires_at, ()
    )  # fmt: skip
    caplog.clear()
    assert stored_keys.run("keys", "retire", first.kid, "--now").code == 0
    ((level, event),) = key_events(caplog)
    assert (level, event.kid, event.immediately, event.removed) == (
        logging.WARNING, first.kid, True, (first.kid,)
    )  # fmt: skip
    assert [k.kid for k in stored_keys.stored()] == [leak.kid]


def test_the_security_page_lists_every_key_event() -> None:
    page = (Path(__file__).parent.parent / "docs" / "security.md").read_text()
    table = page.split("| `event` | change |", 1)[1].split("\n\n", 1)[0]
    rows = [line.split(" | ")[0] for line in table.splitlines() if line.startswith("| `")]
    assert sorted(name for row in rows for name in re.findall(r"`([a-z_]+)`", row)) == sorted(
        KEY_EVENT_NAMES
    )
