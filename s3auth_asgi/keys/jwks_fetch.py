"""Reading a JWKS over http(s): one deadline for the whole read, and a size cap.

urllib's `timeout` bounds each socket operation, not a read: a server that sends a byte a
little more often than that holds a read (and whoever waits for it) as long as it likes.
Here the caller stops waiting at the deadline, whatever the read was doing (connecting,
the TLS handshake, the status line, the headers, the body), and the connections the read
opened are shut down then, which wakes the worker thread blocked on them: it does not
read on in the background. (A thread still connecting gives up by itself: each socket
operation is bounded by the same number of seconds.)

The body is read up to `MAX_JWKS_BYTES`; a redirect may lead to another http(s) URL only,
never from https to http.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import urllib.error
import urllib.request
from typing import Any, NamedTuple

import anyio
import anyio.to_thread

MAX_JWKS_BYTES = 65536


class JwksAnswer(NamedTuple):
    document: object | None
    """The parsed JSON; None when the server answered 304 Not Modified."""
    etag: str | None


async def fetch_jwks(url: str, *, etag: str | None, seconds: float) -> JwksAnswer:
    """The JWKS document at `url`, read within `seconds` in all (If-None-Match `etag`,
    when given). Raises what failed: TimeoutError at the deadline, OSError,
    http.client.HTTPException, ValueError, RecursionError (JSON nested too deeply)..."""
    connections = _Connections()
    try:
        with anyio.move_on_after(seconds):
            return await anyio.to_thread.run_sync(
                _read, url, etag, seconds, connections, abandon_on_cancel=True
            )
    finally:
        # After the deadline, or when the caller was cancelled, the thread may still be
        # blocked on a socket: this wakes it. Once it has ended, this changes nothing.
        connections.shut_down()
    raise TimeoutError(f"no whole answer within {seconds:g} s")


def parse_jwks(body: bytes) -> object:
    """The JSON of a JWKS body of at most MAX_JWKS_BYTES (ValueError otherwise)."""
    if len(body) > MAX_JWKS_BYTES:
        raise ValueError("the JWKS is larger than a key set can be")
    document: object = json.loads(body)
    return document


def _read(url: str, etag: str | None, timeout: float, connections: _Connections) -> JwksAnswer:
    # The scheme is http(s): JwksVerifier checks it, and redirects keep to it.
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    if etag is not None:
        request.add_header("If-None-Match", etag)
    opener = urllib.request.build_opener(
        _HttpRedirectsOnly, _HttpHandler(connections), _HttpsHandler(connections)
    )
    try:
        with opener.open(request, timeout=timeout) as response:
            body = response.read(MAX_JWKS_BYTES + 1)
            answered_etag = response.headers.get("ETag")
    except urllib.error.HTTPError as error:
        if error.code == 304 and etag is not None:
            return JwksAnswer(None, etag)
        raise
    return JwksAnswer(parse_jwks(body), answered_etag)


class _Connections:
    """The sockets of one read (a redirect opens another), each held by a duplicate so
    that shutting it down reaches the connection even after http.client let go of it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._shut = False

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock.dup())
            if self._shut:
                self._shut_down_all()

    def shut_down(self) -> None:
        with self._lock:
            self._shut = True
            self._shut_down_all()

    def _shut_down_all(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):  # not connected any more
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._sockets.clear()


class _RegisteredHttp(http.client.HTTPConnection):
    connections: _Connections

    def connect(self) -> None:
        # HTTPSConnection.connect calls this before the TLS handshake: the plain socket
        # is registered, so a handshake that drags on is cut at the deadline too.
        super().connect()
        self.connections.add(self.sock)


class _RegisteredHttps(http.client.HTTPSConnection, _RegisteredHttp):
    pass


def _connection_class(base: type[_RegisteredHttp], connections: _Connections) -> Any:
    def connection(host: str, **kwargs: Any) -> http.client.HTTPConnection:
        made = base(host, **kwargs)
        made.connections = connections
        return made

    return connection


class _HttpHandler(urllib.request.HTTPHandler):
    def __init__(self, connections: _Connections) -> None:
        super().__init__()
        self._connection = _connection_class(_RegisteredHttp, connections)

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self._connection, req)


class _HttpsHandler(urllib.request.HTTPSHandler):
    def __init__(self, connections: _Connections) -> None:
        super().__init__()
        self._connection = _connection_class(_RegisteredHttps, connections)

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        # No context given: http.client makes its default one (certificates and host name
        # verified), as urllib's own HTTPS handler does.
        return self.do_open(self._connection, req)


class _HttpRedirectsOnly(urllib.request.HTTPRedirectHandler):
    """A redirect may lead to another http(s) URL only (urllib would follow ftp:// too),
    and never from https to http: keys fetched over TLS must not be handed over in clear,
    where anyone on the path could swap them."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        if not newurl.startswith(("http://", "https://")):
            return None
        if req.full_url.startswith("https://") and not newurl.startswith("https://"):
            return None
        return super().redirect_request(req, fp, code, msg, headers, newurl)
