"""A proxy in front of Azurite or the GCS proxy that records each LIST it passes on and
what the answer held: the query sent (whether an offset went with it) and how many objects
and directories (Azure's `BlobPrefix`, S3's and GCS's `CommonPrefixes`) came back. Every
other request goes through untouched. No tests here.

    with ListingProxy(upstream) as proxy:
        ...  # open the store on proxy.endpoint
        proxy.listings  # [Listing(query, objects, directories), ...]
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from proxying import ask_upstream, body_of, hand_back

_OBJECT = re.compile(rb"<(?:Blob|Contents)>")
_DIRECTORY = re.compile(rb"<(?:BlobPrefix|CommonPrefixes)>")


@dataclass(frozen=True)
class Listing:
    query: str
    objects: int
    directories: int


class ListingProxy(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.endpoint = f"http://127.0.0.1:{self.server_address[1]}"
        self.listings: list[Listing] = []
        self.lock = threading.Lock()

    def __enter__(self) -> ListingProxy:
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.shutdown()
        self.server_close()

    def clear(self) -> None:
        with self.lock:
            self.listings.clear()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ListingProxy

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _forward(self) -> None:
        status, headers, data = ask_upstream(self, self.server.upstream, body_of(self))
        query = urlsplit(self.path).query
        if "comp=list" in query or "list-type=2" in query:
            found = Listing(query, len(_OBJECT.findall(data)), len(_DIRECTORY.findall(data)))
            with self.server.lock:
                self.server.listings.append(found)
        hand_back(self, status, headers, data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward
