"""Litestar: S3AuthPlugin mounts the auth app, adds it to the app's OpenAPI document at
`/schema/openapi.json`, and `requires_scopes` guards protect the host's routes.

The document is fetched and validated, the password flow is driven as Swagger UI drives
it, and the path the server's access log reads is checked the way uvicorn reads it.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import make_service
from declared_answers import listed_codes
from litestar import Litestar, Request, Router, WebSocket, asgi, get, post, websocket
from litestar.middleware import DefineMiddleware
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.spec import Server
from litestar.params import FromPath
from support import login, websocket_scope, websocket_session
from test_app import PASSWORD, assert_problem, client_for, register
from test_app_fastapi import (
    check_declared_refusals,
    check_host_document,
    operations,
    swagger_login,
)
from uvicorn.protocols.utils import get_path_with_query_string

from s3auth_asgi import (
    AnonymousUser,
    BearerTokenMiddleware,
    BlacklistMiddleware,
    ConfigurationError,
    S3AuthService,
    current_user,
    requires,
)
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.app.host_document import SCOPE_DESCRIPTION, SECURITY_SCHEME
from s3auth_asgi.app.litestar import S3AuthPlugin, requires_scopes
from s3auth_asgi.app.openapi import ADMIN_SCOPE_DESCRIPTION
from s3auth_asgi.middleware.ratelimit import RateLimitMiddleware
from s3auth_asgi.problems import PROBLEM_CONTENT_TYPE
from s3auth_asgi.ratelimit import RateLimit, RateLimiter, RateLimitRule
from s3auth_asgi.types import ASGIApp, Message, Receive, Scope, Send

pytestmark = pytest.mark.anyio

SCHEMA = "/schema/openapi.json"


@get("/health")
async def health() -> dict[str, bool]:
    return {"ok": True}


@get("/items", guards=[requires_scopes()])
async def items(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return {"user": request.user.username, "scopes": list(request.auth.scopes)}


@get("/admin", guards=[requires_scopes("admin")])
async def admin(request: Request[Any, Any, Any]) -> dict[str, str]:
    return {"admin": request.user.username}


@post("/reports", status_code=200)
async def reports() -> dict[str, bool]:
    return {"written": True}


def host(service: S3AuthService, **litestar_options: Any) -> Litestar:
    # A router's guard covers its handlers, and the document says so.
    writers = Router("/w", route_handlers=[reports], guards=[requires_scopes("reports")])
    return Litestar(
        route_handlers=[health, items, admin, writers],
        plugins=[S3AuthPlugin(service, rate_limit=False)],
        **litestar_options,
    )


async def test_the_schema_holds_the_auth_operations_and_the_scheme() -> None:
    async with client_for(host(make_service())) as client:
        document = (await client.get(SCHEMA)).json()
        swagger = await client.get("/schema/swagger")
    check_host_document(document)
    scheme = document["components"]["securitySchemes"][SECURITY_SCHEME]
    flow = scheme["flows"]["password"]
    assert flow["tokenUrl"] == "/auth/login"
    assert flow["scopes"] == {"admin": ADMIN_SCOPE_DESCRIPTION, "reports": SCOPE_DESCRIPTION}
    found = operations(document)
    assert found[("get", "/items")]["security"] == [{SECURITY_SCHEME: []}]
    assert found[("get", "/admin")]["security"] == [{SECURITY_SCHEME: ["admin"]}]
    assert found[("post", "/w/reports")]["security"] == [{SECURITY_SCHEME: ["reports"]}]
    assert "security" not in found[("get", "/health")]
    check_declared_refusals(
        document,
        {
            ("get", "/items"): {"400", "401", "503"},
            ("get", "/admin"): {"400", "401", "403", "503"},
            ("post", "/w/reports"): {"400", "401", "403", "503"},
        },
    )
    # Swagger UI embeds the document it renders.
    assert swagger.status_code == 200 and '"/auth/login"' in swagger.text


@get("/things/{thing_id:int}", guards=[requires_scopes()])
async def thing(thing_id: FromPath[int]) -> dict[str, int]:
    return {"id": thing_id}


async def test_a_400_litestar_declares_itself_lists_the_guards_refusal_too() -> None:
    """Litestar declares a 400 of its own (application/json) on a route with a path
    parameter; the guard's 400 of an Authorization header sent twice is a problem."""
    service = make_service()
    _, pair = await login(service, "alice")
    app = Litestar([thing], plugins=[S3AuthPlugin(service, rate_limit=False)])
    twice = [("authorization", f"Bearer {pair.access_token}")] * 2
    async with client_for(app) as client:
        document = (await client.get(SCHEMA)).json()
        answer = await client.get("/things/7", headers=twice)
    assert_problem(answer, 400, "invalid_request")
    declared = document["paths"]["/things/{thing_id}"]["get"]["responses"]["400"]
    assert declared["description"] == "Bad request syntax or unsupported method"
    assert set(declared["content"]) == {"application/json", PROBLEM_CONTENT_TYPE}
    schema = declared["content"][PROBLEM_CONTENT_TYPE]["schema"]
    assert listed_codes(schema) == ["invalid_request"]
    assert set(declared["headers"]) == {"WWW-Authenticate"}


