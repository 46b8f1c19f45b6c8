"""A store that takes connections and never answers (a black-holed endpoint, a stuck load
balancer) fails a request with 503 within a bounded time, on a server on 127.0.0.1.

Each attempt is cut off at obstore's request timeout (here half a second, as
`AWS_TIMEOUT=500ms` makes it); a read cut off is tried again only within the package's retry
window (`storage.client.RETRY_WINDOW`), where obstore alone would retry for three minutes; a
write cut off is not resent at all, since it may have landed.

The window is made 2 s here (`short_window`), where the package's is 5 s: what is proved is
that a store made by the package stops retrying at its window, whatever its length, and each
test waits the window out. `test_a_retry_config_given_keeps_the_window_unless_it_sets_one`
holds the package's own value.
"""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from s3auth_asgi import StoreUnavailableError
from s3auth_asgi.storage import ObjectStore, client
from s3auth_asgi.storage.client import RETRY_WINDOW

pytestmark = pytest.mark.anyio

ATTEMPT_SECONDS = 0.5
WINDOW = dt.timedelta(seconds=2)
"""Four attempts' worth: a read is tried at least twice within it, even on a busy machine."""


class SilentServer:
    """Accepts every connection on 127.0.0.1 and never answers; counts the connections."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = int(self._listener.getsockname()[1])
        self.connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed
                return
            self.connections.append(connection)

    def close(self) -> None:
        # shutdown wakes the thread blocked in accept, which close alone may not
        self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(5)
        for connection in self.connections:
            connection.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def short_window(monkeypatch: pytest.MonkeyPatch) -> dt.timedelta:
    """The package's retry window, made `WINDOW` for the stores made while the test runs."""
    monkeypatch.setattr(client, "RETRY_WINDOW", WINDOW)
    return WINDOW


def silent_s3(server: SilentServer) -> ObjectStore:
    """An S3 store on `server`, with obstore's retries as the package leaves them."""
    return ObjectStore.from_url(
        "s3://s3auth-silent/auth",
        endpoint=f"http://127.0.0.1:{server.port}",
        access_key_id="unused",
        secret_access_key="unused",
        region="us-east-1",
        client_options={"allow_http": True, "timeout": f"{ATTEMPT_SECONDS * 1000:.0f}ms"},
    )


async def _listed(store: ObjectStore) -> list[Any]:
    return [info async for info in store.list("users/")]


READS: dict[str, Callable[[ObjectStore], Awaitable[Any]]] = {
    "get": lambda s: s.get("users/a.json", dict),
    "list": _listed,
}


@pytest.mark.parametrize("read", READS)
async def test_a_read_from_a_store_that_never_answers_fails_within_the_retry_window(
    silent: SilentServer, short_window: dt.timedelta, read: str
) -> None:
    store = silent_s3(silent)
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError):
        await READS[read](store)
    elapsed = time.monotonic() - started
    window = short_window.total_seconds()
    # The last attempt starts within the window and is cut off one attempt later.
    assert elapsed < window + ATTEMPT_SECONDS + 1.5, elapsed
    assert 2 <= len(silent.connections) <= window / ATTEMPT_SECONDS + 2
    assert store.requests[read] == 1


async def test_a_write_to_a_store_that_never_answers_is_cut_off_once(
    silent: SilentServer,
) -> None:
    store = silent_s3(silent)
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError):
        await store.create("users/a.json", {"n": 1})
    assert time.monotonic() - started < ATTEMPT_SECONDS + 1.5
    assert len(silent.connections) == 1


def test_a_retry_config_given_keeps_the_window_unless_it_sets_one() -> None:
    from s3auth_asgi.storage.client import network_options

    assert network_options({})["retry_config"] == {"retry_timeout": RETRY_WINDOW}
    assert network_options({"retry_config": None})["retry_config"] == {
        "retry_timeout": RETRY_WINDOW
    }
    given = network_options({"retry_config": {"max_retries": 2}})["retry_config"]
    assert given == {"retry_timeout": RETRY_WINDOW, "max_retries": 2}
    own = {"retry_timeout": RETRY_WINDOW * 3}
    assert network_options({"retry_config": own})["retry_config"] == own


async def test_a_jwks_publication_to_a_target_that_never_answers_fails_within_the_window(
    silent: SilentServer, short_window: dt.timedelta, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Awaited where a key is about to sign: a login waits for it.
    from s3auth_asgi.keys.publish import publish_jwks

    for name, value in {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{silent.port}",
        "AWS_ALLOW_HTTP": "true",
        "AWS_TIMEOUT": f"{ATTEMPT_SECONDS * 1000:.0f}ms",
        "AWS_ACCESS_KEY_ID": "unused",
        "AWS_SECRET_ACCESS_KEY": "unused",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError):
        await publish_jwks("s3://s3auth-public/jwks.json", {"keys": []}, 300)
    elapsed = time.monotonic() - started
    assert elapsed < short_window.total_seconds() + ATTEMPT_SECONDS + 1.5, elapsed
