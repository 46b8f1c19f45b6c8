"""Behind a server's `root_path`, a path is protected and counted in every form a framework
routes it as, through real Litestar, Quart, FastAPI and Starlette apps, with the scopes
the servers build:

- uvicorn's `--root-path /api` puts `/api` in front of the target (`GET /admin` is
  `path="/api/admin"`, and `GET admin`, which its h11 server takes, is `/apiadmin`);
  hypercorn's leaves `path` as sent (`/admin`, `/public/api/admin`);
- Litestar 2 cuts the path after the first `root_path` anywhere in it
  (`/public/api/admin` and `/apiadmin` are `/admin`);
- Quart cuts `root_path` as a plain prefix, where a segment ends or not, and puts a `/`
  in front (`/apiadmin` is `/admin`; with `root_path="/api/"`, so is `/api/admin`), an
  absolute-form target by its URL path;
- Starlette and FastAPI cut it only where a segment ends, and route the whole path
  otherwise.
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import unquote, urlparse

import pytest
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar import Litestar, WebSocket, get, websocket
from litestar.middleware import DefineMiddleware
from litestar.utils.path import normalize_path
from quart import Quart
from quart.asgi import _normalise_path as quart_route_path
from starlette._utils import get_route_path
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
    serving,
    websocket_scope,
    websocket_session,
)
from test_middleware_routing import ADMIN_ONLY, guarded, limited

from s3auth_asgi import BearerTokenMiddleware, BlacklistMiddleware, S3AuthService
from s3auth_asgi.app.litestar import S3AuthPlugin
from s3auth_asgi.errors import ConfigurationError
from s3auth_asgi.path_forms import route_forms
from s3auth_asgi.path_patterns import check_pattern
from s3auth_asgi.paths import PathAccess, PathDecision, PathRules
from s3auth_asgi.ratelimit import RateLimitRule

pytestmark = pytest.mark.anyio
FORM = [(b"content-type", b"application/x-www-form-urlencoded")]


def hypercorn(target: str, root_path: str, **options: Any) -> dict[str, Any]:
    """The scope hypercorn builds with `root_path` set: `path` as sent."""
    return http_scope(unquote(target), raw_path=target.encode(), root_path=root_path, **options)


def uvicorn(target: str, root_path: str, **options: Any) -> dict[str, Any]:
    """The scope uvicorn builds with `root_path` set: `root_path` in front of the target."""
    raw_path = (root_path + target).encode()
    return http_scope(
        root_path + unquote(target), raw_path=raw_path, root_path=root_path, **options
    )


async def send(app: Any, scope: dict[str, Any], body: bytes = b"") -> Response:
    return await call_http(app, scope, body)


async def tokens(service: S3AuthService) -> tuple[Any, Any]:
    """A token without the admin scope, and one with it."""
    _, plain = await login(service, "plain")
    _, admin = await login(service, "root", scopes=["admin"])
    return bearer(plain.access_token), bearer(admin.access_token)


@get("/admin")
async def litestar_admin() -> dict[str, str]:
    return {"reached": "admin"}


@get("/public/page")
async def litestar_public() -> dict[str, str]:
    return {"reached": "public"}


@websocket("/ws/admin")
async def litestar_socket(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()
    await socket.send_text("admin")
    await socket.close()


def litestar(**options: Any) -> Litestar:
    return Litestar([litestar_admin, litestar_public, litestar_socket], **options)


def quart() -> Any:
    app = Quart(__name__)

    @app.route("/admin")
    async def admin() -> dict[str, str]:
        return {"reached": "admin"}

    return app.asgi_app


async def test_litestar_cuts_root_path_wherever_it_occurs() -> None:
    service = make_clocked_service()
    plain, admin = await tokens(service)
    outside = guarded(litestar(), service, exclude=("/public/*",))
    inside = litestar(
        middleware=[DefineMiddleware(BearerTokenMiddleware, tokens=service, exclude=("/public/*",))]
    )
    for app in (outside, inside):
        # Litestar routes it to /admin, not to anything below /public/.
        assert (await send(app, hypercorn("/public/api/admin", "/api"))).status == 401
        # What is below /public/ as Litestar routes it stays open.
        assert (await send(app, hypercorn("/public/page", "/api"))).status == 200
        assert (await send(app, uvicorn("/public/page", "/api"))).status == 200
    scoped = guarded(litestar(), service, protected=ADMIN_ONLY)
    assert (await send(scoped, hypercorn("/x/api/admin", "/api", headers=plain))).status == 403
    assert (await send(scoped, hypercorn("/x/api/admin", "/api", headers=admin))).status == 200
    counted = limited(litestar(), RateLimitRule("/admin*", "admin"))
    statuses = [
        (await send(counted, hypercorn(f"/x{i}/api/admin", "/api"))).status for i in range(3)
    ]
    assert statuses == [200, 200, 429]


async def test_a_litestar_websocket_under_root_path_wherever_it_occurs() -> None:
    service = make_clocked_service()
    app = guarded(litestar(), service, exclude=("/public/*",))
    scope = websocket_scope("/public/api/ws/admin")
    scope["root_path"] = "/api"
    refused = await websocket_session(app, scope)
    assert not refused.accepted
    assert refused.sent[0]["type"] == "websocket.close"


async def test_the_auth_apps_login_limit_holds_wherever_root_path_occurs() -> None:
    service = make_clocked_service()
    app = limited(
        litestar(plugins=[S3AuthPlugin(service)]),
        RateLimitRule("/auth/login", "logins", methods=["POST"]),
    )
    body = b"username=alice&password=Wrong123!"
    statuses = []
    for target in ("/auth/login", "/x0/api/auth/login", "/x1/api/auth/login"):
        scope = hypercorn(target, "/api", headers=FORM, method="POST")
        statuses.append((await send(app, scope, body)).status)
    assert statuses == [401, 401, 429]


async def test_a_root_path_that_ends_inside_a_segment() -> None:
    service = make_clocked_service()
    plain, admin = await tokens(service)
    for target in (litestar(), quart()):
        app = guarded(target, service, protected=ADMIN_ONLY)
        # uvicorn's h11 server with --root-path /api makes `GET admin` into /apiadmin.
        assert (await send(app, uvicorn("admin", "/api", headers=plain))).status == 403
        assert (await send(app, hypercorn("/apiadmin", "/api", headers=plain))).status == 403
        assert (await send(app, hypercorn("/apiadmin", "/api", headers=admin))).status == 200
        only_admin = guarded(target, service, protected=("/admin*",))
        assert (await send(only_admin, hypercorn("/apiadmin", "/api"))).status == 401
        counted = limited(target, RateLimitRule("/admin", "admin"))
        statuses = [(await send(counted, uvicorn("admin", "/api"))).status for _ in range(3)]
        assert statuses == [200, 200, 429]


async def test_a_root_path_with_a_trailing_slash() -> None:
    service = make_clocked_service()
    plain, admin = await tokens(service)
    for target in (litestar(), quart()):
        app = guarded(target, service, protected=ADMIN_ONLY)
        # hypercorn with root_path="/api/": both route /api/admin as /admin.
        assert (await send(app, hypercorn("/api/admin", "/api/", headers=plain))).status == 403
        assert (await send(app, hypercorn("/api/admin", "/api/", headers=admin))).status == 200


async def test_an_absolute_form_target_below_root_path() -> None:
    service = make_clocked_service()
    plain, admin = await tokens(service)
    for target in (litestar(), quart()):
        app = guarded(target, service, protected=ADMIN_ONLY)
        absolute = "http://x/api/admin"
        assert (await send(app, hypercorn(absolute, "/api", headers=plain))).status == 403
        assert (await send(app, hypercorn(absolute, "/api", headers=admin))).status == 200
        counted = limited(target, RateLimitRule("/admin", "admin"))
        statuses = [(await send(counted, hypercorn(absolute, "/api"))).status for _ in range(3)]
        assert statuses == [200, 200, 429]


async def test_a_path_without_a_leading_slash() -> None:
    # hypercorn, and uvicorn's h11 server without a root path, pass `GET admin` on as
    # `path="admin"`: Litestar and Quart put a "/" in front and route /admin.
    service = make_clocked_service()
    plain, admin = await tokens(service)
    for target in (litestar(), quart()):
        app = guarded(target, service, protected=ADMIN_ONLY)
        assert (await send(app, http_scope("admin", plain))).status == 403
        assert (await send(app, http_scope("admin", admin))).status == 200
        counted = limited(target, RateLimitRule("/admin", "admin"))
        statuses = [(await send(counted, http_scope("admin"))).status for _ in range(3)]
        assert statuses == [200, 200, 429]


async def test_starlette_keeps_its_exclusions_under_root_path() -> None:
    service = make_clocked_service()

    async def page(request: Request) -> JSONResponse:
        return JSONResponse({"reached": request.url.path})

    starlette = Starlette(routes=[Route("/health", page), Route("/admin", page)])
    app = guarded(starlette, service, exclude=("/health",))
    for scope in (uvicorn, hypercorn):
        assert (await send(app, scope("/health", "/api"))).status == 200
        assert (await send(app, scope("/admin", "/api"))).status == 401
    # Starlette routes /apiadmin as it is: a 404, which needs a token all the same.
    assert (await send(app, hypercorn("/apiadmin", "/api"))).status == 401


@pytest.mark.filterwarnings("ignore:The `root_path` parameter is deprecated")
async def test_fastapis_own_root_path_with_the_middleware_added_inside() -> None:
    service = make_clocked_service()
    plain, admin = await tokens(service)
    api = FastAPI(root_path="/api")

    @api.get("/admin")
    async def admin_page() -> dict[str, str]:
        return {"reached": "admin"}

    @api.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    # FastAPI puts its root_path into the scope on the way in: a middleware it runs sees
    # it, one wrapped around it does not.
    api.add_middleware(BlacklistMiddleware, blacklist=service)
    api.add_middleware(
        BearerTokenMiddleware, tokens=service, protected=ADMIN_ONLY, exclude=("/health",)
    )
    for path in ("/admin", "/api/admin"):
        assert (await send(api, http_scope(path))).status == 401, path
        assert (await send(api, http_scope(path, plain))).status == 403, path
        assert (await send(api, http_scope(path, admin))).status == 200, path
    assert (await send(api, http_scope("/api/health"))).status == 200


def ask(url: str, target: bytes, token: str | None = None) -> int:
    """The status a server answers a raw request for `target` with."""
    parsed = urlparse(url)
    authorization = b"Authorization: Bearer %b\r\n" % token.encode() if token else b""
    with socket.create_connection((parsed.hostname, parsed.port), timeout=10) as sock:
        sock.sendall(
            b"GET %b HTTP/1.1\r\nHost: x\r\n%bConnection: close\r\n\r\n" % (target, authorization)
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


async def test_a_real_server_with_a_root_path() -> None:
    service = make_clocked_service()
    _, plain = await login(service, "plain")
    apps = (
        (BearerTokenMiddleware(quart(), service, protected=("/admin*",)), None),
        (BearerTokenMiddleware(litestar(), service, protected=ADMIN_ONLY), plain.access_token),
    )
    for app, token in apps:
        with serving(app, root_path="/api", http="h11") as url:
            statuses = [ask(url, target, token) for target in (b"/admin", b"admin")]
        assert statuses == ([401, 401] if token is None else [403, 403])


# What each framework routes a path as, from its own code -----------------------------


def litestar_routes(path: str, root_path: str) -> str:
    """As Litestar's ASGI router does (`litestar/_asgi/asgi_router.py`)."""
    if root_path:
        path = path.split(root_path, maxsplit=1)[-1]
    return normalize_path(path)


def quart_routes(path: str, root_path: str) -> str | None:
    """As Quart's request from a scope (`quart/asgi.py`) and Werkzeug's request do; None
    for a 404."""
    path = path if path[0] == "/" else urlparse(path).path
    if root_path:
        path = quart_route_path(path, root_path)
        if path == " ":
            return None
    return "/" + path.lstrip("/")


def starlette_routes(path: str, root_path: str) -> str | None:
    """As Starlette's (and FastAPI's) router does; None where no route can match."""
    route_path = get_route_path({"path": path, "root_path": root_path}) or "/"
    return route_path if route_path.startswith("/") else None


SEGMENTS = ["api", "admin", "apiadmin", "public", "x", ".", "..", "ap", "i"]
RULES = PathRules(
    {"/*": [], "/admin*": ["admin"], "/api/*": ["api"], "/x/a*": ["x"]},
    exclude=("/public/*", "/x"),
)


@st.composite
def paths_and_roots(draw: st.DrawFn) -> tuple[str, str]:
    start = draw(st.sampled_from(["/", "", "http://h/", "http://api/", "//"]))
    path = start + draw(st.sampled_from(SEGMENTS))
    for segment in draw(st.lists(st.sampled_from(SEGMENTS), max_size=5)):
        path += draw(st.sampled_from(["/", "//"])) + segment
    path += draw(st.sampled_from(["", "/"]))
    root_path = draw(st.sampled_from(["", "/api", "/api/", "/a", "/x/api", "/ap", "/admin"]))
    return path, root_path


def at_least_as_strict(decision: PathDecision, than: PathDecision) -> bool:
    if decision[0] != than[0]:
        return decision[0] > than[0]
    return decision[0] is not PathAccess.REQUIRED or set(than[1]) <= set(decision[1])


def is_pattern(pattern: str) -> bool:
    try:
        check_pattern(pattern, "protected")
    except ConfigurationError:
        return False
    return True


def covered(routed: str, forms: tuple[str, ...]) -> bool:
    """Whether every pattern that matches `routed` matches one of `forms`."""
    for end in range(1, len(routed) + 1):
        prefix = routed[:end]
        if is_pattern(prefix + "*") and not any(form.startswith(prefix) for form in forms):
            return False
    return not is_pattern(routed) or routed in forms


@settings(max_examples=600, deadline=None)
@given(paths_and_roots(), st.booleans())
def test_whatever_a_framework_routes_is_a_form_and_decided_as_strictly(
    path_and_root: tuple[str, str], uvicorns: bool
) -> None:
    path, root_path = path_and_root
    if uvicorns:
        path = root_path + path
    scope = http_scope(path, root_path=root_path)
    forms = route_forms(scope)
    decision = RULES.decide(scope)
    for routes in (litestar_routes, quart_routes, starlette_routes):
        routed = routes(path, root_path)
        if routed is None:
            continue
        assert covered(routed, forms), (routes.__name__, routed, forms)
        direct = RULES.decide(http_scope(routed))
        assert at_least_as_strict(decision, direct), (routes.__name__, routed, forms)
