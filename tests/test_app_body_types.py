"""A body of a type the operation does not read is refused (415) from its headers, before a
byte of it is received: a client that waits for `100 Continue` is not asked to send it, and
one that does not wait has sent it for nothing. What the headers cannot tell keeps its
answer: an empty body, a length refused (400, 413) before the type."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from conftest import make_service
from support import Response, at_most_syncs, http_scope, serving
from test_app import PASSWORD, auth_app, mounted

from s3auth_asgi import S3AuthService
from s3auth_asgi.app.operations import Operation

pytestmark = pytest.mark.anyio

ID = "0" * 32
FORM = "application/x-www-form-urlencoded"
BODY = b'{"username": "alice"}'


def with_bodies(service: S3AuthService) -> list[Operation]:
    return [op for op in auth_app(service).operations if op.request is not None]


async def admin_bearer(service: S3AuthService) -> tuple[bytes, bytes]:
    root = await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    token = (await service.create_token_pair(root)).access_token
    return (b"authorization", f"Bearer {token}".encode())


async def unread(app: Any, scope: dict[str, Any], body: bytes) -> tuple[Response, int]:
    """The answer of `app` to `scope` and `body`, and how often the body was asked for."""
    asked: list[int] = []
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        asked.append(1)
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app(scope, receive, send)
    start = next(m for m in messages if m["type"] == "http.response.start")
    sent = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return Response(start["status"], dict(start["headers"]), sent), len(asked)


@pytest.mark.parametrize(
    "framing",
    [
        [(b"content-type", b"text/plain"), (b"content-length", str(len(BODY)).encode())],
        [(b"content-type", b"text/plain"), (b"transfer-encoding", b"chunked")],
        [(b"content-length", str(len(BODY)).encode())],  # no type at all
    ],
    ids=["text", "chunked text", "untyped"],
)
async def test_a_body_no_operation_reads_is_refused_unread(
    framing: list[tuple[bytes, bytes]],
) -> None:
    service = make_service()
    app = mounted(service)
    token = await admin_bearer(service)
    for op in with_bodies(service):
        path = "/auth" + op.path.format(user_id=ID, session_id=ID)
        scope = http_scope(path, [token, *framing], method=op.method)
        service.store.reset_counts()
        response, asked = await unread(app, scope, BODY)
        assert response.status == 415, (op.operation_id, response.body)
        assert response.json()["code"] == "unsupported_media_type"
        assert asked == 0, op.operation_id
        assert at_most_syncs(service.store.requests), op.operation_id


async def test_a_form_is_refused_unread_where_only_json_is_read() -> None:
    service = make_service()
    app = mounted(service)
    token = await admin_bearer(service)
    framing = [(b"content-type", FORM.encode()), (b"content-length", str(len(BODY)).encode())]
    json_only = [op for op in with_bodies(service) if not op.form]
    assert {"register", "update_me", "create_user"} <= {op.operation_id for op in json_only}
    for op in json_only:
        path = "/auth" + op.path.format(user_id=ID, session_id=ID)
        response, asked = await unread(
            app, http_scope(path, [token, *framing], method=op.method), BODY
        )
        assert (response.status, asked) == (415, 0), (op.operation_id, response.body)


@pytest.mark.parametrize(
    ("path", "length", "status", "code"),
    [
        ("/auth/register", "0", 400, "malformed_body"),  # empty: said as before
        ("/auth/logout", "0", 204, None),  # an optional body: none is none, whatever its type
        ("/auth/register", str(64 * 1024 + 1), 413, "body_too_large"),
        ("/auth/register", "12x", 400, "malformed_body"),
    ],
)
async def test_what_the_type_does_not_decide_is_answered_as_before(
    path: str, length: str, status: int, code: str | None
) -> None:
    service = make_service()
    token = await admin_bearer(service)
    headers = [token, (b"content-type", b"text/plain"), (b"content-length", length.encode())]
    response, _ = await unread(mounted(service), http_scope(path, headers, method="POST"), b"")
    assert response.status == status, response.body
    if code is not None:
        assert response.json()["code"] == code


@pytest.mark.parametrize("http", ["h11", "httptools"])
def test_a_server_answers_415_without_asking_for_the_body(http: str) -> None:
    """Over uvicorn: the request's headers only, waiting for `100 Continue`, get the 415."""
    request = (
        b"POST /auth/register HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: text/plain\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n"
    )
    with serving(mounted(make_service()), http=http) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(request)
            answer = sock.makefile("rb")
            assert answer.readline() == b"HTTP/1.1 415 Unsupported Media Type\r\n"
            head = dict(
                line.decode().rstrip("\r\n").lower().split(": ", 1)
                for line in iter(answer.readline, b"\r\n")
            )
            body = answer.read(int(head["content-length"]))
    assert head["content-type"] == "application/problem+json"
    assert b'"code":"unsupported_media_type"' in body
    # Its body, never asked for, is not awaited: the connection ends with the answer.
    assert head["connection"] == "close"
