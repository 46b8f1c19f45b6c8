"""A bucket (on Azure, a container) that does not exist is the store's failure: every
request into it is a StoreUnavailableError saying so, a 503 in the app and exit 4 from the
command, never an object that is not there (a user not found, no signing keys yet, a
login refused). It used to be read as a missing object, since each is a 404.

On a server, a URL naming a bucket nobody made: moto's S3, SeaweedFS, Azurite and GCS
(fake-gcs-server behind gcs_proxy.py, which answers as GCS does). SeaweedFS makes a bucket
on the first PUT into it and answers a DELETE there with success, so only its reads are
asserted. A missing key in a bucket that exists stays an absent object on every store
(test_storage.py, test_gcs_and_azure.py), at the same number of requests.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import seaweedfs_server
from conftest import SECRET, make_service
from test_cli import Run
from test_store_failures import LEAKS, calls, client, tokens_of

from s3auth_asgi import StoreUnavailableError
from s3auth_asgi.cli import failures
from s3auth_asgi.storage import ObjectStore
from s3auth_asgi.storage.versions import encode

pytestmark = pytest.mark.anyio

SERVERS = ("s3", "seaweedfs", "azure", "gcs")
READ = "The store could not be read: its {} does not exist"
WRITTEN = "The store could not be written: its {} does not exist"


def missing_url(request: pytest.FixtureRequest, server: str) -> tuple[str, dict[str, Any]]:
    """A URL on `server` whose bucket (container) nobody made, and the options it needs."""
    name = f"s3auth-missing-{uuid.uuid4().hex[:12]}"
    if server == "seaweedfs":
        weed: seaweedfs_server.SeaweedFS = request.getfixturevalue("seaweedfs")
        return f"s3://{name}/auth", weed.options()
    fixture, scheme = {"s3": ("moto_endpoint", "s3"), "azure": ("azurite", "az")}.get(
        server, ("fake_gcs", "gs")
    )
    request.getfixturevalue(fixture)
    return f"{scheme}://{name}/auth", {}


@pytest.fixture(params=SERVERS)
def missing(request: pytest.FixtureRequest) -> tuple[ObjectStore, str]:
    """A store whose bucket does not exist, and what the server calls a bucket."""
    url, options = missing_url(request, request.param)
    return ObjectStore.from_url(
        url, **options
    ), "container" if request.param == "azure" else "bucket"


Call = Callable[[ObjectStore], Awaitable[Any]]


async def _drain(store: ObjectStore) -> list[Any]:
    return [info async for info in store.list("users/")]


READS: dict[str, tuple[Call, dict[str, int]]] = {
    "get": (lambda s: s.get("users/a.json", dict), {"get": 1}),
    "list": (_drain, {"list": 1}),
    "list_page": (lambda s: s.list_page("users/", None, 10), {"list": 1}),
}


async def assert_no_bucket(
    store: ObjectStore, call: Call, detail: str, made: dict[str, int]
) -> None:
    store.reset_counts()
    with pytest.raises(StoreUnavailableError) as info:
        await call(store)
    assert type(info.value) is StoreUnavailableError
    assert info.value.detail == detail
    assert isinstance(info.value.__cause__, Exception)  # what the server said, for the log
    assert dict(store.requests) == made


async def test_a_read_in_a_missing_bucket_is_unavailable(missing: tuple[ObjectStore, str]) -> None:
    store, holder = missing
    for call, made in READS.values():
        await assert_no_bucket(store, call, READ.format(holder), made)


@pytest.mark.parametrize("server", ["s3", "azure", "gcs"])
async def test_a_write_in_a_missing_bucket_is_unavailable(
    request: pytest.FixtureRequest, server: str
) -> None:
    url, options = missing_url(request, server)
    store = ObjectStore.from_url(url, **options)
    holder = "container" if server == "azure" else "bucket"
    # A version of the form the backend issues: on GCS a generation, elsewhere an ETag.
    token = encode('"etag"', "1712345678901234" if server == "gcs" else None)
    writes: dict[str, tuple[Call, dict[str, int]]] = {
        # What a replace into a missing bucket answers may read as a refused condition (S3
        # answers 404, obstore reports a failed precondition): the bucket comes first.
        "replace": (lambda s: s.replace("users/a.json", {"n": 2}, token), {"put": 1}),
        "delete": (lambda s: s.delete("users/a.json"), {"delete": 1}),
        "delete_many": (lambda s: s.delete_many(["users/a.json"]), {"delete": 1}),
        "create": (lambda s: s.create("users/a.json", {"n": 1}), {"put": 1}),
    }
    for call, made in writes.values():
        await assert_no_bucket(store, call, WRITTEN.format(holder), made)


async def test_the_app_answers_503_for_a_missing_bucket(request: pytest.FixtureRequest) -> None:
    """Never a 401 for a login whose user is "not found", nor a 404."""
    tokens = await tokens_of(make_service(), "alice")  # the same secret key
    url, _ = missing_url(request, "s3")
    service = make_service(url)
    async with client(service) as http:
        answers = await calls(http, tokens)
    assert {name: answer.status_code for name, answer in answers.items()} == dict.fromkeys(
        answers, 503
    )
    for name, response in answers.items():
        body = response.json()
        assert body["code"] == "store_unavailable", (name, body)
        assert body["detail"] in (READ.format("bucket"), WRITTEN.format("bucket")), (name, body)
        for leak in (*LEAKS, "s3auth-missing"):
            assert leak not in response.text, (name, leak)


@pytest.mark.parametrize("left", ["nothing", "an empty mount point"])
async def test_a_file_store_whose_directory_is_gone_is_unavailable(
    tmp_path: Path, left: str
) -> None:
    """A `file://` store's directory is its bucket: removed, or the volume behind it
    unmounted (which leaves the empty directory it was mounted on), it answered every read
    as an object that is not there, a login with a wrong password and a refresh with a
    session ended, which a client takes for a logout."""
    root = tmp_path / "store"
    service = make_service(f"file://{root}")
    tokens = await tokens_of(service, "alice")
    shutil.rmtree(root)
    if left == "an empty mount point":
        root.mkdir()
    for call, made in READS.values():
        await assert_no_bucket(service.store, call, READ.format("directory"), made)
    async with client(service) as http:
        answers = await calls(http, tokens)
    assert {name: answer.status_code for name, answer in answers.items()} == dict.fromkeys(
        answers, 503
    )
    for name, response in answers.items():
        detail = response.json()["detail"]
        assert detail in (READ.format("directory"), WRITTEN.format("directory")), (name, detail)
        assert str(tmp_path) not in response.text
    # Nothing was written into what is left: the volume mounted again finds its store as it was.
    assert list(tmp_path.iterdir()) == ([root] if left == "an empty mount point" else [])
    assert not root.exists() or list(root.iterdir()) == []


@pytest.fixture
def commands_on_a_missing_bucket(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> str:
    url, _ = missing_url(request, "s3")
    monkeypatch.setenv("S3AUTH_STORE_URL", url)
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    return url


def test_every_command_on_a_missing_bucket_is_exit_4(
    commands_on_a_missing_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As docs/cli.md's table has it: `user disable` said "no user 'alice'" (exit 5) and
    `keys list` "the store holds no signing keys yet" (exit 0)."""
    runs = {
        "user disable": Run("user", "disable", "alice"),
        "user list": Run("user", "list"),
        "cleanup": Run("cleanup"),
    }
    monkeypatch.setenv("S3AUTH_ALGORITHM", "ES256")
    runs["keys list"] = Run("keys", "list")
    for name, run in runs.items():
        assert run.code == failures.UNAVAILABLE, (name, run)
        assert f"the store {commands_on_a_missing_bucket} could not be" in run.err, (name, run)
        assert "its bucket does not exist" in run.err, (name, run)
    checked = Run("check")
    assert checked.code == failures.UNAVAILABLE, checked
    assert "[FAIL] reachable: cannot list or read: " + READ.format("bucket") in checked.out
