"""Reading an http(s) URL from async code: one deadline for the whole read, redirects kept
to http(s), and the reader's own size cap. The JWKS of a verifier (`keys.jwks_fetch`) and
the range answers of a breached-password service (`breached_passwords`) are read this way.

urllib's `timeout` bounds each socket operation, not a read: a server that sends a byte a
little more often than that holds a read (and whoever waits for it) as long as it likes.
Here the caller stops waiting at the deadline, whatever the read was doing (connecting,
the TLS handshake, the status line, the headers, the body), and the connections the read
opened are shut down then, which wakes the worker thread blocked on them: it does not
read on in the background. (A thread still connecting gives up by itself: each socket
operation is bounded by the same number of seconds.)

A redirect may lead to another http(s) URL only, never from https to http; and, for a read
that asks for it (`plain_http_anywhere=False`: a JWKS's and a breached-password lookup's,
unless their operator allows plain http), to plain http on this machine alone
(`hosts.is_loopback`).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from .hosts import is_loopback

T = TypeVar("T")

Read = Callable[[urllib.request.OpenerDirector, float], T]
"""What runs in the worker thread: given an opener whose connections the deadline shuts
down, and the seconds each socket operation may take."""


async def read_within(seconds: float, read: Read[T], *, plain_http_anywhere: bool = True) -> T:
    """What `read` returns, within `seconds` in all: TimeoutError at the deadline, or
    whatever `read` raised (OSError, http.client.HTTPException, urllib's HTTPError...).
    Without `plain_http_anywhere`, a redirect to plain http leads to this machine alone."""
    connections = _Connections()
    opener = urllib.request.build_opener(
        _HttpRedirectsOnly(plain_http_anywhere=plain_http_anywhere),
        _HttpHandler(connections),
        _HttpsHandler(connections),
    )
    try:
        with anyio.move_on_after(seconds):
            return await anyio.to_thread.run_sync(read, opener, seconds, abandon_on_cancel=True)
    finally:
        # After the deadline, or when the caller was cancelled, the thread may still be
        # blocked on a socket: this wakes it. Once it has ended, this changes nothing.
        connections.shut_down()
    raise TimeoutError(f"no whole answer within {seconds:g} s")


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
    and never from https to http: what was fetched over TLS (keys, an answer about a
    password) must not be handed over in clear, where anyone on the path could swap it.
    Without `plain_http_anywhere`, not from anywhere to plain http off this machine either:
    a reader allowed plain http on loopback is not led off it in clear."""

    def __init__(self, *, plain_http_anywhere: bool = True) -> None:
        super().__init__()
        self.plain_http_anywhere = plain_http_anywhere

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
        host = None if self.plain_http_anywhere else plain_http_off_machine(newurl)
        if host is not None:
            # Said, unlike the refusals above: the read was allowed plain http, the place
            # it was sent to is not. The host alone: the URL may carry secrets.
            raise urllib.error.HTTPError(
                req.full_url,
                code,
                f"{msg}, to plain http off this machine ({host}): not followed",
                headers,
                fp,
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def plain_http_off_machine(url: str) -> str | None:
    """The host of `url` when it is plain http to another machine than this one (not
    `hosts.is_loopback`): in lower case, without brackets or user info, or 'no host' for
    one that names none (or does not parse); None for https, or plain http to this
    machine. The one rule of the reads that allow plain http on this machine alone."""
    if not url.startswith("http://"):
        return None
    try:
        host = urllib.parse.urlsplit(url).hostname or ""
    except ValueError:
        host = ""
    return None if is_loopback(host) else host or "no host"
