"""The middleware and the guide's helper in Starlette, FastAPI, Litestar and Quart."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi import HTTPException as FastAPIHTTPException
from fastapi import Request as FastAPIRequest
from litestar import Litestar, asgi, get, post
from litestar import Request as LitestarRequest
from litestar.exceptions import HTTPException as LitestarHTTPException
from litestar.middleware import DefineMiddleware
from quart import Quart, jsonify, request
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from support import asgi_client, by_framework, framework_fixture  # noqa: F401 (a fixture)

from s3auth_asgi.middleware.ratelimit import RateLimitMiddleware
from s3auth_asgi.ratelimit import RateLimit, RateLimiter, RateLimitRule
from s3auth_asgi.types import Receive, Scope, Send

pytestmark = pytest.mark.anyio


def make_limiter() -> RateLimiter:
    return RateLimiter(
        limits={
            "login": RateLimit(max_requests=2, window_seconds=60),
            "api": RateLimit(max_requests=3, window_seconds=60),
        },
        trusted_proxies=["10.0.0.1"],
        trust_x_forwarded_for=True,
    )


RULES = [RateLimitRule("/api/*", "api")]


def starlette_app(limiter: RateLimiter) -> Any:
    async def login(request: Request) -> JSONResponse:
        is_limited, info = await limiter.is_rate_limited(request, "login")
        if is_limited:
            raise HTTPException(
                429, "Too many requests", headers=limiter.get_rate_limit_headers(info)
            )
        return JSONResponse({"ok": True, "client": info.key})

    async def items(request: Request) -> JSONResponse:
        return JSONResponse([1, 2])

    app = Starlette(
        routes=[Route("/auth/login", login, methods=["POST"]), Route("/api/items", items)]
    )
    app.add_middleware(RateLimitMiddleware, limiter=limiter, rules=RULES)
    return app


def fastapi_app(limiter: RateLimiter) -> Any:
    app = FastAPI()

    @app.post("/auth/login")
    async def login(request: FastAPIRequest) -> dict[str, Any]:
        is_limited, info = await limiter.is_rate_limited(request, "login")
        if is_limited:
            raise FastAPIHTTPException(
                429, "Too many requests", headers=limiter.get_rate_limit_headers(info)
            )
        return {"ok": True, "client": info.key}

    @app.get("/api/items")
    async def items() -> list[int]:
        return [1, 2]

    app.add_middleware(RateLimitMiddleware, limiter=limiter, rules=RULES)
    return app


def litestar_app(limiter: RateLimiter) -> Any:
    @post("/auth/login", status_code=200)
    async def login(request: LitestarRequest[Any, Any, Any]) -> dict[str, Any]:
        is_limited, info = await limiter.is_rate_limited(request, "login")
        if is_limited:
            raise LitestarHTTPException(
                status_code=429,
                detail="Too many requests",
                headers=limiter.get_rate_limit_headers(info),
            )
        return {"ok": True, "client": info.key}

    @get("/api/items")
    async def items() -> list[int]:
        return [1, 2]

    return Litestar(
        route_handlers=[login, items],
        middleware=[DefineMiddleware(RateLimitMiddleware, limiter=limiter, rules=RULES)],
    )


def quart_app(limiter: RateLimiter) -> Any:
    app = Quart(__name__)

    @app.post("/auth/login")
    async def login() -> Any:
        # Quart's `request` is a proxy; the limiter reads its `.scope`.
        is_limited, info = await limiter.is_rate_limited(request, "login")
        if is_limited:
            return "Too many requests", 429, limiter.get_rate_limit_headers(info)
        return jsonify({"ok": True, "client": info.key})

    @app.get("/api/items")
    async def items() -> Any:
        return jsonify([1, 2])

    app.asgi_app = RateLimitMiddleware(app.asgi_app, limiter, rules=RULES)  # type: ignore[method-assign]
    return app


FRAMEWORKS = by_framework(starlette_app, fastapi_app, litestar_app, quart_app)


async def test_middleware_returns_429_with_headers(framework: str) -> None:
    app = FRAMEWORKS[framework](make_limiter())
    async with asgi_client(app, "203.0.113.5") as client:
        responses = [await client.get("/api/items") for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert responses[0].json() == [1, 2]
    assert responses[0].headers["ratelimit"] == '"api";r=2;t=20'
    refused = responses[3]
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["ratelimit-policy"] == '"api";q=3;w=60'
    assert refused.headers["ratelimit"] == '"api";r=0;t=20'
    assert refused.headers["retry-after"] == "20"
    assert refused.json()["code"] == "rate_limited"


async def test_helper_inside_an_endpoint(framework: str) -> None:
    app = FRAMEWORKS[framework](make_limiter())
    forwarded = {"x-forwarded-for": "198.51.100.23"}
    async with asgi_client(app, "10.0.0.1") as client:
        responses = [await client.post("/auth/login", headers=forwarded) for _ in range(3)]
        other = await client.post("/auth/login", headers={"x-forwarded-for": "198.51.100.24"})
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert responses[0].json() == {"ok": True, "client": "ip:198.51.100.23"}
    refused = responses[2]
    assert refused.headers["ratelimit-policy"] == '"login";q=2;w=60'
    assert refused.headers["ratelimit"] == '"login";r=0;t=30'
    assert refused.headers["retry-after"] == "30"
    assert other.status_code == 200


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_websocket_handshakes_are_refused_in_starlette() -> None:
    from starlette.routing import WebSocketRoute
    from starlette.testclient import TestClient, WebSocketDenialResponse
    from starlette.websockets import WebSocket

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    limiter = make_limiter()
    app = Starlette(routes=[WebSocketRoute("/api/ws", echo)])
    app.add_middleware(RateLimitMiddleware, limiter=limiter, rules=RULES)
    with TestClient(app) as client:
        for _ in range(3):
            with client.websocket_connect("/api/ws") as websocket:
                assert websocket.receive_text() == "hello"
        # Starlette's test client offers the websocket.http.response extension: a real 429.
        with pytest.raises(WebSocketDenialResponse) as refused, client.websocket_connect("/api/ws"):
            pass
    assert refused.value.status_code == 429
    assert refused.value.headers["retry-after"] == "20"
    assert refused.value.json()["code"] == "rate_limited"


# Mounts ----------------------------------------------------------------------------------


async def path_below(scope: Scope, receive: Receive, send: Send) -> None:
    """A mounted ASGI app answering with the path it was handed."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": scope["path"].encode()})


