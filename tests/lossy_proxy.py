"""A proxy in front of an S3 endpoint that lets a chosen request land and then loses its
answer: the client gets a 503, or its connection is dropped, as from a load balancer or a
network blip. obstore resends such a request on its own, so a conditional write whose
first attempt landed is resent and refused by the condition that attempt made true. No
tests here.

    with LossyProxy(upstream) as proxy:
        store = proxy.store(url)
        proxy.lose_next("PUT", "/users/")   # the next PUT whose path holds "/users/"

A request can also be failed without reaching the upstream (`landed=False`), with another
writer's work run first (`meanwhile`), so that obstore's resend meets that writer's write.
"""

from __future__ import annotations

import http.server
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType
from urllib.parse import urlsplit

from proxying import ask_upstream, body_of, hand_back

from s3auth_asgi.storage import ObjectStore


@dataclass
class Seen:
    method: str
    path: str
    status: int
    """What the upstream answered (0: not sent on); the client got a 503 or nothing when
    `lost`."""
    lost: bool


@dataclass(frozen=True)
class _Loss:
    method: str
    part: str
    landed: bool
    meanwhile: Callable[[], object] | None


@dataclass
class LossyProxy:
    upstream: str
    mode: str = "503"
    """How an answer is lost: "503" (a 503 in its place) or "drop" (the connection closed)."""
    seen: list[Seen] = field(default_factory=list)
    _pending: _Loss | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: socketserver.TCPServer | None = None

    def lose_next(
        self,
        method: str,
        part: str,
        *,
        landed: bool = True,
        meanwhile: Callable[[], object] | None = None,
    ) -> None:
        """Lose the answer of the next `method` request whose path contains `part` (once):
        after it landed, or (`landed=False`) without sending it on, `meanwhile` run first."""
        with self._lock:
            self._pending = _Loss(method, part, landed, meanwhile)

    def _loss(self, method: str, path: str) -> _Loss | None:
        with self._lock:
            loss = self._pending
            if loss is None or method != loss.method or loss.part not in path:
                return None
            self._pending = None
            return loss

    def lost(self) -> list[Seen]:
        return [seen for seen in self.seen if seen.lost]

    def puts(self, part: str) -> list[Seen]:
        """The PUTs whose path contains `part`, resends included."""
        return [seen for seen in self.seen if seen.method == "PUT" and part in seen.path]

    @property
    def endpoint(self) -> str:
        assert self._server is not None, "start the proxy first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def store(self, url: str) -> ObjectStore:
        """An `ObjectStore` for `url` reaching the upstream through this proxy."""
        return ObjectStore.from_url(
            url, endpoint=self.endpoint, client_options={"allow_http": True}
        )

    def __enter__(self) -> LossyProxy:
        proxy = self
        upstream = urlsplit(self.upstream)
        address = (upstream.hostname or "127.0.0.1", upstream.port or 80)

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def forward(self) -> None:
                body = body_of(self)
                loss = proxy._loss(self.command, self.path)
                if loss is not None and not loss.landed:
                    if loss.meanwhile is not None:
                        loss.meanwhile()
                    proxy.seen.append(Seen(self.command, self.path, 0, True))
                    self.lose()
                    return
                status, headers, data = ask_upstream(self, address, body)
                proxy.seen.append(Seen(self.command, self.path, status, loss is not None))
                if loss is not None:
                    self.lose()
                    return
                hand_back(self, status, headers, data)

            def lose(self) -> None:
                if proxy.mode == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self._server = Server(("127.0.0.1", 0), Handler)
        # Polled often, so that each test's proxy shuts down in a moment, not half a second.
        serve = partial(self._server.serve_forever, poll_interval=0.02)
        threading.Thread(target=serve, daemon=True).start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