async def test_swagger_ui_password_flow_reaches_the_guarded_routes() -> None:
    service = make_service()
    await service.create_user("root", "root@example.com", PASSWORD, scopes=["admin"])
    async with client_for(host(service)) as client:
        document = (await client.get(SCHEMA)).json()
        await register(client, "alice")
        alice = await swagger_login(client, document, "alice")
        root = await swagger_login(client, document, "root")

        # Without BearerTokenMiddleware, the guard verified the token and set request.user.
        mine = await client.get("/items", headers=alice)
        assert mine.json() == {"user": "alice", "scopes": ["authenticated"]}
        assert (await client.get("/admin", headers=root)).json() == {"admin": "root"}
        assert (await client.get("/auth/me", headers=alice)).json()["username"] == "alice"

        assert_problem(await client.get("/admin", headers=alice), 403, "insufficient_scope")
        assert_problem(await client.post("/w/reports", headers=root), 403, "insufficient_scope")
        anonymous = await client.get("/items")
        assert_problem(anonymous, 401, "authentication_required")
        assert anonymous.headers["www-authenticate"] == 'Bearer realm="api"'
        forged = {"Authorization": "Bearer not.a.token"}
        assert_problem(await client.get("/items", headers=forged), 401, "invalid_token")
        repeated = await client.get("/items", headers=[*alice.items(), *alice.items()])
        assert_problem(repeated, 400, "invalid_request")
        assert 'error="invalid_request"' in repeated.headers["www-authenticate"]
        assert (await client.get("/health")).status_code == 200

        await client.post("/auth/logout", headers=alice)
        assert_problem(await client.get("/items", headers=alice), 401, "token_revoked")


async def test_wrapped_in_the_middlewares_the_guards_take_their_caller() -> None:
    service = make_service()
    app = BearerTokenMiddleware(
        BlacklistMiddleware(host(service), service),
        service,
        protected=("/items",),
        exclude=("/auth", "/auth/*", "/schema", "/schema/*"),
    )
    async with client_for(app) as client:
        document = (await client.get(SCHEMA)).json()
        await register(client, "alice")
        alice = await swagger_login(client, document, "alice")
        assert (await client.get("/items", headers=alice)).json()["user"] == "alice"
        assert_problem(await client.get("/items"), 401, "authentication_required")
        assert_problem(await client.get("/admin", headers=alice), 403, "insufficient_scope")
        await client.post("/auth/logout-all", headers=alice)
        assert_problem(await client.get("/items", headers=alice), 401, "token_revoked")
        assert_problem(await client.get("/admin", headers=alice), 401, "token_revoked")


@get("/whoami", guards=[requires_scopes()])
async def whoami() -> dict[str, str]:
    return {"current": current_user().username}


