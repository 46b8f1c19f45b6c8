"""A middleware's refusal of a request that declared a body carries `Connection: close`:
the middlewares answer before the host's app reads anything, and an HTTP/1.1 server that
keeps the connection discards the rest of the body as fast as the client sends it (a
`Content-Length` of a terabyte, an endless chunked body); a small declared body closes it
too, the middlewares knowing no bound of the host's. A refused request without a body, an
admitted one and HTTP/2 get no such field."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from conftest import make_service
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from support import RecordingApp, bearer, http_scope, login, ok_app
from test_app_unread_bodies import answer, assert_closed_after_refusal, closes

from s3auth_asgi import S3AuthError, S3AuthService, auth_error_response
from s3auth_asgi.app.fastapi import CurrentUser, include_auth
from s3auth_asgi.errors import AuthenticationRequiredError
from s3auth_asgi.middleware.bearer import BearerTokenMiddleware
from s3auth_asgi.middleware.blacklist import BlacklistMiddleware
from s3auth_asgi.middleware.ratelimit import RateLimitMiddleware
from s3auth_asgi.middleware.requires import requires
from s3auth_asgi.problems import render, send_problem
from s3auth_asgi.ratelimit import RateLimit, RateLimiter, RateLimitRule

pytestmark = pytest.mark.anyio

Headers = list[tuple[bytes, bytes]]
CHUNKED = (b"transfer-encoding", b"chunked")
TERABYTE = (b"content-length", b"1" + b"0" * 12)
SMALL = (b"content-length", b"2")


async def bearer_refusing(service: S3AuthService, app: Any) -> tuple[Any, Headers, Headers]:
    """BearerTokenMiddleware, the headers of a refused caller (403: no `admin` scope) and of
    an admitted one. A caller without a token gets its 401 (`test_every_refusal_...`)."""
    _, plain = await login(service, "plain")
    _, admin = await login(service, "root", scopes=["admin"])
    middleware = BearerTokenMiddleware(app, service, protected={"/api/*": ["admin"]})
    return middleware, bearer(plain.access_token), bearer(admin.access_token)


async def blacklist_refusing(service: S3AuthService, app: Any) -> tuple[Any, Headers, Headers]:
    _, revoked = await login(service, "gone")
    _, kept = await login(service, "kept")
    await service.revoke_refresh_token(revoked.refresh_token)
    middleware = BearerTokenMiddleware(BlacklistMiddleware(app, service), service)
    return middleware, bearer(revoked.access_token), bearer(kept.access_token)


async def rate_limit_refusing(_: S3AuthService, app: Any) -> tuple[Any, Headers, Headers]:
    """The limit admits one request a minute from each client: the client of a request
    marked `x-spent` has had its one, every other request comes from a new client."""
    limiter = RateLimiter(limits={"api": RateLimit(1, 60)})
    middleware = RateLimitMiddleware(app, limiter, rules=[RateLimitRule("/api/*", "api")])
    spent = http_scope("/api/items", [(b"x-spent", b"1")])
    spent["client"] = ("192.0.2.9", 50000)
    assert (await answer(middleware, spent))[0].status == 200

    fresh = iter(range(1, 150))

    async def by_client(scope: dict[str, Any], receive: Any, send: Any) -> None:
        refused = any(name == b"x-spent" for name, _ in scope["headers"])
        scope["client"] = (f"192.0.2.{9 if refused else 100 + next(fresh)}", 50000)
        await middleware(scope, receive, send)

    return by_client, [(b"x-spent", b"1")], []


async def requires_refusing(service: S3AuthService, app: Any) -> tuple[Any, Headers, Headers]:
    """`requires("admin")` on a Starlette route, answered by the documented handler; the
    middleware in front protects nothing, so the refusal is the guard's. `app` only says
    whether the route reads the body (RecordingApp) or not (ok_app)."""

    async def refused(_: Request, error: Exception) -> Response:
        assert isinstance(error, S3AuthError)
        status, headers, body = auth_error_response(error)
        return Response(body, status_code=status, headers=headers)

    @requires("admin")
    async def items(request: Request) -> Response:
        if app is not ok_app:  # the host reads the body, or leaves it unread
            await request.body()
        return PlainTextResponse("ok")

    host = Starlette(
        routes=[Route("/api/items", items, methods=["GET", "POST"])],
        exception_handlers={S3AuthError: refused},
    )
    _, plain = await login(service, "plain")
    _, admin = await login(service, "root", scopes=["admin"])
    middleware = BearerTokenMiddleware(host, service, protected=[])
    return middleware, bearer(plain.access_token), bearer(admin.access_token)


Refuser = Callable[[S3AuthService, Any], Awaitable[tuple[Any, Headers, Headers]]]
REFUSERS: dict[str, Refuser] = {
    "bearer": bearer_refusing,
    "blacklist": blacklist_refusing,
    "ratelimit": rate_limit_refusing,
    "requires": requires_refusing,
}
STATUS = {"bearer": 403, "blacklist": 401, "ratelimit": 429, "requires": 403}


@pytest.mark.parametrize("name", REFUSERS)
@pytest.mark.parametrize(
    "framing",
    [[CHUNKED], [TERABYTE], [SMALL], [(b"content-type", b"text/plain"), CHUNKED]],
    ids=["chunked", "terabyte", "small", "chunked text"],
)
async def test_a_refusal_of_a_request_with_a_body_closes_the_connection(
    name: str, framing: Headers
) -> None:
    app, refused, _ = await REFUSERS[name](make_service(), ok_app)
    scope = http_scope("/api/items", [*refused, *framing], method="POST")
    response, received = await answer(app, scope, endless=True)
    assert (response.status, received) == (STATUS[name], 0), response.body
    assert response.headers[b"content-type"] == b"application/problem+json"
    assert closes(response)


@pytest.mark.parametrize("name", REFUSERS)
async def test_a_refusal_without_a_body_keeps_the_connection(name: str) -> None:
    app, refused, _ = await REFUSERS[name](make_service(), ok_app)
    for framing in ([], [(b"content-length", b"0")]):
        response, _ = await answer(app, http_scope("/api/items", [*refused, *framing]))
        assert response.status == STATUS[name]
        assert b"connection" not in response.headers


@pytest.mark.parametrize("name", REFUSERS)
async def test_an_admitted_request_never_gets_the_field(name: str) -> None:
    # Neither when the host reads the body to its end, nor when it answers without reading
    # it: what the host's answer says of the connection is the host's to say.
    for app in (RecordingApp(), ok_app):
        middleware, _, admitted = await REFUSERS[name](make_service(), app)
        for framing in ([CHUNKED], [(b"content-length", b"2")]):
            scope = http_scope("/api/items", [*admitted, *framing], method="POST")
            response, _ = await answer(middleware, scope, [b"{", b"}"])
            assert response.status == 200, (name, response.body)
            assert b"connection" not in response.headers


async def test_a_caller_without_a_token_is_refused_with_a_close_too() -> None:
    """The missing token's answer is rendered once, for every request: the field is added
    where it is sent, by the request's own headers."""
    app = BearerTokenMiddleware(ok_app, make_service())
    refused, _ = await answer(app, http_scope("/api/items", [CHUNKED], method="POST"), endless=True)
    assert refused.status == 401
    assert closes(refused)
    kept, _ = await answer(app, http_scope("/api/items"))
    assert kept.status == 401
    assert b"connection" not in kept.headers


