"""FastAPI: `include_auth` mounts the auth app and merges it into the host's OpenAPI
document; `CurrentUser` and `require_scopes` protect the host's routes.

The document is fetched from the host's `/openapi.json` and validated, and the password
flow is driven as Swagger UI drives it: read the scheme's tokenUrl from the document, POST
the form there, send the access token to the operations that list the scheme.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import anyio
import httpx
import pytest
from conftest import make_service
from declared_answers import listed_codes
from fastapi import FastAPI, Request, WebSocket
from fastapi.staticfiles import StaticFiles
from fastapi.testclient import TestClient
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from pydantic import BaseModel
from starlette.testclient import WebSocketDenialResponse
from support import login, run_lifespan, websocket_scope, websocket_session
from test_app import PASSWORD, assert_problem, bearer, client_for, register

from s3auth_asgi import (
    AnonymousUser,
    AuthenticatedUser,
    BearerTokenMiddleware,
    BlacklistMiddleware,
    ConfigurationError,
    S3AuthService,
    current_user,
)
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.app.fastapi import CurrentUser, include_auth, require_scopes
from s3auth_asgi.app.host_document import SCOPE_DESCRIPTION, SECURITY_SCHEME, merge_auth_document
from s3auth_asgi.app.openapi import ADMIN_SCOPE_DESCRIPTION
from s3auth_asgi.openapi_problems import ERROR_DESCRIPTIONS, INVALID_REQUEST_DESCRIPTION
from s3auth_asgi.problems import PROBLEM_CONTENT_TYPE

pytestmark = pytest.mark.anyio

AUTH_DOCUMENT = create_auth_app(make_service(), rate_limit=False).openapi.for_mount("")
AUTH_OPERATIONS = {
    (method, path) for path, item in AUTH_DOCUMENT["paths"].items() for method in item
}


# Helpers shared with test_app_litestar.py ---------------------------------------------------


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def check_host_document(document: dict[str, Any], prefix: str = "/auth") -> None:
    """Valid OpenAPI 3.1, with every auth operation under `prefix`, on the one scheme."""
    validate(document, cls=OpenAPIV31SpecValidator)
    found = operations(document)
    assert {(m, prefix + p) for m, p in AUTH_OPERATIONS} <= set(found)
    ids = [operation["operationId"] for operation in found.values()]
    assert len(ids) == len(set(ids))
    for (method, path), operation in found.items():
        for requirement in operation.get("security", ()):
            assert set(requirement) <= {SECURITY_SCHEME}, (method, path)
        if path.startswith(prefix + "/"):
            assert operation["operationId"].startswith("auth_")
            assert all(tag.startswith("auth: ") for tag in operation["tags"])
    me = found[("get", f"{prefix}/me")]
    assert me["security"] == [{SECURITY_SCHEME: []}]
    assert "security" not in found[("post", f"{prefix}/login")]
    scheme = document["components"]["securitySchemes"][SECURITY_SCHEME]
    assert scheme["type"] == "oauth2"


async def swagger_login(
    client: httpx.AsyncClient, document: dict[str, Any], username: str
) -> dict[str, str]:
    """What Swagger UI's Authorize button does with the password flow: POST the form to
    the scheme's tokenUrl; then every call to an operation listing the scheme carries the
    access token. Returns those headers."""
    flow = document["components"]["securitySchemes"][SECURITY_SCHEME]["flows"]["password"]
    response = await client.post(
        flow["tokenUrl"],
        data={"grant_type": "password", "username": username, "password": PASSWORD},
        headers={"Accept": "application/json, text/plain, */*"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "bearer"
    return bearer(response.json())


# The host ---------------------------------------------------------------------------------


def host(service: S3AuthService, **fastapi_options: Any) -> FastAPI:
    app = FastAPI(**fastapi_options)
    include_auth(app, service, rate_limit=False)

    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/items")
    async def items(user: CurrentUser, request: Request) -> dict[str, Any]:
        return {"user": user.username, "request_user": request.user.username}

    @app.get("/admin")
    async def admin(user: Annotated[AuthenticatedUser, require_scopes("admin")]) -> dict[str, str]:
        return {"admin": user.username}

    @app.post("/reports", dependencies=[require_scopes("reports", "write")])
    async def reports() -> dict[str, bool]:
        return {"written": True}

    return app


async def test_the_host_document_holds_the_auth_operations_and_the_scheme() -> None:
    async with client_for(host(make_service())) as client:
        document = (await client.get("/openapi.json")).json()
        docs = await client.get("/docs")
    check_host_document(document)
    schemes = document["components"]["securitySchemes"]
    assert set(schemes) == {SECURITY_SCHEME}  # FastAPI's placeholder was replaced
    flow = schemes[SECURITY_SCHEME]["flows"]["password"]
    assert flow["tokenUrl"] == "/auth/login" and flow["refreshUrl"] == "/auth/refresh"
    assert set(flow["scopes"]) == {"admin", "reports", "write"}
    found = operations(document)
    assert found[("get", "/items")]["security"] == [{SECURITY_SCHEME: []}]
    assert found[("get", "/admin")]["security"] == [{SECURITY_SCHEME: ["admin"]}]
    assert found[("post", "/reports")]["security"] == [{SECURITY_SCHEME: ["reports", "write"]}]
    assert "security" not in found[("get", "/health")]
    assert found[("post", "/auth/logout")]["security"] == [{SECURITY_SCHEME: []}, {}]
    schemas = document["components"]["schemas"]
    assert {"RegisterRequest", "TokenResponse", "PublicUser", "Problem"} <= set(schemas)
    assert docs.status_code == 200 and "/openapi.json" in docs.text


GUARD_CODES = {
    "400": {"invalid_request"},
    "401": {"authentication_required", "invalid_token", "token_expired", "token_revoked"},
    "403": {"insufficient_scope"},
    "503": {"store_unavailable", "corrupt_object", "keys_unavailable", "store_unsafe"},
}
"""The codes each refusal of a host operation on the scheme lists (`host_auth`, and the
middlewares in front of it: test_host_problem_codes answers each)."""


def check_declared_refusals(
    document: dict[str, Any], refusing: dict[tuple[str, str], set[str]], problem: str = "Problem"
) -> None:
    """Each operation of `refusing` declares those problem answers as the auth document
    declares them, with the `problem` schema and the codes of GUARD_CODES; the other host
    operations declare none."""
    schema = {"$ref": f"#/components/schemas/{problem}"}
    for key, operation in operations(document).items():
        if key[1].startswith("/auth/"):
            continue
        responses = operation["responses"]
        for status in ("400", "401", "403", "503"):
            if status not in refusing.get(key, set()):
                assert status not in responses, (key, status)
                continue
            declared = responses[status]
            described = (
                INVALID_REQUEST_DESCRIPTION if status == "400" else ERROR_DESCRIPTIONS[int(status)]
            )
            assert declared["description"] == described, (key, status)
            assert set(declared["content"]) == {PROBLEM_CONTENT_TYPE}
            problem_schema = declared["content"][PROBLEM_CONTENT_TYPE]["schema"]
            assert problem_schema["allOf"][0] == schema, (key, status)
            assert set(listed_codes(problem_schema) or ()) == GUARD_CODES[status], (key, status)
            header = "Retry-After" if status == "503" else "WWW-Authenticate"
            assert set(declared["headers"]) == {header}


async def test_the_host_operations_on_the_scheme_declare_its_refusals() -> None:
    service = make_service()
    app = host(service)
    await service.create_user("alice", "alice@example.com", PASSWORD)

    @app.get("/own", responses={401: {"description": "Log in first"}})
    async def own(user: CurrentUser) -> dict[str, str]:
        return {"user": user.username}

    async with client_for(app) as client:
        document = (await client.get("/openapi.json")).json()
        alice = await swagger_login(client, document, "alice")
        assert_problem(await client.get("/items"), 401, "authentication_required")
        assert_problem(await client.get("/admin", headers=alice), 403, "insufficient_scope")
    check_host_document(document)
    found = operations(document)
    # A response the host declares itself keeps its words and gains the problem; the
    # missing ones are added.
    declared = found[("get", "/own")]["responses"].pop("401")
    assert declared["description"] == "Log in first"
    assert set(declared["content"]) == {PROBLEM_CONTENT_TYPE}
    assert (
        set(listed_codes(declared["content"][PROBLEM_CONTENT_TYPE]["schema"]) or ())
        == (GUARD_CODES["401"])
    )
    assert set(declared["headers"]) == {"WWW-Authenticate"}
    check_declared_refusals(
        document,
        {
            ("get", "/items"): {"400", "401", "503"},
            ("get", "/own"): {"400", "503"},
            ("get", "/admin"): {"400", "401", "403", "503"},
            ("post", "/reports"): {"400", "401", "403", "503"},
        },
    )


async def test_swagger_ui_password_flow_reaches_the_host_routes() -> None:
    service = make_service()
    await service.create_user("root", "root@example.com", PASSWORD, scopes=["admin"])
    async with client_for(host(service)) as client:
        document = (await client.get("/openapi.json")).json()
        register_path = next(
            path for (_, path), op in operations(document).items()
            if op["operationId"] == "auth_register"
        )  # fmt: skip
        await register(client, "alice", prefix=register_path.removesuffix("/register"))
        alice = await swagger_login(client, document, "alice")
        root = await swagger_login(client, document, "root")

        items = await client.get("/items", headers=alice)
        assert items.json() == {"user": "alice", "request_user": "alice"}
        assert (await client.get("/admin", headers=root)).json() == {"admin": "root"}
        me = await client.get("/auth/me", headers=alice)  # an auth operation, same token
        assert me.json()["username"] == "alice"

        refused = assert_problem(
            await client.get("/admin", headers=alice), 403, "insufficient_scope"
        )
        assert refused["detail"] == "This needs the scopes: admin"
        anonymous = await client.get("/items")
        assert_problem(anonymous, 401, "authentication_required")
        assert anonymous.headers["www-authenticate"] == 'Bearer realm="api"'
        forged = {"Authorization": "Bearer not.a.token"}
        assert_problem(await client.get("/items", headers=forged), 401, "invalid_token")
        twice = [*alice.items(), *alice.items()]
        repeated = await client.get("/items", headers=twice)
        assert_problem(repeated, 400, "invalid_request")
        assert 'error="invalid_request"' in repeated.headers["www-authenticate"]
        assert_problem(await client.post("/reports", headers=root), 403, "insufficient_scope")

        await client.post("/auth/logout", headers=alice)
        assert_problem(await client.get("/items", headers=alice), 401, "token_revoked")


SWAGGER_UI_POSTS = {
    # Its default, client credentials in the Authorization header, left empty: the form
    # leaves out every empty value (the scope when none is ticked).
    "header, empty": ({"Authorization": "Basic Og=="}, "grant_type=password&username=alice"),
    "header, filled": (
        {"Authorization": "Basic c3dhZ2dlci11aTpzM2NyZXQ="},
        "grant_type=password&scope=admin&username=alice",
    ),
    "request body": ({}, "grant_type=password&username=alice&client_id=swagger-ui"),
    # What a hand-written form, or FastAPI's OAuth2PasswordRequestForm's own tests, send.
    "every field": ({}, "grant_type=password&scope=&username=alice&client_id=&client_secret="),
}


@pytest.mark.parametrize(("headers", "form"), SWAGGER_UI_POSTS.values(), ids=SWAGGER_UI_POSTS)
async def test_what_swagger_ui_posts_to_the_token_url_logs_in(
    headers: dict[str, str], form: str
) -> None:
    service = make_service()
    await service.create_user("alice", "alice@example.com", PASSWORD)
    sent = {
        "Accept": "application/json, text/plain, */*",
        "Content-Type": "application/x-www-form-urlencoded",
        **headers,
    }
    async with client_for(host(service)) as client:
        document = (await client.get("/openapi.json")).json()
        token_url = document["components"]["securitySchemes"][SECURITY_SCHEME]["flows"]["password"][
            "tokenUrl"
        ]
        granted = await client.post(
            token_url, content=f"{form}&password=Secret123%21", headers=sent
        )
        assert granted.status_code == 200, granted.text
        items = await client.get("/items", headers=bearer(granted.json()))
        assert items.json()["user"] == "alice"
        # A refusal, as Swagger UI shows it: the `error` and `error_description` members.
        refused = await client.post(token_url, content=f"{form}&password=wrong", headers=sent)
    body = assert_problem(refused, 401, "invalid_credentials")
    assert (body["error"], body["error_description"]) == (
        "invalid_grant",
        "Invalid username or password",
    )


async def test_behind_the_middlewares_the_dependencies_take_their_caller() -> None:
    service = make_service()
    app = host(service)
    seen: list[object] = []

    @app.get("/whoami")
    async def whoami(user: CurrentUser, request: Request) -> dict[str, bool]:
        seen.append(request.scope["auth"])
        return {"same": request.scope["auth"].user is user}

    # Only BearerTokenMiddleware: the dependency still refuses revoked tokens.
    app.add_middleware(
        BearerTokenMiddleware,
        tokens=service,
        exclude=("/health", "/auth", "/auth/*", "/docs", "/docs/*", "/openapi.json"),
    )
    async with client_for(app) as client:
        document = (await client.get("/openapi.json")).json()
        await register(client, "alice")
        alice = await swagger_login(client, document, "alice")
        assert (await client.get("/whoami", headers=alice)).json() == {"same": True}
        assert type(seen[0]).__name__ == "VerifiedToken"
        assert_problem(await client.get("/items"), 401, "authentication_required")
        await client.post("/auth/logout", headers=alice)
        assert_problem(await client.get("/items", headers=alice), 401, "token_revoked")


async def test_with_both_middlewares_a_revoked_token_is_refused_before_the_route() -> None:
    service = make_service()
    app = host(service)
    app.add_middleware(BlacklistMiddleware, blacklist=service)
    app.add_middleware(BearerTokenMiddleware, tokens=service, protected=("/items",))
    async with client_for(app) as client:
        document = (await client.get("/openapi.json")).json()
        await register(client, "alice")
        alice = await swagger_login(client, document, "alice")
        assert (await client.get("/items", headers=alice)).status_code == 200
        # /admin is not protected by the middleware: the dependency verifies the token.
        assert_problem(await client.get("/admin", headers=alice), 403, "insufficient_scope")
        await client.post("/auth/logout-all", headers=alice)
        assert_problem(await client.get("/items", headers=alice), 401, "token_revoked")


async def test_without_the_middleware_current_user_is_the_caller_a_dependency_verified() -> None:
    service = make_service()
    app = host(service)

    @app.get("/whoami")
    async def whoami(user: CurrentUser) -> dict[str, str]:
        seen: list[str] = []

        async def in_a_task() -> None:
            seen.append(current_user().username)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(in_a_task)  # started inside the request: it inherits the caller
        return {"current": current_user().username, "in_a_task": seen[0]}

    @app.get("/whoami-sync")
    def whoami_sync(user: CurrentUser) -> dict[str, str]:
        return {"current": current_user().username}  # in FastAPI's thread pool

    @app.get("/public")
    async def public() -> dict[str, bool]:
        # Nothing here verifies a token: the caller is anonymous, token or not.
        return {"anonymous": isinstance(current_user(), AnonymousUser)}

    async with client_for(app) as client:
        _, tokens = await login(service)
        alice = {"Authorization": f"Bearer {tokens.access_token}"}
        whoami_answer = await client.get("/whoami", headers=alice)
        assert whoami_answer.json() == {"current": "alice", "in_a_task": "alice"}
        assert (await client.get("/whoami-sync", headers=alice)).json() == {"current": "alice"}
        assert (await client.get("/public", headers=alice)).json() == {"anonymous": True}
        assert_problem(await client.get("/whoami"), 401, "authentication_required")
    # The request's caller does not outlive it in the task that sent it.
    assert isinstance(current_user(), AnonymousUser)


# WebSocket routes ---------------------------------------------------------------------------


def websocket_host(service: S3AuthService) -> FastAPI:
    app = FastAPI()
    include_auth(app, service, rate_limit=False)

    @app.websocket("/ws")
    async def chat(websocket: WebSocket, user: CurrentUser) -> None:
        await websocket.accept()
        await websocket.send_text(f"{user.username} {websocket.user.username}")
        await websocket.close()

    @app.websocket("/ws/admin")
    async def admin(
        websocket: WebSocket, user: Annotated[AuthenticatedUser, require_scopes("admin")]
    ) -> None:
        await websocket.accept()
        await websocket.close()

    return app


def test_websocket_routes_take_the_caller_and_deny_others_with_their_problem() -> None:
    service = make_service()
    with TestClient(websocket_host(service)) as client:
        _, pair = client.portal.call(login, service)
        token = {"Authorization": f"Bearer {pair.access_token}"}
        with client.websocket_connect("/ws", headers=token) as websocket:
            assert websocket.receive_text() == "alice alice"
        # Starlette's test client offers the websocket.http.response extension: the
        # refusal is the HTTP problem response, challenge and all.
        with pytest.raises(WebSocketDenialResponse) as anonymous, client.websocket_connect("/ws"):
            pass
        with (
            pytest.raises(WebSocketDenialResponse) as not_admin,
            client.websocket_connect("/ws/admin", headers=token),
        ):
            pass
        client.portal.call(service.revoke_refresh_token, pair.refresh_token)
        with (
            pytest.raises(WebSocketDenialResponse) as revoked,
            client.websocket_connect("/ws", headers=token),
        ):
            pass
    assert_problem(anonymous.value, 401, "authentication_required")
    assert anonymous.value.headers["www-authenticate"] == 'Bearer realm="api"'
    assert_problem(not_admin.value, 403, "insufficient_scope")
    assert not_admin.value.headers["www-authenticate"].endswith('scope="admin"')
    assert_problem(revoked.value, 401, "token_revoked")


async def test_without_the_extension_a_websocket_route_closes_with_1008_and_the_code() -> None:
    service = make_service()
    app = websocket_host(service)
    anonymous = await websocket_session(app, websocket_scope("/ws"))
    assert anonymous.sent == [
        {"type": "websocket.close", "code": 1008, "reason": "authentication_required"}
    ]
    _, pair = await login(service)
    headers = [(b"authorization", f"Bearer {pair.access_token}".encode())]
    assert (await websocket_session(app, websocket_scope("/ws", headers))).texts == ["alice alice"]
    not_admin = await websocket_session(app, websocket_scope("/ws/admin", headers))
    assert not_admin.sent == [
        {"type": "websocket.close", "code": 1008, "reason": "insufficient_scope"}
    ]


async def test_a_refusal_after_accept_closes_with_1008_and_the_code() -> None:
    # Once accepted, the handshake has had its answer: where the server could have taken a
    # problem response in its place (uvicorn, Hypercorn), one now is a protocol error.
    service = make_service()
    app = FastAPI()
    include_auth(app, service, rate_limit=False)

    @app.websocket("/ws")
    async def renewing(websocket: WebSocket, user: CurrentUser) -> None:
        await websocket.accept()
        service.decode_token(await websocket.receive_text())  # the client's renewed token
        await websocket.send_text("renewed")

    _, pair = await login(service)
    headers = [(b"authorization", f"Bearer {pair.access_token}".encode())]
    for extensions in ({"websocket.http.response": {}}, {}):
        scope = {**websocket_scope("/ws", headers), "extensions": extensions}
        session = await websocket_session(app, scope, text="not.a.token")
        assert session.sent == [
            {"type": "websocket.accept", "subprotocol": None, "headers": []},
            {"type": "websocket.close", "code": 1008, "reason": "invalid_token"},
        ], extensions


class PublicUser(BaseModel):
    """The host's own model of that name, unlike the auth app's."""

    nickname: str


class Problem(BaseModel):
    message: str


async def test_schema_names_the_host_uses_are_renamed_in_the_auth_operations() -> None:
    app = host(make_service())

    @app.get("/people/{name}", responses={404: {"model": Problem}})
    async def person(name: str) -> PublicUser:
        return PublicUser(nickname=name)

    async with client_for(app) as client:
        document = (await client.get("/openapi.json")).json()
    check_host_document(document)
    schemas = document["components"]["schemas"]
    assert set(schemas["PublicUser"]["properties"]) == {"nickname"}
    assert "username" in schemas["S3AuthPublicUser"]["properties"]
    assert "code" in schemas["S3AuthProblem"]["properties"]
    found = operations(document)

    def ref(operation: dict[str, Any], status: str, media_type: str) -> str:
        schema = operation["responses"][status]["content"][media_type]["schema"]
        # An auth operation's problem is the schema with its codes (`problem_codes`).
        found: str = schema["allOf"][0]["$ref"] if "allOf" in schema else schema["$ref"]
        return found

    assert ref(found[("get", "/people/{name}")], "200", "application/json").endswith("/PublicUser")
    assert ref(found[("get", "/people/{name}")], "404", "application/json").endswith("/Problem")
    me = found[("get", "/auth/me")]
    assert ref(me, "200", "application/json") == "#/components/schemas/S3AuthPublicUser"
    assert ref(me, "401", "application/problem+json") == "#/components/schemas/S3AuthProblem"
    page = schemas["UserPage"]["properties"]["users"]["items"]["$ref"]
    assert page == "#/components/schemas/S3AuthPublicUser"
    # The host's operations on the scheme refuse with the auth app's Problem too.
    assert ref(found[("get", "/items")], "401", "application/problem+json") == (
        "#/components/schemas/S3AuthProblem"
    )


def test_a_schema_pointing_at_a_renamed_one_is_renamed_too() -> None:
    auth_schemas = AUTH_DOCUMENT["components"]["schemas"]
    host_document = {
        "openapi": "3.1.0",
        "info": {"title": "Host", "version": "1"},
        "paths": {},
        "components": {
            "schemas": {
                "PublicUser": {"type": "object", "properties": {"nickname": {"type": "string"}}},
                # Equal to the auth app's, but its ref names the host's PublicUser.
                "UserPage": auth_schemas["UserPage"],
                "Problem": auth_schemas["Problem"],  # equal: shared
            }
        },
    }
    merged = merge_auth_document(host_document, AUTH_DOCUMENT, prefix="/auth")
    validate(merged, cls=OpenAPIV31SpecValidator)
    schemas = merged["components"]["schemas"]
    assert schemas["UserPage"] == auth_schemas["UserPage"]
    users = schemas["S3AuthUserPage"]["properties"]["users"]["items"]["$ref"]
    assert users == "#/components/schemas/S3AuthPublicUser"
    assert "S3AuthProblem" not in schemas
    listing = merged["paths"]["/auth/admin/users"]["get"]["responses"]["200"]
    assert listing["content"]["application/json"]["schema"]["$ref"].endswith("/S3AuthUserPage")
    assert host_document["paths"] == {}  # the host's document is not modified


async def test_the_merged_document_is_kept_until_the_routes_change() -> None:
    app = host(make_service())
    first = app.openapi()
    assert app.openapi() is first and app.openapi_schema is first

    @app.get("/later")
    async def later() -> dict[str, bool]:
        return {"ok": True}

    second = app.openapi()
    assert second is not first
    assert ("get", "/later") in operations(second)
    check_host_document(second)


async def test_the_token_url_follows_the_root_path() -> None:
    """uvicorn --root-path /api: FastAPI serves the document with /api as its server."""
    app = host(make_service())
    async with client_for(app, root_path="/api") as client:
        document = (await client.get("/api/openapi.json")).json()
        assert document["servers"] == [{"url": "/api"}]
        flow = document["components"]["securitySchemes"][SECURITY_SCHEME]["flows"]["password"]
        assert flow["tokenUrl"] == "/api/auth/login"
        assert flow["refreshUrl"] == "/api/auth/refresh"
        check_host_document(document)  # paths stay below the server URL
        await register(client, "alice", prefix="/api/auth")
        alice = await swagger_login(client, document, "alice")
        assert (await client.get("/api/items", headers=alice)).status_code == 200
    # Outside a request (or at the root) the document is FastAPI's own, unchanged.
    assert "servers" not in app.openapi()
    assert (
        app.openapi()["components"]["securitySchemes"][SECURITY_SCHEME]["flows"]["password"][
            "tokenUrl"
        ]
        == "/auth/login"
    )


async def test_the_admin_scope_is_described_as_administration() -> None:
    # `admin` makes an account an administrator; the host's scopes are ordinary grants.
    app = host(make_service())
    async with client_for(app) as client:
        at_root = (await client.get("/openapi.json")).json()
    async with client_for(app, root_path="/api") as client:
        below_root_path = (await client.get("/api/openapi.json")).json()
    for document in (at_root, below_root_path):
        flow = document["components"]["securitySchemes"][SECURITY_SCHEME]["flows"]["password"]
        assert flow["scopes"] == {
            "admin": ADMIN_SCOPE_DESCRIPTION,
            "reports": SCOPE_DESCRIPTION,
            "write": SCOPE_DESCRIPTION,
        }


async def test_the_token_url_follows_the_first_server_url() -> None:
    app = host(make_service(), servers=[{"url": "https://api.example.com/v1/"}])
    async with client_for(app) as client:
        document = (await client.get("/openapi.json")).json()
    flow = document["components"]["securitySchemes"][SECURITY_SCHEME]["flows"]["password"]
    assert flow["tokenUrl"] == "https://api.example.com/v1/auth/login"


async def test_a_host_route_under_the_prefix_answers_and_the_document_agrees(
    tmp_path: Path,
) -> None:
    # Declared after include_auth, as in Litestar: the host's path wins, every method of it.
    app = host(make_service())

    @app.get("/auth/callback")
    async def callback() -> dict[str, str]:
        return {"host": "callback"}

    @app.get("/auth/me")
    async def me() -> dict[str, str]:
        return {"host": "me"}

    # Another mount is not a host route: it keeps its place in the order.
    (tmp_path / "index.html").write_text("static")
    app.mount("/", StaticFiles(directory=tmp_path, html=True))
    async with client_for(app) as client:
        document = (await client.get("/openapi.json")).json()
        assert (await client.get("/auth/callback")).json() == {"host": "callback"}
        assert (await client.get("/auth/me")).json() == {"host": "me"}
        assert (await client.patch("/auth/me", json={"full_name": "A"})).status_code == 405
        await register(client, "alice")  # the auth app answers the rest of the prefix
        assert (await client.get("/")).text == "static"
    found = operations(document)
    assert found[("get", "/auth/callback")]["operationId"] == "callback_auth_callback_get"
    assert found[("get", "/auth/me")]["operationId"] == "me_auth_me_get"
    assert set(document["paths"]["/auth/me"]) == {"get"}  # PATCH /auth/me: 405, not listed
    assert ("post", "/auth/register") in found


async def test_an_id_holding_a_line_break_gets_the_auth_apps_problem() -> None:
    # The document lists the auth app's 404, a problem; Starlette's Mount does not match a
    # path holding a line break, which FastAPI then answered with its own JSON 404.
    service = make_service()
    _, pair = await login(service)
    alice = {"Authorization": f"Bearer {pair.access_token}"}
    async with client_for(host(service)) as client:
        for path in ("/auth/sessions/a%0Ab", "/auth/sessions/%0D", "/auth/nowhere%0A"):
            refused = await client.delete(path, headers=alice)
            assert_problem(refused, 404, "not_found" if "nowhere" in path else "session_not_found")


async def _provider(provider: str) -> dict[str, str]:
    return {"provider": provider}


@pytest.mark.parametrize(
    ("route", "taken"),
    [
        ("/auth/{provider}", "POST /auth/register"),
        ("/{page:path}", "POST /auth/register"),  # a catch-all page route
        ("/auth/admin/{section}", "GET, POST /auth/admin/users"),
        # Parameters are tried with an id's form, digits only: a converter's too.
        ("/auth/admin/users/{number:int}/{what}", "POST /auth/admin/users/{user_id}/revoke"),
    ],
)
async def test_a_host_route_that_would_take_auth_paths_is_refused(route: str, taken: str) -> None:
    # The host's routes come first: one with a path parameter matching an auth path would
    # answer it (405 to the auth app's method), while the document listed the auth app's.
    refusal = re.escape(f"{route!r} would answer {taken}")
    declared_first = FastAPI()
    declared_first.get(route)(_provider)
    with pytest.raises(ConfigurationError, match=refusal):
        include_auth(declared_first, make_service())
    # Declared after include_auth: refused at startup, and when the document is built.
    declared_after = FastAPI()
    include_auth(declared_after, make_service())
    declared_after.get(route)(_provider)
    with pytest.raises(ConfigurationError, match=refusal):
        await run_lifespan(declared_after)
    with pytest.raises(ConfigurationError, match=refusal):
        declared_after.openapi()


async def test_a_host_route_in_place_of_a_templated_auth_path_replaces_it() -> None:
    # The same path with other parameter names (or a converter) is the same path: the
    # host's, documented.
    app = host(make_service())

    @app.get("/auth/sessions/{sid}")
    async def session(sid: str) -> dict[str, str]:
        return {"session": sid}

    async with client_for(app) as client:
        document = (await client.get("/openapi.json")).json()
        assert (await client.get("/auth/sessions/abc")).json() == {"session": "abc"}
        assert (await client.delete("/auth/sessions/abc")).status_code == 405
    validate(document, cls=OpenAPIV31SpecValidator)
    found = operations(document)
    assert "/auth/sessions/{session_id}" not in document["paths"]
    assert set(document["paths"]["/auth/sessions/{sid}"]) == {"get"}
    assert ("get", "/auth/sessions") in found


async def test_misuse_is_refused() -> None:
    app = FastAPI()
    include_auth(app, make_service())
    with pytest.raises(ConfigurationError, match="already"):
        include_auth(app, make_service())
    with pytest.raises(ConfigurationError, match="must start"):
        include_auth(FastAPI(), make_service(), prefix="/auth/")
    with pytest.raises(ConfigurationError):
        require_scopes("two words")

    bare = FastAPI()

    @bare.get("/items")
    async def items(user: CurrentUser) -> dict[str, str]:
        return {"user": user.username}

    async with client_for(bare) as client:
        refused = await client.get("/items")
    assert (refused.status_code, refused.json()["code"]) == (500, "auth_not_configured")
