"""Tiny ASGI responses shared by the middlewares: RFC 9457 problem documents.

No framework: a problem is sent as raw ASGI messages, and a WebSocket is closed with 1008
before it is accepted.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from ..errors import S3AuthError
from ..types import Send

PROBLEM_CONTENT_TYPE = "application/problem+json"


class Problem(msgspec.Struct, omit_defaults=True):
    """An RFC 9457 problem document with the stable `code` of this package."""

    title: str
    status: int
    code: str
    detail: str | None = None
    type: str = "about:blank"


_encoder = msgspec.json.Encoder()


def problem_body(status: int, code: str, title: str, detail: str | None = None) -> bytes:
    return _encoder.encode(Problem(title=title, status=status, code=code, detail=detail))


def problem_for(error: S3AuthError) -> tuple[int, bytes]:
    """The status and body for an error of this package."""
    detail = error.detail if error.detail != error.title else None
    return error.status, problem_body(error.status, error.code, error.title, detail)


async def send_problem(
    send: Send,
    status: int,
    body: bytes,
    headers: Iterable[tuple[bytes, bytes]] = (),
    *,
    prefix: str = "http",
) -> None:
    """Send a problem response; `prefix="websocket.http"` denies a WebSocket handshake
    with a real HTTP response (the ASGI `websocket.http.response` extension)."""
    raw_headers = [
        (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *headers,
    ]
    await send({"type": f"{prefix}.response.start", "status": status, "headers": raw_headers})
    await send({"type": f"{prefix}.response.body", "body": body})


async def close_websocket(send: Send, reason: str = "") -> None:
    """Refuse a WebSocket before accept: close code 1008 (policy violation)."""
    await send({"type": "websocket.close", "code": 1008, "reason": reason[:120]})
