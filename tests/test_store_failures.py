"""Every failure to reach the store is a StoreUnavailableError, a 503 naming no key.

Two real failures, each for every request `ObjectStore` makes:

- a file:// store whose directory has been replaced by a plain file (as when the volume
  behind it is gone): every file-system call under it fails with ENOTDIR, for root too;
- an S3 store whose endpoint is a loopback port nobody listens on, with retries off.

And the one behind a refresh that answered 500: the lock files of a file:// store that
cannot be opened. The tests run as root, which permission bits do not stop, so the lock-file
open is made to fail with the PermissionError an unwritable directory gives anyone else; a
last test makes the directory unwritable for real when not run as root.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import make_service
from starlette.applications import Starlette
from starlette.routing import Mount
from support import StoreWrapper

from s3auth_asgi import S3AuthService, StoreUnavailableError
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.storage import ObjectStore
from s3auth_asgi.storage.access import gather, get_or_none
from s3auth_asgi.storage.base import CorruptObjectError
from s3auth_asgi.storage.store import OPEN_FAILED, READ_FAILED, WRITE_FAILED
from s3auth_asgi.storage.unavailable import RedactedStoreError

pytestmark = pytest.mark.anyio

PASSWORD = "Secret123!"
KEY = "users/stored.json"
LOGGER = "s3auth_asgi.storage"
# What a 503 must not show: keys and their parts, paths, addresses, exception names.
LEAKS = ("users/", "sessions/", "index/", ".json", "127.0.0.1", "os error", "S3 error", "Local")
EXCEPTION_NAMES = ("GenericError", "PermissionError", "NotADirectoryError", "OSError")


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that is bound, so nobody else takes it, and refuses connections."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def unreachable_s3(port: int) -> ObjectStore:
    return ObjectStore.from_url(
        "s3://s3auth-unreachable/auth",
        endpoint=f"http://127.0.0.1:{port}",
        access_key_id="unused",
        secret_access_key="unused",
        region="us-east-1",
        client_options={"allow_http": True, "connect_timeout": "1s", "timeout": "2s"},
        retry_config={"max_retries": 0, "retry_timeout": dt.timedelta(seconds=1)},
    )


def remove_directory(root: Path) -> None:
    """Where the store's directory was, a plain file: ENOTDIR for every path under it."""
    shutil.rmtree(root)
    root.write_text("not a directory\n")


@pytest.fixture(params=["file", "s3"])
async def broken(
    request: pytest.FixtureRequest, tmp_path: Path, closed_port: int
) -> tuple[ObjectStore, str]:
    """A store that fails every request, and the ETag of KEY from before it broke."""
    if request.param == "s3":
        return unreachable_s3(closed_port), '"etag"'
    root = tmp_path / "store"
    store = ObjectStore.from_url(f"file://{root}")
    etag = await store.create(KEY, {"n": 1})
    remove_directory(root)
    return store, etag


async def _drain(items: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in items]


def operations(etag: str) -> dict[str, tuple[Callable[[ObjectStore], Awaitable[Any]], str]]:
    """Each request kind: how to make it, and the key (or prefix) the log must name."""
    return {
        "get": (lambda s: s.get(KEY, dict), KEY),
        "get a missing key": (lambda s: s.get("users/missing.json", dict), "users/missing"),
        "create": (lambda s: s.create("users/new.json", {"n": 2}), "users/new.json"),
        "replace": (lambda s: s.replace(KEY, {"n": 3}, etag), KEY),
        "delete": (lambda s: s.delete(KEY), KEY),
        "delete_many": (lambda s: s.delete_many([KEY, "users/b.json"]), KEY),
        "list": (lambda s: _drain(s.list("users/")), "users/"),
        "list_page": (lambda s: s.list_page("users/", None, 10), "users/"),
    }


def assert_generic(error: StoreUnavailableError, *details: str) -> None:
    assert type(error) is StoreUnavailableError
    assert error.detail in details
    assert isinstance(error.__cause__, Exception)  # for the operator, not the public


