"""CORS preflights through the middlewares, on real FastAPI and Litestar apps with their own
CORS layers.

A browser sends a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`,
per the Fetch standard) before a cross-origin request that carries `Authorization`, and
sends it without credentials: BearerTokenMiddleware lets it through anonymously, so that
the CORS layer inside can answer it. Any other `OPTIONS` request needs what every request
needs.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import make_service
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from litestar import Litestar, Request, Router, get
from litestar.config.cors import CORSConfig
from litestar.middleware import DefineMiddleware
from support import RecordingApp, asgi_client, call_http, http_scope, login

from s3auth_asgi import BearerTokenMiddleware, BlacklistMiddleware, S3AuthService
from s3auth_asgi.app.fastapi import CurrentUser, include_auth
from s3auth_asgi.app.litestar import S3AuthPlugin, requires_scopes

pytestmark = pytest.mark.anyio

ORIGIN = "https://spa.example"
PREFLIGHT = {
    "Origin": ORIGIN,
    "Access-Control-Request-Method": "GET",
    "Access-Control-Request-Headers": "authorization",
}
NOT_PREFLIGHTS = (
    {},  # a plain OPTIONS request
    {"Origin": ORIGIN},
    {"Access-Control-Request-Method": "GET"},
)


def fastapi_app(service: S3AuthService, *, cors_outermost: bool, **options: Any) -> FastAPI:
    app = FastAPI()
    include_auth(app, service, rate_limit=False)

    @app.get("/reports")
    async def reports(user: CurrentUser) -> dict[str, str]:
        return {"for": user.username}

    # add_middleware wraps what is there: the last one added is the outermost.
    cors = {"allow_origins": [ORIGIN], "allow_headers": ["authorization"]}
    if not cors_outermost:
        app.add_middleware(CORSMiddleware, **cors)
    app.add_middleware(BlacklistMiddleware, blacklist=service)
    app.add_middleware(
        BearerTokenMiddleware, tokens=service, exclude=("/auth", "/auth/*"), **options
    )
    if cors_outermost:
        app.add_middleware(CORSMiddleware, **cors)
    return app


@get("/reports", guards=[requires_scopes()])
async def litestar_reports(request: Request[Any, Any, Any]) -> dict[str, str]:
    return {"for": request.user.username}


LITESTAR_CORS = CORSConfig(allow_origins=[ORIGIN], allow_headers=["authorization"])


def litestar_wrapped(service: S3AuthService, **options: Any) -> Any:
    """The app wrapped in the middlewares: Litestar's CORS layer is inside them."""
    app = Litestar(
        [litestar_reports],
        plugins=[S3AuthPlugin(service, rate_limit=False)],
        cors_config=LITESTAR_CORS,
    )
    exclude = ("/auth", "/auth/*", "/schema", "/schema/*")
    return BearerTokenMiddleware(
        BlacklistMiddleware(app, service), service, exclude=exclude, **options
    )


def litestar_router(service: S3AuthService) -> Any:
    """The middlewares on a Router: Litestar's CORS layer is outside them."""
    middleware = [
        DefineMiddleware(BearerTokenMiddleware, tokens=service),
        DefineMiddleware(BlacklistMiddleware, blacklist=service),
    ]
    api = Router(path="/", route_handlers=[litestar_reports], middleware=middleware)
    return Litestar(
        [api], plugins=[S3AuthPlugin(service, rate_limit=False)], cors_config=LITESTAR_CORS
    )


APPS = {
    "fastapi, CORS inside": lambda service: fastapi_app(service, cors_outermost=False),
    "fastapi, CORS outermost": lambda service: fastapi_app(service, cors_outermost=True),
    "litestar, app wrapped": litestar_wrapped,
    "litestar, middlewares on a router": litestar_router,
}


@pytest.mark.parametrize("placement", APPS)
async def test_a_preflight_is_answered_by_the_cors_layer(placement: str) -> None:
    service = make_service()
    _, pair = await login(service)
    token = {"Authorization": f"Bearer {pair.access_token}"}
    async with asgi_client(APPS[placement](service)) as http:
        preflight = await http.options("/reports", headers=PREFLIGHT)
        assert preflight.status_code in (200, 204), preflight.text
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        # A CORS layer outside the middlewares decides for itself what it answers: Litestar's
        # takes an OPTIONS request with an Origin alone for a preflight.
        outside = placement == "litestar, middlewares on a router"
        for headers in NOT_PREFLIGHTS[:1] if outside else NOT_PREFLIGHTS:
            refused = await http.options("/reports", headers=headers)
            assert refused.status_code == 401, headers
            assert refused.json()["code"] == "authentication_required"
        answered = await http.get("/reports", headers={"Origin": ORIGIN, **token})
        assert answered.json() == {"for": "alice"}
        assert answered.headers["access-control-allow-origin"] == ORIGIN


@pytest.mark.parametrize(
    "placement", ["fastapi, CORS outermost", "litestar, middlewares on a router"]
)
async def test_outside_the_middlewares_cors_lets_the_page_read_their_refusals(
    placement: str,
) -> None:
    async with asgi_client(APPS[placement](make_service())) as http:
        refused = await http.get("/reports", headers={"Origin": ORIGIN})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == ORIGIN


async def test_inside_the_middlewares_cors_cannot_mark_their_refusals() -> None:
    # What the pages warn of: the page sees a network error in place of the 401.
    async with asgi_client(fastapi_app(make_service(), cors_outermost=False)) as http:
        refused = await http.get("/reports", headers={"Origin": ORIGIN})
    assert refused.status_code == 401
    assert "access-control-allow-origin" not in refused.headers


@pytest.mark.parametrize(
    "app",
    [
        lambda service: fastapi_app(service, cors_outermost=False, anonymous_preflight=False),
        lambda service: litestar_wrapped(service, anonymous_preflight=False),
    ],
    ids=["fastapi", "litestar"],
)
async def test_anonymous_preflight_false_asks_a_preflight_for_a_token(app: Any) -> None:
    async with asgi_client(app(make_service())) as http:
        refused = await http.options("/reports", headers=PREFLIGHT)
    assert refused.status_code == 401
    assert refused.json()["code"] == "authentication_required"


async def test_the_app_sees_the_preflight_anonymous_and_its_method_in_any_case() -> None:
    # uvicorn's h11 server passes a method on as sent.
    service = make_service()
    app = RecordingApp()
    guarded = BearerTokenMiddleware(BlacklistMiddleware(app, service), service)
    headers = [(b"origin", ORIGIN.encode()), (b"access-control-request-method", b"PUT")]
    for method in ("OPTIONS", "options"):
        answered = await call_http(guarded, http_scope("/reports", headers, method=method))
        assert answered.status == 200
    assert [scope["user"].is_authenticated for scope in app.scopes] == [False, False]
    for method, sent in (("GET", headers), ("OPTIONS", headers[:1]), ("OPTIONS", headers[1:])):
        refused = await call_http(guarded, http_scope("/reports", sent, method=method))
        assert refused.status == 401, (method, sent)
    assert len(app.scopes) == 2
