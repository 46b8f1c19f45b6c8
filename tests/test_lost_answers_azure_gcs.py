"""A conditional write whose answer is lost, on Azure Blob Storage (Azurite) and Google
Cloud Storage (fake-gcs-server): as on S3 (test_lost_answers.py), obstore resends it, the
resend is refused by the condition its own first attempt made true, and the store reports
the write as made. Each backend refuses in its own words: Azure a create with 409
(BlobAlreadyExists) and a replace with 412, GCS both with 412; and each must still carry
the retry count that tells a resend from a first attempt (`storage.resends`).

The answers are lost by `lossy_proxy` put where obstore reaches the server: Azurite's URL
(`AZURITE_BLOB_STORAGE_URL`), or the base URL of the GCS service-account file.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from azurite_server import Azurite
from gcs_server import FakeGCS
from lossy_proxy import LossyProxy

from s3auth_asgi.storage import ObjectStore, StoreConflict

pytestmark = pytest.mark.anyio

CREATED = {"azure": 201, "gcs": 200}
CREATE_REFUSED = {"azure": 409, "gcs": 412}
KEY = {"azure": "/t/a.json", "gcs": "%2Ft%2Fa%2Ejson"}
"""How the key shows in the path of a request: GCS's has every "/" and "." escaped."""


@dataclass
class Lossy:
    backend: str
    proxy: LossyProxy
    store: ObjectStore
    """Reaching the server through the proxy."""
    direct: ObjectStore
    """The same bucket or container, reached directly: another writer."""

    def puts(self) -> list[tuple[int, bool]]:
        return [(seen.status, seen.lost) for seen in self.proxy.puts(KEY[self.backend])]


def _gcs_account() -> dict[str, object]:
    """The service-account file that has obstore reach fake-gcs-server (`gcs_server`)."""
    return dict(json.loads(Path(os.environ["GOOGLE_SERVICE_ACCOUNT"]).read_text()))


def _reaching(backend: str, endpoint: str, tmp_path: Path) -> dict[str, str]:
    """The environment in which obstore reaches `backend`'s server at `endpoint`."""
    if backend == "azure":
        return {"AZURITE_BLOB_STORAGE_URL": endpoint}
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps({**_gcs_account(), "gcs_base_url": endpoint}))
    return {"GOOGLE_SERVICE_ACCOUNT": str(path)}


@pytest.fixture(params=["azure", "gcs"])
def lossy(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Lossy]:
    backend: str = request.param
    if backend == "azure":
        emulator: Azurite = request.getfixturevalue("azurite")
        url, upstream = emulator.fresh_url(), emulator.endpoint
    else:
        fake: FakeGCS = request.getfixturevalue("fake_gcs")
        url, upstream = fake.fresh_url(), str(_gcs_account()["gcs_base_url"])
    direct = ObjectStore.from_url(url)
    with LossyProxy(upstream) as proxy:
        # obstore reads these as the store is made: the proxied store alone goes through it.
        with monkeypatch.context() as patched:
            for name, value in _reaching(backend, proxy.endpoint, tmp_path).items():
                patched.setenv(name, value)
            store = ObjectStore.from_url(url)
        yield Lossy(backend, proxy, store, direct)


async def test_a_create_whose_answer_is_lost_is_made(lossy: Lossy) -> None:
    lossy.proxy.lose_next("PUT", KEY[lossy.backend])
    etag = await lossy.store.create("t/a.json", {"n": 1})
    created, refused = CREATED[lossy.backend], CREATE_REFUSED[lossy.backend]
    assert lossy.puts() == [(created, True), (refused, False)]
    # One PUT as the caller made it, and the GET that found the write's own bytes there.
    assert dict(lossy.store.requests) == {"put": 1, "get": 1}
    got = await lossy.direct.get("t/a.json", dict)
    assert got is not None and got.value == {"n": 1} and got.etag == etag
    assert await lossy.store.replace("t/a.json", {"n": 2}, etag)


async def test_a_replace_whose_answer_is_lost_is_made(lossy: Lossy) -> None:
    first = await lossy.store.create("t/a.json", {"n": 1})
    lossy.store.reset_counts()
    lossy.proxy.lose_next("PUT", KEY[lossy.backend])
    etag = await lossy.store.replace("t/a.json", {"n": 2}, first)
    assert lossy.puts()[1:] == [(CREATED[lossy.backend], True), (412, False)]
    assert dict(lossy.store.requests) == {"put": 1, "get": 1}
    got = await lossy.direct.get("t/a.json", dict)
    assert got is not None and got.value == {"n": 2} and got.etag == etag
    with pytest.raises(StoreConflict):  # the version it replaced is gone
        await lossy.store.replace("t/a.json", {"n": 3}, first)


async def test_a_resend_refused_by_another_writer_is_a_conflict(lossy: Lossy) -> None:
    """The first attempt fails before it reaches the store, and another writer's create
    lands before the resend."""

    def other_writer() -> None:
        asyncio.run(lossy.direct.create("t/a.json", {"n": 2}))

    lossy.proxy.lose_next("PUT", KEY[lossy.backend], landed=False, meanwhile=other_writer)
    with pytest.raises(StoreConflict):
        await lossy.store.create("t/a.json", {"n": 1})
    assert lossy.puts() == [(0, True), (CREATE_REFUSED[lossy.backend], False)]
    assert dict(lossy.store.requests) == {"put": 1, "get": 1}
    got = await lossy.direct.get("t/a.json", dict)
    assert got is not None and got.value == {"n": 2}
