"""The caller of one request reaches no other request on the same connection, on a real
server. uvicorn starts a pipelined request from inside the `send` that completes the one
before, and with asyncio's event loop resumes reading a connection, after a body larger
than it buffers, from inside `receive`: each copies the context it is called in, so what
the app's `receive` and `send` see, the next request on the connection sees too, a route
outside BearerTokenMiddleware included (through a proxy that reuses its connections to the
app, another client's request)."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from support import login, make_clocked_service, serving

from s3auth_asgi import BearerTokenMiddleware, BlacklistMiddleware, current_user, requires
from s3auth_asgi.app.fastapi import CurrentUser, include_auth
from s3auth_asgi.types import ASGIApp, Receive, Scope, Send

pytestmark = pytest.mark.anyio


async def upload(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse({"user": current_user().display_name, "bytes": len(body)})


async def public(request: Request) -> JSONResponse:
    """A route outside the middleware: no caller, and `requires` says it has no connection."""
    try:
        requires().check()
    except RuntimeError:
        allowed = False
    else:
        allowed = True
    return JSONResponse({"user": current_user().display_name, "requires": allowed})


each_way = pytest.mark.parametrize(
    ("pipelined", "size", "loop"),
    [(True, 3, "auto"), (False, 300_000, "asyncio")],
    ids=["pipelined", "after a large body"],
)


def upload_then_public(path: str, token: str, size: int) -> tuple[bytes, bytes]:
    """An upload of `size` bytes to `path` with `token`, then a GET of /public without one."""
    first = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode() + b"x" * size
    return first, b"GET /public HTTP/1.1\r\nHost: x\r\n\r\n"


def exchange(url: str, first: bytes, second: bytes, *, pipelined: bool) -> list[bytes]:
    """The bodies of the answers to two requests sent on one connection: the second in
    the same write as the first, or once the first is answered."""
    host, port = url.removeprefix("http://").split(":")
    bodies: list[bytes] = []
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(first + second if pipelined else first)
        buffered = b""
        for request in (first, second):
            if request is second and not pipelined:
                sock.sendall(second)
            while b"\r\n\r\n" not in buffered:
                buffered += sock.recv(65536)
            head, _, buffered = buffered.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            while len(buffered) < length:
                buffered += sock.recv(65536)
            bodies.append(buffered[:length])
            buffered = buffered[length:]
    return bodies


@each_way
async def test_the_next_request_on_a_connection_has_no_caller(
    pipelined: bool, size: int, loop: str
) -> None:
    service = make_clocked_service()
    _, pair = await login(service)
    api = Starlette(routes=[Route("/upload", upload, methods=["POST"])])
    app = Starlette(
        routes=[
            Mount("/api", BearerTokenMiddleware(BlacklistMiddleware(api, service), service)),
            Route("/public", public),
        ]
    )
    first, second = upload_then_public("/api/upload", pair.access_token, size)
    with serving(app, loop=loop, log_config=None) as url:
        answers: list[Any] = exchange(url, first, second, pipelined=pipelined)
    assert answers[0] == b'{"user":"alice","bytes":%d}' % size
    assert answers[1] == b'{"user":"","requires":false}'


@each_way
async def test_a_fastapi_host_without_the_middleware_passes_no_caller_on_either(
    pipelined: bool, size: int, loop: str
) -> None:
    # include_auth makes each connection the current one around the host's routes, as the
    # middleware does around its app: the next request meets no caller before its own is
    # verified, in a middleware outside that layer as anywhere.
    service = make_clocked_service()
    _, pair = await login(service)
    seen: list[str] = []
    app = FastAPI()
    include_auth(app, service, rate_limit=False)

    @app.post("/upload")
    async def upload(user: CurrentUser, request: Request) -> dict[str, Any]:
        return {"user": user.username, "bytes": len(await request.body())}

    @app.get("/public")
    async def public() -> dict[str, str]:
        return {"user": current_user().display_name}

    class Outer:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                seen.append(current_user().display_name)
            await self.app(scope, receive, send)

    app.add_middleware(Outer)
    first, second = upload_then_public("/upload", pair.access_token, size)
    with serving(app, loop=loop, log_config=None) as url:
        answers: list[Any] = exchange(url, first, second, pipelined=pipelined)
    assert answers == [b'{"user":"alice","bytes":%d}' % size, b'{"user":""}']
    assert seen == ["", ""]