async def test_a_rule_names_a_path_under_a_hosts_litestar_mount_as_requested() -> None:
    # Litestar routes into a mount by rewriting `path` to what lies below it, and runs the
    # app's middleware list after that, recording the mount nowhere but in `raw_path`,
    # which it leaves as the server received it.
    @asgi("/reports", is_mount=True, copy_scope=True)
    async def reports(scope: Scope, receive: Receive, send: Send) -> None:
        await path_below(scope, receive, send)

    rules = [RateLimitRule("/reports/weekly summary", "login"), RateLimitRule("/reports/*", "api")]
    app = Litestar(
        route_handlers=[reports],
        middleware=[DefineMiddleware(RateLimitMiddleware, limiter=make_limiter(), rules=rules)],
    )
    async with asgi_client(app) as client:
        daily = [await client.get("/reports/daily") for _ in range(4)]
        weekly = await client.get("/reports/weekly%20summary")
    assert daily[0].text == "/daily/"  # what the mount, and the middleware, are handed
    assert [r.status_code for r in daily] == [200, 200, 200, 429]
    assert daily[0].headers["ratelimit"] == '"api";r=2;t=20'
    # The exact rule too, on the decoded path; the prefix rule refuses, its budget spent.
    assert weekly.status_code == 429
    assert weekly.headers["ratelimit-policy"] == '"login";q=2;w=60, "api";q=3;w=60'


async def test_rules_in_and_around_a_starlette_mount() -> None:
    # Starlette's middleware around the app runs before routing, on the path as sent; an
    # app inside a Mount gets the whole path with `root_path` ending at the mount, and its
    # own rules name its paths below it, as every mounted ASGI app's do.
    limiter = make_limiter()
    inner = RateLimitMiddleware(path_below, limiter, [RateLimitRule("/daily", "login")])
    app = Starlette(routes=[Mount("/reports", app=inner)])
    app.add_middleware(RateLimitMiddleware, limiter=limiter, rules=RULES_AROUND_MOUNT)
    async with asgi_client(app) as client:
        daily = [await client.get("/reports/daily") for _ in range(3)]
    assert daily[0].text == "/reports/daily"
    assert [r.status_code for r in daily] == [200, 200, 429]
    # Both counted each request: the app's answer carries the fields of both.
    assert [r.headers.get_list("ratelimit") for r in daily] == [
        ['"login";r=1;t=30', '"api";r=2;t=20'],
        ['"login";r=0;t=30', '"api";r=1;t=20'],
        ['"login";r=0;t=30', '"api";r=0;t=20'],
    ]
    assert (await limiter.is_rate_limited(client_scope(), "api"))[0]


RULES_AROUND_MOUNT = [RateLimitRule("/reports/*", "api")]


def client_scope() -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [],
        "client": ("203.0.113.5", 1),
    }