async def test_a_fastapi_dependency_refuses_with_a_close_too() -> None:
    """`CurrentUser` on a route that takes no body: FastAPI runs it before anything reads
    the body, and its refusal goes out through the handler `include_auth` registers."""
    service = make_service()
    api = FastAPI()
    include_auth(api, service)

    @api.post("/api/items")
    async def items(user: CurrentUser) -> dict[str, str]:
        return {"id": user.id}

    _, pair = await login(service)
    with_body, received = await answer(
        api, http_scope("/api/items", [CHUNKED], method="POST"), endless=True
    )
    assert (with_body.status, received) == (401, 0)
    assert closes(with_body)
    without, _ = await answer(api, http_scope("/api/items", method="POST"))
    assert without.status == 401
    assert b"connection" not in without.headers
    admitted, _ = await answer(
        api, http_scope("/api/items", [*bearer(pair.access_token), CHUNKED], method="POST"), [b"{}"]
    )
    assert admitted.status == 200
    assert b"connection" not in admitted.headers


@pytest.mark.parametrize("name", REFUSERS)
async def test_http_2_gets_no_connection_header(name: str) -> None:
    """HTTP/2 has no connection-specific fields (RFC 9113 §8.2.2)."""
    app, refused, _ = await REFUSERS[name](make_service(), ok_app)
    scope = http_scope("/api/items", [*refused, CHUNKED], method="POST")
    scope["http_version"] = "2"
    response, _ = await answer(app, scope, endless=True)
    assert response.status == STATUS[name]
    assert b"connection" not in response.headers


async def test_an_answer_that_says_something_of_the_connection_already_is_left_alone() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    error = AuthenticationRequiredError(headers=[("Connection", "keep-alive")])
    await send_problem(send, render(error), close=True)
    fields = [value for name, value in sent[0]["headers"] if name.lower() == b"connection"]
    assert fields == [b"keep-alive"]


def test_a_server_closes_the_connection_after_a_refusal() -> None:
    """Over uvicorn: a terabyte body with no token gets the 401, and then the end of the
    connection, not a server reading on."""
    assert_closed_after_refusal(BearerTokenMiddleware(ok_app, make_service()), "/api/items", 401)