@get("/public")
async def public() -> dict[str, bool]:
    # No guard verifies a token here: the caller is anonymous, token or not.
    return {"anonymous": isinstance(current_user(), AnonymousUser)}


async def test_without_the_middleware_current_user_is_the_caller_a_guard_verified() -> None:
    service = make_service()
    app = Litestar([whoami, public], plugins=[S3AuthPlugin(service, rate_limit=False)])
    async with client_for(app) as client:
        _, tokens = await login(service)
        alice = {"Authorization": f"Bearer {tokens.access_token}"}
        assert (await client.get("/whoami", headers=alice)).json() == {"current": "alice"}
        assert (await client.get("/public", headers=alice)).json() == {"anonymous": True}
        assert_problem(await client.get("/whoami"), 401, "authentication_required")
    # The request's caller does not outlive it in the task that sent it.
    assert isinstance(current_user(), AnonymousUser)


@websocket("/ws", guards=[requires_scopes()])
async def chat(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()
    await socket.send_text(socket.user.username)
    await socket.close()


@websocket("/ws/admin", guards=[requires_scopes("admin")])
async def admin_chat(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()
    await socket.close()


async def test_a_guard_refuses_a_websocket_with_1008_and_the_problem_code() -> None:
    service = make_service()
    app = Litestar([chat, admin_chat], plugins=[S3AuthPlugin(service, rate_limit=False)])
    _, pair = await login(service)
    headers = [(b"authorization", f"Bearer {pair.access_token}".encode())]
    assert (await websocket_session(app, websocket_scope("/ws", headers))).texts == ["alice"]
    refusals = {
        "authentication_required": websocket_scope("/ws"),
        "invalid_token": websocket_scope("/ws", [(b"authorization", b"Bearer x.y.z")]),
        "insufficient_scope": websocket_scope("/ws/admin", headers),
    }
    for code, scope in refusals.items():
        refused = await websocket_session(app, scope)
        assert refused.sent == [{"type": "websocket.close", "code": 1008, "reason": code}]


def access_log(app: ASGIApp, lines: list[str]) -> ASGIApp:
    """What uvicorn's access log writes: the method and the path of the scope it passed
    to the app, read when the response starts."""

    async def logged(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_and_log(message: Message) -> None:
            if message["type"] == "http.response.start":
                path = get_path_with_query_string(scope)  # type: ignore[arg-type]
                lines.append(f"{scope['method']} {path} {message['status']}")
            await send(message)

        await app(scope, receive, send_and_log)

    return logged


async def test_the_access_log_shows_the_path_that_was_requested() -> None:
    lines: list[str] = []
    async with client_for(access_log(host(make_service()), lines)) as client:
        await register(client, "alice")
        await client.get("/auth/openapi.json?v=1")
        await client.get("/auth/no-such-thing")
        await client.get("/items")
    assert lines == [
        "POST /auth/register 201",
        "GET /auth/openapi.json?v=1 200",
        "GET /auth/no-such-thing 404",
        "GET /items 401",
    ]


async def test_a_plain_mount_hands_the_app_the_path_below_it() -> None:
    # What the plugin undoes, or the test above proves nothing: a plain mount hands the
    # mounted app the path below the mount, with a slash Litestar adds. Before Litestar
    # 2.25 the server's own scope was rewritten so too, and its access log showed it.
    auth_app = create_auth_app(make_service(), rate_limit=False, mount_path="/auth")
    seen: list[str] = []

    @asgi("/auth", is_mount=True, copy_scope=True)
    async def auth_mount(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["path"])
        await auth_app(scope, receive, send)

    async with client_for(Litestar([auth_mount])) as client:
        await register(client, "alice")
    assert seen == ["/register/"]


async def test_below_a_root_path_the_mount_and_its_cookies_follow() -> None:
    service = make_service(refresh_cookie=True)
    lines: list[str] = []
    app = access_log(host(service), lines)
    async with client_for(app, base_url="https://testserver", root_path="/api") as client:
        await register(client, "alice", prefix="/api/auth")
        login = await client.post(
            "/api/auth/login", data={"username": "alice", "password": PASSWORD}
        )
        assert "Path=/api/auth/refresh;" in login.headers["set-cookie"]
        refreshed = await client.post("/api/auth/refresh", headers={"Origin": "https://testserver"})
        assert refreshed.status_code == 200, refreshed.text
        own = (await client.get("/api/auth/openapi.json")).json()
        assert own["servers"] == [{"url": "/api/auth"}]
    assert lines[0] == "POST /api/auth/register 201"


async def test_the_token_url_follows_the_first_server_url() -> None:
    config = OpenAPIConfig(title="Host", version="1", servers=[Server(url="/api")])
    async with client_for(host(make_service(), openapi_config=config)) as client:
        document = (await client.get(SCHEMA)).json()
    assert document["info"]["title"] == "Host"
    flow = document["components"]["securitySchemes"][SECURITY_SCHEME]["flows"]["password"]
    assert flow["tokenUrl"] == "/api/auth/login"


async def test_the_config_given_is_left_as_it_was() -> None:
    # Litestar's default config is one object shared by every app.
    with_plugin = host(make_service())
    without = Litestar([health])
    assert "/auth/login" in with_plugin.openapi_schema.to_schema()["paths"]
    assert "/auth/login" not in without.openapi_schema.to_schema()["paths"]
    assert type(without.openapi_config) is OpenAPIConfig


@get("/register")
async def host_register() -> dict[str, str]:
    return {"host": "register"}


@get("/auth/callback")
async def host_callback() -> dict[str, str]:
    return {"host": "callback"}


@get("/auth/me")
async def host_me() -> dict[str, str]:
    return {"host": "me"}


async def test_a_host_route_under_the_path_answers_and_the_document_agrees() -> None:
    app = Litestar([host_callback, host_me], plugins=[S3AuthPlugin(make_service())])
    async with client_for(app) as client:
        document = (await client.get(SCHEMA)).json()
        assert (await client.get("/auth/callback")).json() == {"host": "callback"}
        assert (await client.get("/auth/me")).json() == {"host": "me"}
        assert (await client.patch("/auth/me", json={"full_name": "A"})).status_code == 405
        await register(client, "alice")  # the auth app answers the rest of the path
    found = operations(document)
    assert found[("get", "/auth/callback")]["operationId"] == "AuthCallbackHostCallback"
    assert found[("get", "/auth/me")]["operationId"] == "AuthMeHostMe"
    assert set(document["paths"]["/auth/me"]) == {"get"}  # PATCH /auth/me: 405, not listed
    assert ("post", "/auth/register") in found


async def test_the_middlewares_on_a_router_leave_the_mount_alone() -> None:
    # Litestar copies a Router, and the arguments of its middleware, when registering it:
    # the copy of the service must be the service, sharing its snapshot.
    service = make_service()
    middleware = [
        DefineMiddleware(BearerTokenMiddleware, tokens=service),
        DefineMiddleware(BlacklistMiddleware, blacklist=service),
    ]
    api = Router("/", route_handlers=[items, host_register], middleware=middleware)
    app = Litestar([api], plugins=[S3AuthPlugin(service, rate_limit=False)])
    async with client_for(app) as client:
        await register(client, "alice")  # the mount has no middleware: no token needed
        alice = await swagger_login(client, (await client.get(SCHEMA)).json(), "alice")
        assert (await client.get("/items", headers=alice)).json()["user"] == "alice"
        assert_problem(await client.get("/items"), 401, "authentication_required")
        assert_problem(await client.get("/register"), 401, "authentication_required")
        await client.post("/auth/logout", headers=alice)
        assert_problem(await client.get("/items", headers=alice), 401, "token_revoked")


async def test_a_router_copies_as_one_the_blacklist_and_the_codec_it_is_given() -> None:
    # The parts rather than the service: a blacklist holding the store and a codec whose
    # signing keys live there. The Router's copies must be the very objects, or the
    # middleware would see the auth app's logout only a sync later.
    service = make_service(algorithm="ES256")
    assert service.tokens.ring is not None and service.tokens.ring.source == "store"
    middleware = [
        DefineMiddleware(BearerTokenMiddleware, tokens=service.tokens),
        DefineMiddleware(BlacklistMiddleware, blacklist=service.blacklist),
    ]
    api = Router("/", route_handlers=[items], middleware=middleware)
    app = Litestar([api], plugins=[S3AuthPlugin(service, rate_limit=False)])
    async with client_for(app) as client:
        await register(client, "alice")
        alice = await swagger_login(client, (await client.get(SCHEMA)).json(), "alice")
        assert (await client.get("/items", headers=alice)).json()["user"] == "alice"
        assert_problem(await client.get("/items"), 401, "authentication_required")
        await client.post("/auth/logout", headers=alice)
        assert_problem(await client.get("/items", headers=alice), 401, "token_revoked")


@pytest.mark.parametrize("root_path", ["", "/api"])
async def test_on_the_app_a_rate_limit_rule_names_the_mount_by_its_full_path(
    root_path: str,
) -> None:
    # Litestar runs the app's middleware after routing; for the mount, the path it routed
    # is the one below it, and the rule written as the client sees the path never matched.
    limiter = RateLimiter(limits={"login": RateLimit(max_requests=2, window_seconds=60)})
    rules = [RateLimitRule("/auth/login", "login")]
    app = Litestar(
        [health],
        plugins=[S3AuthPlugin(make_service(), rate_limit=False)],
        middleware=[DefineMiddleware(RateLimitMiddleware, limiter=limiter, rules=rules)],
    )
    wrong = {"username": "alice", "password": "Wrong123!"}
    async with client_for(app, root_path=root_path) as client:
        tries = [await client.post(f"{root_path}/auth/login", data=wrong) for _ in range(3)]
        assert (await client.get(f"{root_path}/health")).status_code == 200
    assert [r.status_code for r in tries] == [401, 401, 429]
    assert tries[0].headers["ratelimit"] == '"login";r=1;t=30'
    assert_problem(tries[2], 429, "rate_limited")


@pytest.mark.parametrize(
    ("exclude", "registers"), [(("/register", "/register/*"), False), (("/auth", "/auth/*"), True)]
)
async def test_on_the_app_the_middleware_sees_the_mount_by_its_full_path(
    exclude: tuple[str, ...], registers: bool
) -> None:
    # Litestar runs the app's middleware for the mount too: with the path the client sent,
    # so excluding the mount's path lets the auth app through and nothing else.
    service = make_service()
    app = Litestar(
        [health, host_register],
        plugins=[S3AuthPlugin(service, rate_limit=False)],
        middleware=[DefineMiddleware(BearerTokenMiddleware, tokens=service, exclude=exclude)],
    )
    async with client_for(app) as client:
        account = {"username": "alice", "email": "alice@example.com", "password": PASSWORD}
        registered = await client.post("/auth/register", json=account)
        assert registered.status_code == (201 if registers else 401)
        host_route = await client.get("/register")
        assert host_route.status_code == (401 if registers else 200)


async def test_guards_on_the_app_leave_the_auth_app_to_its_own_checks() -> None:
    # Litestar resolves the app's guards for every handler, the plugin's mount included:
    # taken there, an app-wide requires_scopes() would refuse register and login to all.
    service = make_service()
    app = Litestar(
        [health, items],
        guards=[requires_scopes(), requires("authenticated").guard],
        plugins=[S3AuthPlugin(service, rate_limit=False)],
    )
    async with client_for(app) as client:
        await register(client, "alice")
        form = {"grant_type": "password", "username": "alice", "password": PASSWORD}
        logged_in = await client.post("/auth/login", data=form)
        assert logged_in.status_code == 200
        alice = {"Authorization": f"Bearer {logged_in.json()['access_token']}"}
        assert (await client.get("/auth/me", headers=alice)).json()["username"] == "alice"
        assert (await client.get("/items", headers=alice)).json()["user"] == "alice"
        assert_problem(await client.get("/health"), 401, "authentication_required")
        assert_problem(await client.get("/auth/me"), 401, "authentication_required")


async def test_misuse_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="must start"):
        S3AuthPlugin(make_service(), path="auth")
    plugin = S3AuthPlugin(make_service())
    Litestar([health], plugins=[plugin])
    with pytest.raises(ConfigurationError, match="one app"):
        Litestar([health], plugins=[plugin])
    with pytest.raises(ConfigurationError):
        requires_scopes("two words")
    async with client_for(Litestar([items])) as client:
        response = await client.get("/items", headers={"Authorization": "Bearer x"})
    # A guard without the plugin is a setup error, which admits nobody.
    assert (response.status_code, response.json()["code"]) == (500, "auth_not_configured")


async def test_a_second_plugin_on_one_app_is_refused() -> None:
    # Its document would replace the first one's, which lists no more the auth operations
    # it serves, and the guards would all verify with the second one's service.
    first = S3AuthPlugin(make_service())
    second = S3AuthPlugin(make_service(), path="/staff")
    with pytest.raises(ConfigurationError, match="already"):
        Litestar([health], plugins=[first, second])


@get("/authors/{author_id:int}")
async def author(author_id: FromPath[int]) -> dict[str, int]:
    return {"author": author_id}


@get("/authors")
async def authors() -> dict[str, str]:
    return {"authors": "all"}


@get("/auth/callback/{provider:str}")
async def callback(provider: FromPath[str]) -> dict[str, str]:
    return {"provider": provider}


def host_mount(path: str) -> Any:
    @asgi(path, is_mount=True, copy_scope=True)
    async def mounted(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return mounted


@pytest.mark.parametrize(
    ("path", "auth_path"),
    [("/authx", "/auth"), ("/auth/legacy", "/auth"), ("/au", "/auth"), ("/api", "/api/auth")],
)
def test_a_mount_of_the_app_beside_the_auth_mount_is_refused(path: str, auth_path: str) -> None:
    # Where one mount's path starts with another's, Litestar finds neither for the longer
    # one's paths, or the shorter one takes them: `/auth/openapi.json` would reach `/au`.
    with pytest.raises(ConfigurationError, match=auth_path):
        Litestar([host_mount(path)], plugins=[S3AuthPlugin(make_service(), path=auth_path)])


@pytest.mark.parametrize("taken", [author, host_mount("/authx")])
def test_a_route_the_auth_mount_would_take_is_refused(taken: Any) -> None:
    # Litestar's mounts take every path that starts with theirs before a route with path
    # parameters, or another mount, is looked at: `/authors/1` would get the auth app's
    # 404, not the host's author.
    with pytest.raises(ConfigurationError, match="/auth"):
        Litestar([taken], plugins=[S3AuthPlugin(make_service())])
    with pytest.raises(ConfigurationError, match="/auth"):
        Litestar(
            [Router("/v1", route_handlers=[taken])],
            plugins=[S3AuthPlugin(make_service(), path="/v1/auth")],
        )


async def test_routes_the_auth_mount_leaves_alone_are_kept() -> None:
    # A plain route is looked at before a mount, a route below the mount's own path where
    # a segment ends takes that path (`/auth/callback/x`), and another path gets the
    # mount's answer as before.
    app = Litestar(
        [authors, callback, author], plugins=[S3AuthPlugin(make_service(), path="/account")]
    )
    async with client_for(app) as client:
        assert (await client.get("/authors")).json() == {"authors": "all"}
        assert (await client.get("/authors/1")).json() == {"author": 1}
    app = Litestar([authors, callback], plugins=[S3AuthPlugin(make_service())])
    async with client_for(app) as client:
        assert (await client.get("/authors")).json() == {"authors": "all"}
        assert (await client.get("/auth/callback/github")).json() == {"provider": "github"}
        assert (await client.get("/auth/openapi.json")).status_code == 200
