"""An answer given before the request's body was read to its end carries `Connection:
close` where what is left of the body may be large: an HTTP/1.1 server then closes the
connection instead of discarding the rest at full speed (a `Content-Length` of a terabyte,
an endless chunked body). A body read to its end, a body no larger than the app's bound
that a route leaves unread, and a request without a body keep the connection."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
from conftest import make_service
from support import Response, http_scope, serving
from test_app import PASSWORD, mounted
from test_app_body_types import admin_bearer

pytestmark = pytest.mark.anyio

CLOSE = (b"connection", b"close")
JSON = (b"content-type", b"application/json")
CHUNKED = (b"transfer-encoding", b"chunked")
BOUND = 64 * 1024


async def answer(
    app: Any, scope: dict[str, Any], chunks: list[bytes] | None = None, *, endless: bool = False
) -> tuple[Response, int]:
    """The answer of `app` to `scope` whose body is `chunks` (or, `endless`, 1 KiB chunks
    without end), and how many bytes of it the app asked for."""
    pending = list(chunks or [])
    received: list[int] = []
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if endless:
            chunk, more = b"x" * 1024, True
        else:
            chunk, more = (pending.pop(0) if pending else b""), bool(pending)
        received.append(len(chunk))
        if sum(received) > 100 * BOUND:
            raise AssertionError("the body is read on past its bound")
        return {"type": "http.request", "body": chunk, "more_body": more}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app(scope, receive, send)
    start = next(m for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return Response(start["status"], dict(start["headers"]), body), sum(received)


def closes(response: Response) -> bool:
    return response.headers.get(b"connection") == b"close"


async def test_a_length_over_the_bound_is_refused_and_the_connection_closed() -> None:
    scope = http_scope(
        "/auth/register", [JSON, (b"content-length", b"1" + b"0" * 12)], method="POST"
    )
    response, received = await answer(mounted(make_service()), scope, [b"{" * 100])
    assert (response.status, received) == (413, 0)
    assert closes(response)


async def test_an_endless_chunked_body_is_refused_at_the_bound_and_the_connection_closed() -> None:
    scope = http_scope("/auth/login", [JSON, CHUNKED], method="POST")
    response, received = await answer(mounted(make_service()), scope, endless=True)
    assert response.status == 413
    assert BOUND < received <= BOUND + 1024
    assert closes(response)


@pytest.mark.parametrize(
    "headers",
    [
        [(b"content-type", b"text/plain"), CHUNKED],
        [JSON, (b"content-encoding", b"gzip"), CHUNKED],
        # Waiting for `100 Continue`, which is never sent: no body comes to discard.
        [
            (b"content-type", b"text/plain"),
            (b"content-length", b"1000"),
            (b"expect", b"100-continue"),
        ],
    ],
    ids=["chunked text", "chunked gzip", "expecting 100-continue"],
)
async def test_a_415_from_the_headers_closes_the_connection(
    headers: list[tuple[bytes, bytes]],
) -> None:
    scope = http_scope("/auth/register", headers, method="POST")
    response, received = await answer(mounted(make_service()), scope, endless=True)
    assert (response.status, received) == (415, 0)
    assert response.json()["code"] == "unsupported_media_type"
    assert closes(response)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/auth/logout-all", 401),  # no token: refused before anything is read
        ("POST", "/auth/nowhere", 404),
        ("PUT", "/auth/login", 405),
        ("GET", "/auth/.well-known/jwks.json", 200),  # served, its body never read
    ],
)
async def test_any_answer_that_leaves_a_chunked_body_unread_closes(
    method: str, path: str, status: int
) -> None:
    scope = http_scope(path, [JSON, CHUNKED], method=method)
    response, received = await answer(mounted(make_service()), scope, endless=True)
    assert (response.status, received) == (status, 0)
    assert closes(response)


async def test_a_body_read_to_its_end_keeps_the_connection() -> None:
    app = mounted(make_service())
    body = b'{"username": "alice", "password": "' + PASSWORD.encode() + b'"}'
    for framing in ([(b"content-length", str(len(body)).encode())], [CHUNKED]):
        scope = http_scope("/auth/login", [JSON, *framing], method="POST")
        response, received = await answer(app, scope, [body[:10], body[10:]])
        assert (response.status, received) == (401, len(body)), response.body
        assert not closes(response)
    # Read to its end, and refused for what it says.
    scope = http_scope("/auth/login", [JSON, CHUNKED], method="POST")
    response, _ = await answer(app, scope, [b"{", b"}"])
    assert response.status == 422
    assert not closes(response)


async def test_a_small_body_left_unread_and_no_body_keep_the_connection() -> None:
    """What is left is no more than the bound, which the server discards as it would have
    read it: a client that sends `{}` where no body is read keeps its connection."""
    service = make_service()
    app = mounted(service)
    token = await admin_bearer(service)
    scope = http_scope("/auth/logout-all", [token, JSON, (b"content-length", b"2")], method="POST")
    response, received = await answer(app, scope, [b"{}"])
    assert (response.status, received) == (200, 0)
    assert not closes(response)
    scope = http_scope(
        "/auth/register",
        [(b"content-type", b"text/plain"), (b"content-length", str(BOUND).encode())],
        method="POST",
    )
    response, received = await answer(app, scope, [b"x" * BOUND])
    assert (response.status, received) == (415, 0)
    assert not closes(response)
    for headers in ([], [(b"content-length", b"0")]):
        scope = http_scope("/auth/.well-known/jwks.json", headers)
        response, _ = await answer(app, scope)
        assert response.status == 200
        assert not closes(response)


async def test_http_2_gets_no_connection_header() -> None:
    """HTTP/2 has no connection-specific fields (RFC 9113 §8.2.2)."""
    scope = http_scope("/auth/login", [JSON, CHUNKED], method="POST")
    scope["http_version"] = "2"
    response, _ = await answer(mounted(make_service()), scope, endless=True)
    assert response.status == 413
    assert b"connection" not in response.headers


def assert_closed_after_refusal(app: Any, path: str, status: int, http: str = "h11") -> None:
    """Over uvicorn: the headers of a terabyte body to `path` and a little of it get the
    answer `status` with `Connection: close`, and then the end of the connection within
    half a second, not a server reading on."""
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()
        + b"Content-Type: application/json\r\nContent-Length: 1000000000000\r\n\r\n"
        + b"x" * 1000
    )
    with serving(app, http=http) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(request)
            answered = sock.makefile("rb")
            assert answered.readline().startswith(f"HTTP/1.1 {status} ".encode())
            head = dict(
                line.decode().rstrip("\r\n").lower().split(": ", 1)
                for line in iter(answered.readline, b"\r\n")
            )
            answered.read(int(head["content-length"]))
            assert head["connection"] == "close"
            sock.settimeout(0.5)
            started = time.monotonic()
            try:
                rest = answered.read()
            except ConnectionResetError:
                rest = b""
            assert rest == b""
            assert time.monotonic() - started < 0.5


@pytest.mark.parametrize("http", ["h11", "httptools"])
def test_a_server_closes_the_connection_after_a_413(http: str) -> None:
    """Over uvicorn: a terabyte body gets the 413, and then the end of the connection."""
    assert_closed_after_refusal(mounted(make_service()), "/auth/register", 413, http)
