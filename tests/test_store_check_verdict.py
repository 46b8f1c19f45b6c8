"""A verdict object that cannot be read as one (not JSON, not a verdict's shape, or naming
fewer writes than this release probes): the first start that finds it probes the store and,
the probes passing, replaces it conditionally on the version it read, so that the next start
costs its one GET again; a replace another process beat leaves that process's object."""

from __future__ import annotations

import io
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import obstore as obs
import pytest
from conftest import DEFAULT_HASHING, SECRET, make_bucket, make_service
from support import R, StoreWrapper
from test_store_check import PROBED, SNAPSHOT, STARTED, lifespan, plus, verdict

from s3auth_asgi import cli
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.storage import ObjectStore, Store, keys
from s3auth_asgi.storage.probes import CONDITIONAL_UPDATE, CREATE_IF_ABSENT

pytestmark = pytest.mark.anyio

UNUSABLE = {
    "not JSON": b"{not json",
    "not an object": b"[1, 2]",
    "no list of writes": b'{"passed": "all"}',
    "fewer writes than probed": b'{"passed": ["create-if-absent"]}',
}


OTHER = b'{"passed": ["%s", "%s"], "by": "other"}' % (
    CREATE_IF_ABSENT.encode(),
    CONDITIONAL_UPDATE.encode(),
)


def put_raw(store: ObjectStore, data: bytes) -> None:
    obs.put(store._inner, keys.STORE_VERDICT, data)


@pytest.mark.parametrize("found", sorted(UNUSABLE))
async def test_an_unusable_verdict_is_replaced_once_and_read_after(
    found: str, moto_endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"s3://{make_bucket(moto_endpoint)}/auth"
    put_raw(ObjectStore.from_url(url), UNUSABLE[found])
    first = make_service(url, **DEFAULT_HASHING)
    with caplog.at_level(logging.INFO, "s3auth_asgi"):
        sent, raised = await lifespan(create_auth_app(first, rate_limit=False))
    assert raised is None and [m["type"] for m in sent] == STARTED, sent
    # The probes, and the verdict's replace in place of its create.
    assert dict(first.store.requests) == plus(PROBED, SNAPSHOT)
    recorded = await verdict(first.store)
    assert recorded is not None and recorded["by"] == "service"
    assert set(recorded["passed"]) == {CREATE_IF_ABSENT, CONDITIONAL_UPDATE}
    warned = [r for r in caplog.records if "replaced" in r.getMessage()]
    assert [r.levelno for r in warned] == [logging.WARNING, logging.INFO], caplog.text
    caplog.clear()
    # The next start reads it: 1 GET, no probe.
    second = make_service(url, **DEFAULT_HASHING)
    sent, raised = await lifespan(create_auth_app(second, rate_limit=False))
    assert raised is None and [m["type"] for m in sent] == STARTED, sent
    assert dict(second.store.requests) == plus({"get": 1}, SNAPSHOT)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


class Overtaken(StoreWrapper):
    """Another process writes its verdict after this one's read of the unusable one and
    before its replace."""

    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self.base = inner

    async def call(self, name: str, run: Callable[[], Awaitable[R]]) -> R:
        if name == "replace":
            obs.put(self.base._inner, keys.STORE_VERDICT, OTHER)
        return await run()


async def test_a_replace_another_process_beat_leaves_its_verdict(moto_endpoint: str) -> None:
    url = f"s3://{make_bucket(moto_endpoint)}/auth"
    base = ObjectStore.from_url(url)
    put_raw(base, b"garbage")
    store: Store = Overtaken(base)
    service = make_service(url, store=store)
    sent, raised = await lifespan(create_auth_app(service, rate_limit=False))
    assert raised is None and [m["type"] for m in sent] == STARTED, sent
    assert dict(store.requests) == plus(PROBED, SNAPSHOT)
    assert (await verdict(base) or {}).get("by") == "other"


def test_s3auth_check_replaces_an_unusable_verdict(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"s3://{make_bucket(moto_endpoint)}/auth"
    put_raw(ObjectStore.from_url(url), b"garbage")
    monkeypatch.setenv("S3AUTH_STORE_URL", url)
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["check"], stdout=out, stderr=err) == 0, out.getvalue() + err.getvalue()
    assert "verdict: replaced" in out.getvalue(), out.getvalue()
    service = make_service(url)
    sent, raised = anyio.run(lifespan, create_auth_app(service, rate_limit=False))
    assert raised is None and [m["type"] for m in sent] == STARTED
    assert dict(service.store.requests) == plus({"get": 1}, SNAPSHOT)
    recorded: Any = anyio.run(verdict, service.store)
    assert recorded is not None and recorded["by"] == "s3auth check"
