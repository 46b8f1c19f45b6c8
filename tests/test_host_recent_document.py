"""A host's route that asks for a recent authentication (`max_age`) says so in the document
the host serves: FastAPI's under `include_auth`, Litestar's with `S3AuthPlugin`, and a
Starlette one its `SchemaGenerator` makes and `declare_bearer_refusals` is given the
endpoints of, in OpenAPI 3.1 and 3.0. Driven through each 401 (no token, a malformed,
revoked or expired one, one authenticated too long ago, one that says not when): the
route with `max_age` lists `reauthentication_required` and describes RFC 9470's
challenge, the route without lists it not, and every code listed is answered."""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import count
from typing import Any

import pytest
from declared_answers import listed_codes
from fastapi import FastAPI
from litestar import Litestar, get
from openapi_spec_validator import OpenAPIV30SpecValidator, OpenAPIV31SpecValidator, validate
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.schemas import SchemaGenerator
from support import Clock, login, make_clocked_service
from test_app import client_for
from test_host_problem_codes import Answers, bearer

from s3auth_asgi import (
    BearerTokenMiddleware,
    BlacklistMiddleware,
    S3AuthError,
    S3AuthService,
    auth_error_response,
    declare_bearer_refusals,
    requires,
)
from s3auth_asgi.app.fastapi import CurrentUser, include_auth, require_scopes
from s3auth_asgi.app.litestar import S3AuthPlugin, requires_scopes
from s3auth_asgi.problems import PROBLEM_CONTENT_TYPE

pytestmark = pytest.mark.anyio

MAX_AGE = 300
ROUTES = ("/items", "/transfer")
"""Any caller; one authenticated within MAX_AGE seconds."""
TOKEN_401 = {"authentication_required", "invalid_token", "token_expired", "token_revoked"}
DECLARED = {
    "/items": TOKEN_401,
    "/transfer": TOKEN_401 | {"reauthentication_required"},
}


def fastapi_host(service: S3AuthService, version: str) -> tuple[Any, str]:
    app = FastAPI()
    app.openapi_version = version
    include_auth(app, service, rate_limit=False)

    @app.get("/items")
    async def items(user: CurrentUser) -> dict[str, str]:
        return {"user": user.username}

    # As a route's dependency, not its argument: found wherever FastAPI resolves it.
    @app.get("/transfer", dependencies=[require_scopes(max_age=MAX_AGE)])
    async def transfer(user: CurrentUser) -> dict[str, str]:
        return {"user": user.username}

    return app, "/openapi.json"


@get("/items", guards=[requires_scopes()])
async def litestar_items() -> dict[str, bool]:
    return {"ok": True}


@get("/transfer", guards=[requires_scopes(), requires_scopes(max_age=MAX_AGE)])
async def litestar_transfer() -> dict[str, bool]:
    return {"ok": True}


def litestar_host(service: S3AuthService, version: str) -> tuple[Any, str]:
    app = Litestar(
        [litestar_items, litestar_transfer],
        plugins=[S3AuthPlugin(service, rate_limit=False)],
        logging_config=None,
    )
    return app, "/schema/openapi.json"


def starlette_host(service: S3AuthService, version: str) -> tuple[Any, str]:
    """The middleware requires a token on /items only: /transfer's comes of its
    decorator, which the document reads too."""
    schemas = SchemaGenerator({"openapi": version, "info": {"title": "t", "version": "1"}})
    settings: dict[str, Any] = {"tokens": service, "protected": ("/items",)}

    @requires(max_age=MAX_AGE, clock=service.clock)
    async def transfer(request: Request) -> JSONResponse:
        """responses:
        200:
          description: Done
        """
        return JSONResponse({"user": request.user.username})

    async def items(request: Request) -> JSONResponse:
        """responses:
        200:
          description: The caller
        """
        return JSONResponse({"user": request.user.username})

    def schema(request: Request) -> JSONResponse:
        document = schemas.get_schema(routes)
        endpoints = schemas.get_endpoints(routes)
        declare_bearer_refusals(document, settings, revocations=True, endpoints=endpoints)
        return JSONResponse(document)

    routes = [
        Route("/items", items),
        Route("/transfer", transfer),
        Route("/openapi.json", schema, include_in_schema=False),
    ]
    app = Starlette(routes=routes, exception_handlers={S3AuthError: refused})
    return BearerTokenMiddleware(BlacklistMiddleware(app, service), **settings), "/openapi.json"


async def refused(request: Request, error: Exception) -> Response:
    assert isinstance(error, S3AuthError)
    status, headers, body = auth_error_response(error)
    return Response(body, status, headers)


Build = Callable[[S3AuthService, str], tuple[Any, str]]
HOSTS: dict[str, tuple[Build, str]] = {
    "fastapi": (fastapi_host, "3.1.0"),
    "fastapi 3.0": (fastapi_host, "3.0.2"),
    "litestar": (litestar_host, "3.1.0"),  # Litestar writes 3.1 only
    "starlette": (starlette_host, "3.1.0"),
    "starlette 3.0": (starlette_host, "3.0.0"),
}


def declared_401(document: dict[str, Any]) -> dict[str, set[str]]:
    return {
        path: set(
            listed_codes(
                document["paths"][path]["get"]["responses"]["401"]["content"][PROBLEM_CONTENT_TYPE][
                    "schema"
                ]
            )
            or ()
        )
        for path in ROUTES
    }


@pytest.mark.parametrize("name", list(HOSTS))
async def test_a_route_with_max_age_lists_reauthentication_required_in_its_401(
    name: str,
) -> None:
    build, version = HOSTS[name]
    clock = Clock()
    service = make_clocked_service(clock=clock)
    app, document_path = build(service, version)
    async with client_for(app) as client:
        document = (await client.get(document_path)).json()
    validate(document, cls=OpenAPIV30SpecValidator if version < "3.1" else OpenAPIV31SpecValidator)
    assert declared_401(document) == DECLARED
    transfer = document["paths"]["/transfer"]["get"]["responses"]["401"]
    assert "reauthentication_required" in transfer["description"]
    assert f"{MAX_AGE} seconds" in transfer["description"]
    challenge = transfer["headers"]["WWW-Authenticate"]["description"]
    assert 'error="insufficient_user_authentication"' in challenge
    assert "max_age" in challenge
    items = document["paths"]["/items"]["get"]["responses"]["401"]
    assert "reauthentication_required" not in items["description"]
    assert "insufficient_user_authentication" not in str(items["headers"])

    seen: set[tuple[str, str, int, str]] = set()
    answers = Answers(document, seen)
    peers = count(1)
    user, pair = await login(service, "alice")
    _, ended = await login(service, "bob")
    await service.revoke_refresh_token(ended.refresh_token)
    # Issued before tokens carried auth_time: it says not when the user authenticated.
    undated, _ = service.tokens.issue_access_token(
        user_id=user.id, username="alice", session_id="f" * 32, is_admin=False, scopes=[]
    )

    async def each(*calls: list[tuple[str, str]]) -> None:
        for path in ROUTES:
            for headers in calls:
                async with client_for(app, peer=(f"192.0.2.{next(peers)}", 1)) as one:
                    one.event_hooks["response"].append(answers)
                    await one.get(path, headers=headers)

    valid = bearer(pair.access_token)
    await each([], bearer("x.y.z"), bearer(ended.access_token), bearer(undated), valid)
    clock.advance(MAX_AGE + 1)  # the token still valid, its authentication too old
    await each(valid)
    clock.advance(service.settings.access_token_seconds + service.settings.leeway_seconds)
    await each(valid)
    answered = {(path, code) for _, path, status, code in seen if status == 401}
    assert answered == {(path, code) for path, codes in DECLARED.items() for code in codes}


def test_a_decorated_endpoint_where_a_token_is_optional_is_declared_as_it_checks() -> None:
    """The middleware takes a token there if sent; the decorator requires one, with a
    scope: the document says what the endpoint refuses, and no recent authentication."""
    schemas = SchemaGenerator({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}})

    @requires("admin")
    async def report(request: Request) -> JSONResponse:
        """responses:
        200:
          description: The report
        """
        return JSONResponse({})

    routes = [Route("/report", report)]
    document = schemas.get_schema(routes)
    settings = {"tokens": make_clocked_service(), "protected": ("/items",)}
    declare_bearer_refusals(document, settings, endpoints=schemas.get_endpoints(routes))
    document = json.loads(json.dumps(document))  # as served: its YAML's status keys as text
    validate(document, cls=OpenAPIV31SpecValidator)
    operation = document["paths"]["/report"]["get"]
    assert operation["security"] == [{"bearer": ["admin"]}]
    codes = {
        int(status): set(listed_codes(answer["content"][PROBLEM_CONTENT_TYPE]["schema"]) or ())
        for status, answer in operation["responses"].items()
        if status != "200"
    }
    assert codes == {
        400: {"invalid_request"},
        401: {"authentication_required", "invalid_token", "token_expired"},
        403: {"insufficient_scope"},
    }
    # Without the endpoints, the token stays optional, as the middleware has it.
    plain = schemas.get_schema(routes)
    declare_bearer_refusals(plain, settings)
    assert plain["paths"]["/report"]["get"]["security"] == [{"bearer": []}, {}]
