"""A change of the stored signing keys made elsewhere (`s3auth keys`, another host) is seen
in each service process's own log: the read that first finds the set changed logs one
`key_set_changed`, and the first token signed with a key new to the process one
`key_activated`, both `by observer`. Two instances on one store (memory:// shared, or one
file:// directory opened by each, as two hosts do), a clock moved by hand; a read that
finds the set as it was logs nothing and costs what it costs without these events."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from support import Clock, make_clocked_service
from test_key_events import key_events

from s3auth_asgi import S3AuthService
from s3auth_asgi.keys.events import KeyEvent, KeyTimes
from s3auth_asgi.keys.stored import KeyStore
from s3auth_asgi.storage import ObjectStore
from s3auth_asgi.verifier import TokenJudge

pytestmark = pytest.mark.anyio

SYNC = 60
PUBLISH = 500
SKEW = 10  # S3AUTH_REVOCATION_SKEW_SECONDS's default


@pytest.fixture(params=["memory", "file"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> list[ObjectStore]:
    """Three handles on one store: two service hosts' and an administrator's."""
    if request.param == "memory":
        return [ObjectStore.from_url("memory://")] * 3
    url = f"file://{tmp_path / 'store'}"
    return [ObjectStore.from_url(url) for _ in range(3)]


def host(store: ObjectStore, clock: Clock) -> S3AuthService:
    return make_clocked_service(
        clock=clock,
        store=store,
        algorithm="ES256",
        key_publish_seconds=PUBLISH,
        key_sync_seconds=SYNC,
    )


def sign(service: S3AuthService) -> str:
    """An access token `service` signs now (no store request)."""
    token, _ = service.tokens.issue_access_token(
        user_id="a" * 32, username="alice", session_id="b" * 32, is_admin=False, scopes=[]
    )
    return token


def observed(caplog: pytest.LogCaptureFixture) -> list[KeyEvent]:
    """The key events logged since the last call, each at INFO and by the observer."""
    found = key_events(caplog)
    caplog.clear()
    assert {(level, e.by, e.outcome) for level, e in found} <= {
        (logging.INFO, "observer", "success")
    }
    return [e for _, e in found]


def requests(stores: list[ObjectStore]) -> dict[str, int]:
    """What the hosts asked of the store since the last call, all together."""
    counts: dict[str, int] = {}
    for store in dict.fromkeys(stores):  # memory://: one handle for all
        for kind, n in store.requests.items():
            counts[kind] = counts.get(kind, 0) + n
        store.reset_counts()
    return counts


def kid_of(token: str) -> str:
    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "==="))["kid"])


async def test_each_instance_logs_once_what_it_finds_changed_and_the_key_it_signs_with(
    stores: list[ObjectStore], caplog: pytest.LogCaptureFixture
) -> None:
    time = Clock()
    first, second = host(stores[0], time), host(stores[1], time)
    admin = KeyStore(stores[2], by="cli")
    caplog.set_level(logging.INFO, logger="s3auth_asgi")
    await first.tokens.ring.sync()  # type: ignore[union-attr]
    await second.tokens.ring.sync()  # type: ignore[union-attr]
    found = await admin.read()
    assert found is not None
    (old,) = found[0].keys
    tokens = [sign(first), sign(second)]  # what each signs with at its start: no change
    assert [e.name for _, e in key_events(caplog)] == ["key_create"]  # the first's, by service
    caplog.clear()

    # A rotation by the command: each instance's next read logs it once.
    new = await admin.rotate("ES256", time(), PUBLISH)
    assert [(e.name, e.by) for _, e in key_events(caplog)] == [("key_rotate", "cli")]
    caplog.clear()
    time.advance(SYNC)
    requests(stores)
    for service in (first, second):
        await service.tokens.ring.sync()  # type: ignore[union-attr]
    changed = [(e.name, e.kid, e.added, e.removed, e.retiring) for e in observed(caplog)]
    assert changed == 2 * [
        ("key_set_changed", None, (KeyTimes(new.kid, new.activates_at),), (), ())
    ]
    assert requests(stores) == {"get": 2}  # a read each, as for a set unchanged
    # Reads finding the set as it was (a sync; keys overdue after an idle spell): nothing.
    time.advance(SYNC)
    await first.tokens.ring.sync()  # type: ignore[union-attr]
    time.advance(SYNC)
    assert second.keys_overdue()
    await second.read_overdue_keys()
    assert observed(caplog) == []
    assert requests(stores) == {"get": 2}

    # Its activation, on each instance's clock: logged at its first token signed with it.
    assert {kid_of(t) for t in tokens} == {old.kid}
    time.now = new.activates_at + 1  # a token's times are whole seconds
    for service in (first, second):
        await service.tokens.ring.sync()  # type: ignore[union-attr]
        assert kid_of(sign(service)) == new.kid
        assert kid_of(sign(service)) == new.kid
    activated = [(e.name, e.kid, e.activates_at, e.at) for e in observed(caplog)]
    assert activated == 2 * [("key_activated", new.kid, new.activates_at, int(time()))]

    # A retirement set, then the key removed at once.
    when = await admin.retire(old.kid, time(), after=100, immediately=False, undo_margin=2 * SYNC)
    caplog.clear()  # the administrator's own event
    time.advance(SYNC)
    for service in (first, second):
        await service.tokens.ring.sync()  # type: ignore[union-attr]
    retiring = [(e.name, e.added, e.removed, e.retiring) for e in observed(caplog)]
    assert retiring == 2 * [
        ("key_set_changed", (), (), (KeyTimes(old.kid, old.activates_at, when),))
    ]
    await admin.retire(old.kid, time(), after=0, immediately=True, undo_margin=0)
    caplog.clear()
    time.advance(SYNC)
    for service in (first, second):
        await service.tokens.ring.sync()  # type: ignore[union-attr]
        await service.tokens.ring.sync()  # type: ignore[union-attr]
    removed = [(e.name, e.added, e.removed, e.retiring) for e in observed(caplog)]
    assert removed == 2 * [("key_set_changed", (), (old.kid,), ())]


async def test_a_token_naming_a_key_rotated_in_at_once_is_observed_by_the_read_it_causes(
    stores: list[ObjectStore], caplog: pytest.LogCaptureFixture
) -> None:
    time = Clock()
    signer, verifier = host(stores[0], time), host(stores[1], time)
    admin = KeyStore(stores[2], by="cli", skew_seconds=SKEW)
    for service in (signer, verifier):
        await service.tokens.ring.sync()  # type: ignore[union-attr]
    sign(signer)
    caplog.set_level(logging.INFO, logger="s3auth_asgi")
    leak = await admin.rotate("ES256", time(), 0)  # a leak's: signs at once
    caplog.clear()
    time.advance(SYNC)
    await signer.tokens.ring.sync()  # type: ignore[union-attr]
    token = sign(signer)
    assert [(e.name, e.kid) for e in observed(caplog)] == [
        ("key_set_changed", None),
        ("key_activated", leak.kid),
    ]
    requests(stores)
    judge = TokenJudge(verifier, verifier.verify_access_token)
    claims: dict[str, Any] = await judge.judge(token.encode())
    assert claims["sub"] == "a" * 32
    assert [(e.name, e.added) for e in observed(caplog)] == [
        ("key_set_changed", (KeyTimes(leak.kid, leak.activates_at),))
    ]
    assert requests(stores) == {"get": 1}  # the one read the unknown kid costs
    # Read again: the same set, nothing logged.
    assert await judge.judge(sign(signer).encode())
    time.advance(SYNC)
    await verifier.tokens.ring.sync()  # type: ignore[union-attr]
    assert observed(caplog) == []
