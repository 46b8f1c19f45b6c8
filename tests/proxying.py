"""What the test proxies in front of a store server share: passing a request on upstream,
and handing an answer back. No tests here."""

from __future__ import annotations

import http.client
from http.server import BaseHTTPRequestHandler

# Headers of one connection, or of the body as it was framed there: the answer handed back
# is framed anew.
_HOP_BY_HOP = ("connection", "transfer-encoding", "content-length")


def body_of(handler: BaseHTTPRequestHandler) -> bytes | None:
    """The request's body, read whole (None when it has none)."""
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else None


def ask_upstream(
    handler: BaseHTTPRequestHandler, upstream: tuple[str, int], body: bytes | None
) -> tuple[int, list[tuple[str, str]], bytes]:
    """The request `handler` holds, made again on `upstream`: its status, headers, body."""
    headers = {k: v for k, v in handler.headers.items() if k.lower() != "connection"}
    connection = http.client.HTTPConnection(*upstream, timeout=30)
    try:
        connection.request(handler.command, handler.path, body=body, headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.getheaders(), answer.read()
    finally:
        connection.close()


def hand_back(
    handler: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], data: bytes
) -> None:
    """Answer `handler`'s client with what upstream answered."""
    handler.send_response(status)
    for name, value in headers:
        if name.lower() not in _HOP_BY_HOP:
            handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(data)