def assert_logged(caplog: pytest.LogCaptureFixture, named: str) -> None:
    records = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    assert any(named in record.getMessage() for record in records), caplog.records


async def test_every_request_to_a_broken_store_is_unavailable(
    broken: tuple[ObjectStore, str], caplog: pytest.LogCaptureFixture
) -> None:
    store, etag = broken
    for name, (call, named) in operations(etag).items():
        caplog.clear()
        with pytest.raises(StoreUnavailableError) as info:
            await call(store)
        assert_generic(info.value, READ_FAILED, WRITE_FAILED)
        assert named not in info.value.detail, name
        assert_logged(caplog, named)


async def test_opening_a_file_store_that_cannot_be_a_directory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "file").write_text("x")
    for root in (tmp_path / "file", tmp_path / "file" / "below"):
        caplog.clear()
        with pytest.raises(StoreUnavailableError) as info:
            ObjectStore.from_url(f"file://{root}")
        assert_generic(info.value, OPEN_FAILED)
        assert_logged(caplog, str(root))


async def test_a_corrupt_object_names_no_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = ObjectStore.from_url(f"file://{tmp_path / 'store'}")
    await store.create(KEY, ["not", "a", "mapping"])
    with pytest.raises(CorruptObjectError) as info:
        await store.get(KEY, dict)
    assert "users" not in info.value.detail and "json" not in info.value.detail
    assert_logged(caplog, KEY)


# The lock files -----------------------------------------------------------------------------


