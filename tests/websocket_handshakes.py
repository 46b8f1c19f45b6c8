"""A browser's WebSocket handshake sent by hand to a real server, and the answer read as
a client reads it: the tests of refused and accepted handshakes both open them so."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
from collections.abc import Iterator


class Answer:
    """What a client reads after its handshake: the status line, headers and body (or, after
    a switch of protocols, the frames read with them)."""

    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines)
        }

    @property
    def problem(self) -> tuple[int, str | None]:
        """The status and the problem code of the body (None without one)."""
        return self.status, json.loads(self.body)["code"] if self.body else None


@contextlib.contextmanager
def handshake_sent(url: str, path: str, *headers: str) -> Iterator[socket.socket]:
    """A connection to the server at `url` that has sent a WebSocket handshake for `path`
    as a browser would, with `headers` (lines `Name: value`) added; the answer is the
    caller's to read."""
    host, port = url.removeprefix("http://").split(":")
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}",
        "Sec-WebSocket-Version: 13",
        *headers,
    ]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        yield sock
