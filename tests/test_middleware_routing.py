"""A path is protected and counted in every form a framework routes it as, through real
FastAPI, Quart, Litestar and Starlette apps, with the scopes servers really send:

- behind a proxy that strips a prefix, hypercorn's `--root-path` (like FastAPI's own
  `root_path` setting) puts `root_path` in the scope while `path` lacks it; FastAPI then
  routes the path as it is;
- hypercorn and uvicorn's h11 pass an absolute-form target (`GET http://x/admin`) on as
  the path, and Quart routes it by its URL path;
- uvicorn's h11 passes a method on as sent (`post`), and Quart upper-cases it;
- Litestar strips trailing slashes and merges doubled ones before routing, but leaves
  dot segments as they are, for a path parameter to take;
- Starlette and Quart answer HEAD with the GET handler.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from litestar import Litestar, get, post
from litestar import Request as LitestarRequest
from quart import Quart
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from support import (
    Response,
    bearer,
    call_http,
    http_scope,
    login,
    make_clocked_service,
    ok_app,
)

from s3auth_asgi import BearerTokenMiddleware, BlacklistMiddleware, S3AuthService
from s3auth_asgi.middleware.ratelimit import RateLimitMiddleware
from s3auth_asgi.ratelimit import RateLimit, RateLimiter, RateLimitRule

pytestmark = pytest.mark.anyio
ADMIN_ONLY = {"/*": [], "/admin*": ["admin"]}


def guarded(app: Any, service: S3AuthService, **options: Any) -> Any:
    return BearerTokenMiddleware(BlacklistMiddleware(app, service), service, **options)


def limited(app: Any, rule: RateLimitRule, per_minute: int = 2) -> RateLimitMiddleware:
    limiter = RateLimiter(limits={rule.limit: RateLimit(per_minute, 60)})
    return RateLimitMiddleware(app, limiter=limiter, rules=[rule])


async def send(app: Any, path: str, headers: Any = (), **scope: Any) -> Response:
    return await call_http(app, http_scope(path, headers, **scope))


async def tokens(service: S3AuthService) -> tuple[Any, Any]:
    """A token without the admin scope, and one with it."""
    _, plain = await login(service, "plain")
    _, admin = await login(service, "root", scopes=["admin"])
    return bearer(plain.access_token), bearer(admin.access_token)


async def test_fastapi_behind_a_prefix_stripping_proxy() -> None:
    service = make_clocked_service()
    plain, admin = await tokens(service)
    api = FastAPI()

    @api.get("/admin")
    async def admin_page() -> dict[str, str]:
        return {"reached": "admin"}

    @api.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    app = guarded(api, service, protected=ADMIN_ONLY, exclude=("/health",))
    # FastAPI routes `/admin` whatever root_path says: so do the scopes.
    assert (await send(app, "/admin", plain, root_path="/v1")).status == 403
    assert (await send(app, "/admin", admin, root_path="/v1")).status == 200
    assert (await send(app, "/health", root_path="/v1")).status == 200
    counted = limited(api, RateLimitRule("/*", "api"))
    statuses = [(await send(counted, "/admin", root_path="/v1")).status for _ in range(3)]
    assert statuses == [200, 200, 429]


async def test_quart_and_an_absolute_form_target() -> None:
    service = make_clocked_service()
    plain, admin = await tokens(service)
    quart = Quart(__name__)

    @quart.route("/admin/users")
    async def admin_users() -> dict[str, str]:
        return {"reached": "admin"}

    @quart.route("/api/items")
    async def items() -> dict[str, list[str]]:
        return {"items": []}

    app = guarded(quart.asgi_app, service, protected=ADMIN_ONLY)
    assert (await send(app, "http://x/admin/users", plain)).status == 403
    assert (await send(app, "http://x/admin/users", admin)).status == 200
    counted = limited(quart.asgi_app, RateLimitRule("/api/*", "api"))
    statuses = [(await send(counted, "http://x/api/items")).status for _ in range(3)]
    assert statuses == [200, 200, 429]


async def test_an_absolute_form_target_that_does_not_parse() -> None:
    # An unclosed `[` in the host: a URL parser raises on it; the middlewares answer.
    service = make_clocked_service()
    plain, _ = await tokens(service)
    app = guarded(ok_app, service, protected=ADMIN_ONLY)
    refused = await send(app, "http://[x/admin")
    assert (refused.status, refused.json()["code"]) == (401, "authentication_required")
    assert (await send(app, "http://[x/admin", plain)).status == 200
    counted = limited(ok_app, RateLimitRule("/*", "all"))
    statuses = [(await send(counted, "http://[x/admin")).status for _ in range(3)]
    assert statuses == [200, 200, 429]


async def test_quart_and_a_method_sent_in_lower_case() -> None:
    service = make_clocked_service()
    quart = Quart(__name__)

    @quart.route("/admin/users", methods=["GET", "POST"])
    async def admin_users() -> dict[str, str]:
        return {"reached": "admin"}

    writes = ("POST", "PUT", "PATCH", "DELETE")
    app = guarded(quart.asgi_app, service, protected=("/admin*",), methods=writes)
    anonymous = await send(app, "/admin/users", method="post")
    assert anonymous.status == 401  # Quart would run the POST handler
    assert (await send(app, "/admin/users", method="get")).status == 200  # reads are public
    counted = limited(quart.asgi_app, RateLimitRule("/admin/*", "writes", methods=["POST"]))
    statuses = [(await send(counted, "/admin/users", method="post")).status for _ in range(3)]
    assert statuses == [200, 200, 429]


async def test_litestar_and_trailing_slashes() -> None:
    service = make_clocked_service()

    @get("/admin")
    async def admin_page() -> dict[str, str]:
        return {"reached": "admin"}

    @post("/login", status_code=200)
    async def log_in() -> dict[str, str]:
        return {"ok": "yes"}

    litestar = Litestar([admin_page, log_in])
    app = guarded(litestar, service, protected=("/admin",))
    for path in ("/admin", "/admin/", "//admin//"):
        assert (await send(app, path)).status == 401, path
    counted = limited(litestar, RateLimitRule("/login", "login", methods=["POST"]))
    paths = ["/login", "/login/", "/login//"]
    statuses = [(await send(counted, path, method="POST")).status for path in paths]
    assert statuses == [200, 200, 429]


async def test_litestar_and_a_pattern_that_ends_with_a_slash() -> None:
    service = make_clocked_service()
    plain, admin = await tokens(service)

    @get("/admin/")
    async def admin_index() -> dict[str, str]:
        return {"reached": "admin"}

    @post("/login/", status_code=200)
    async def log_in() -> dict[str, str]:
        return {"ok": "yes"}

    litestar = Litestar([admin_index, log_in])
    # Litestar drops the trailing slash of its routes: `/admin` reaches `/admin/`.
    assert (await send(litestar, "/admin")).json() == {"reached": "admin"}
    for protected in (("/admin/",), ("/admin/*",)):
        app = guarded(litestar, service, protected=protected)
        for path in ("/admin", "/admin/", "/admin//"):
            assert (await send(app, path)).status == 401, (protected, path)
    scoped = guarded(litestar, service, protected={"/*": [], "/admin/*": ["admin"]})
    assert (await send(scoped, "/admin", plain)).status == 403
    assert (await send(scoped, "/admin", admin)).status == 200
    counted = limited(litestar, RateLimitRule("/login/", "login", methods=["POST"]))
    paths = ["/login", "/login/", "/login"]
    statuses = [(await send(counted, path, method="POST")).status for path in paths]
    assert statuses == [200, 200, 429]


async def test_litestar_and_doubled_slashes_around_a_dot_segment() -> None:
    service = make_clocked_service()
    plain, admin = await tokens(service)

    @get("/files/{name:str}/admin")
    async def file_admin(request: LitestarRequest[Any, Any, Any]) -> dict[str, str]:
        return {"reached": request.path_params["name"]}

    litestar = Litestar([file_admin])
    # Litestar routes `//files//..//admin` as `/files/../admin`: `name` is `..`.
    app = guarded(litestar, service, protected=("/files/*",))
    assert (await send(app, "//files//..//admin")).status == 401
    scoped = guarded(litestar, service, protected={"/*": [], "/files/*": ["admin"]})
    assert (await send(scoped, "//files//..//admin", plain)).status == 403
    reached = await send(scoped, "//files//..//admin", admin)
    assert (reached.status, reached.json()) == (200, {"reached": ".."})
    counted = limited(litestar, RateLimitRule("/files/*", "files"))
    statuses = [(await send(counted, "//files//..//admin")).status for _ in range(3)]
    assert statuses == [200, 200, 429]


async def test_head_is_guarded_where_get_is() -> None:
    service = make_clocked_service()

    async def export(request: Request) -> JSONResponse:
        return JSONResponse({"rows": 3})

    starlette = Starlette(routes=[Route("/admin/export", export, methods=["GET"])])
    app = guarded(
        starlette, service, protected=("/admin*",), methods=("GET", "POST", "PUT", "DELETE")
    )
    assert (await send(app, "/admin/export", method="HEAD")).status == 401
    assert (await send(app, "/admin/export", method="OPTIONS")).status != 401  # not listed
    counted = limited(starlette, RateLimitRule("/admin/*", "reads", methods=["GET"]))
    methods = ["GET", "HEAD", "GET"]
    statuses = [(await send(counted, "/admin/export", method=m)).status for m in methods]
    assert statuses == [200, 200, 429]