@pytest.fixture
def locks_refused(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    """`refuse(root)`: from then on, opening a lock file under `root` fails as it does in a
    directory the process may not write to (`os.open`, which `local` calls, passes every
    other path through)."""
    real_open = os.open

    def refuse(root: Path) -> None:
        locks = str(root.resolve() / ".s3auth" / "locks")

        def guarded_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
            if str(path).startswith(locks):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", guarded_open)

    return refuse


async def test_lock_files_that_cannot_be_opened(
    tmp_path: Path, locks_refused: Callable[[Path], None], caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "store"
    store = ObjectStore.from_url(f"file://{root}")
    etag = await store.create(KEY, {"n": 1})
    locks_refused(root)
    for call in (lambda: store.replace(KEY, {"n": 2}, etag), lambda: store.delete(KEY)):
        caplog.clear()
        with pytest.raises(StoreUnavailableError) as info:
            await call()
        assert_generic(info.value, WRITE_FAILED)
        cause = info.value.__cause__
        assert isinstance(cause, RedactedStoreError) and cause.kind == "PermissionError"
        assert_logged(caplog, KEY)
    assert await store.get(KEY, dict) is not None  # reading needs no lock
    assert list((root / ".s3auth" / "tmp").iterdir()) == []


def permission_bits_apply(directory: Path) -> bool:
    """Whether this process is refused a write to a directory without write permission
    (root with CAP_DAC_OVERRIDE is not)."""
    probe = directory / "probe"
    probe.mkdir(mode=0o500)
    try:
        (probe / "file").touch()
    except PermissionError:
        return True
    finally:
        probe.chmod(0o700)
    return False


async def test_an_unwritable_directory(tmp_path: Path) -> None:
    if not permission_bits_apply(tmp_path):
        pytest.skip("this process writes where permission bits forbid it (root)")
    root = tmp_path / "store"
    store = ObjectStore.from_url(f"file://{root}")
    etag = await store.create(KEY, {"n": 1})
    for path in (root, root / "users", root / ".s3auth" / "locks", root / ".s3auth" / "tmp"):
        path.chmod(0o500)
    try:
        with pytest.raises(StoreUnavailableError):
            await store.replace(KEY, {"n": 2}, etag)
        with pytest.raises(StoreUnavailableError):
            await store.create("users/new.json", {})
        with pytest.raises(StoreUnavailableError):
            await store.delete(KEY)
    finally:
        for path in (root, root / "users", root / ".s3auth" / "locks", root / ".s3auth" / "tmp"):
            path.chmod(0o700)


# Through the auth app -----------------------------------------------------------------------


def client(service: S3AuthService) -> httpx.AsyncClient:
    app = Starlette(routes=[Mount("/auth", app=create_auth_app(service, rate_limit=False))])
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def tokens_of(service: S3AuthService, name: str) -> dict[str, Any]:
    async with client(service) as http:
        registered = await http.post(
            "/auth/register",
            json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
        )
        assert registered.status_code == 201, registered.text
        login = await http.post("/auth/login", data={"username": name, "password": PASSWORD})
        assert login.status_code == 200, login.text
        tokens: dict[str, Any] = login.json()
        return tokens


async def calls(http: httpx.AsyncClient, tokens: dict[str, Any]) -> dict[str, httpx.Response]:
    refresh = {"refresh_token": tokens["refresh_token"]}
    return {
        "register": await http.post(
            "/auth/register",
            json={"username": "bob", "email": "bob@example.com", "password": PASSWORD},
        ),
        "login": await http.post("/auth/login", data={"username": "alice", "password": PASSWORD}),
        "refresh": await http.post("/auth/refresh", json=refresh),
        "logout": await http.post("/auth/logout", json=refresh),
    }


def assert_unavailable(name: str, response: httpx.Response, *hidden: str) -> None:
    assert response.status_code == 503, (name, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    body = response.json()
    assert body["code"] == "store_unavailable"
    assert body.get("detail") in (READ_FAILED, WRITE_FAILED), (name, body)
    for leak in (*LEAKS, *EXCEPTION_NAMES, *hidden):
        assert leak not in response.text, (name, leak, response.text)


async def test_the_app_answers_503_when_the_file_store_is_gone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "store"
    service = make_service(f"file://{root}")
    tokens = await tokens_of(service, "alice")
    remove_directory(root)
    async with client(service) as http:
        for name, response in (await calls(http, tokens)).items():
            assert_unavailable(name, response, str(tmp_path))
    assert_logged(caplog, "sessions/")


async def test_the_app_answers_503_when_the_s3_endpoint_refuses(
    closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = await tokens_of(make_service(), "alice")  # the same secret key
    service = make_service(store=unreachable_s3(closed_port))
    async with client(service) as http:
        for name, response in (await calls(http, tokens)).items():
            assert_unavailable(name, response, str(closed_port))
    assert_logged(caplog, "sessions/")


async def test_refresh_and_logout_answer_503_when_the_lock_files_cannot_be_opened(
    tmp_path: Path, locks_refused: Callable[[Path], None], caplog: pytest.LogCaptureFixture
) -> None:
    """Reads and creates work, the If-Match replace and the delete need a lock: this
    refresh answered 500 with the PermissionError."""
    root = tmp_path / "store"
    service = make_service(f"file://{root}")
    tokens = await tokens_of(service, "alice")
    locks_refused(root)
    refresh = {"refresh_token": tokens["refresh_token"]}
    async with client(service) as http:
        for name in ("refresh", "logout"):
            response = await http.post(f"/auth/{name}", json=refresh)
            assert_unavailable(name, response, str(tmp_path))
    assert_logged(caplog, "sessions/")


async def test_a_failure_among_concurrent_reads_is_the_store_error_itself() -> None:
    """Reads made side by side (a user's sessions, a page of users) fail as one read
    does: with the StoreUnavailableError callers and the app handle, not a group."""

    class SecondReadFails(StoreWrapper):
        reads = 0

        async def get(self, key: str, type_: type[Any]) -> Any:
            self.reads += 1
            if self.reads == 2:
                raise StoreUnavailableError("injected: the second read failed")
            return await self.inner.get(key, type_)

    store = SecondReadFails(ObjectStore.from_url("memory://"))
    with pytest.raises(StoreUnavailableError):
        await gather([get_or_none(store, f"users/{i}.json", dict) for i in range(3)])
