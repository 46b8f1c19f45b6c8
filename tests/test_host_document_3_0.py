"""A host whose document says OpenAPI 3.0 (FastAPI's `app.openapi_version = "3.0.2"`, for
client generators that take only 3.0) gets the auth operations in 3.0's form, and serves a
valid 3.0 document; one of 3.1, the default, gets them exactly as the auth app documents
them. Litestar writes 3.1 only, so FastAPI is the host that can say 3.0."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from conftest import make_service
from fastapi import FastAPI
from openapi_spec_validator import OpenAPIV30SpecValidator, OpenAPIV31SpecValidator, validate
from test_app import client_for

from s3auth_asgi import AuthenticatedUser
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.app.fastapi import CurrentUser, include_auth, require_scopes
from s3auth_asgi.app.host_document import OPERATION_ID_PREFIX, SECURITY_SCHEME
from s3auth_asgi.host_openapi import problem_definition
from s3auth_asgi.openapi_30 import schema_for_3_0
from s3auth_asgi.ratelimit import RateLimit, RateLimiter, RateLimitRule, declare_rate_limits

pytestmark = pytest.mark.anyio

# Browser mode and rate limits: the refresh cookie's parameters and scheme, the 429s' headers.
AUTH = create_auth_app(make_service(refresh_cookie=True)).openapi.for_mount("")
RULES = [RateLimitRule("/items", "items")]
LIMITER = RateLimiter({"items": RateLimit(5, 60)})


def host(openapi_version: str | None) -> FastAPI:
    app = FastAPI()
    if openapi_version is not None:
        app.openapi_version = openapi_version

    def extend(document: dict[str, Any]) -> None:
        declare_rate_limits(document, RULES, LIMITER)

    include_auth(app, make_service(refresh_cookie=True), extend_document=extend)

    @app.get("/items")
    async def items(user: CurrentUser, limit: int = 10) -> dict[str, str]:
        return {"user": user.username}

    @app.get("/admin")
    async def admin(user: Annotated[AuthenticatedUser, require_scopes("admin")]) -> dict[str, str]:
        return {"admin": user.username}

    return app


async def served(openapi_version: str | None) -> dict[str, Any]:
    async with client_for(host(openapi_version)) as client:
        answer = await client.get("/openapi.json")
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


def auth_operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        operation["operationId"]: operation
        for item in document["paths"].values()
        for operation in item.values()
        if operation["operationId"].startswith(OPERATION_ID_PREFIX)
    }


def schemas_of(operation: dict[str, Any]) -> list[dict[str, Any]]:
    """Every Schema Object an operation holds: its parameters', its body's, and its
    responses' (content and headers), in order."""
    found = [parameter["schema"] for parameter in operation.get("parameters", ())]
    holders = [operation.get("requestBody", {}), *operation["responses"].values()]
    for holder in holders:
        found += [media["schema"] for media in holder.get("content", {}).values()]
        found += [header["schema"] for header in holder.get("headers", {}).values()]
    return found


async def test_a_3_0_host_serves_a_valid_3_0_document_with_the_auth_operations() -> None:
    document = await served("3.0.2")
    assert document["openapi"] == "3.0.2"
    validate(document, cls=OpenAPIV30SpecValidator)
    schemas = document["components"]["schemas"]
    for name, schema in AUTH["components"]["schemas"].items():
        assert schemas[name] == schema_for_3_0(schema), name
    # The declarations find the problem schema the merge placed: one, in 3.0's form.
    assert schemas["Problem"] == schema_for_3_0(problem_definition())
    assert "S3AuthProblem" not in schemas
    merged = auth_operations(document)
    for path, item in AUTH["paths"].items():
        for method, operation in item.items():
            moved = merged[OPERATION_ID_PREFIX + operation["operationId"]]
            assert document["paths"]["/auth" + path][method] is moved
            for got, given in zip(schemas_of(moved), schemas_of(operation), strict=True):
                assert got == schema_for_3_0(given), (method, path)
    scheme = document["components"]["securitySchemes"][SECURITY_SCHEME]
    assert set(scheme["flows"]["password"]["scopes"]) == {"admin"}


async def test_a_3_1_host_gets_the_auth_operations_as_they_are() -> None:
    document = await served(None)
    assert document["openapi"] == "3.1.0"
    validate(document, cls=OpenAPIV31SpecValidator)
    schemas = document["components"]["schemas"]
    for name, schema in AUTH["components"]["schemas"].items():
        assert schemas[name] == schema, name
    merged = auth_operations(document)
    for item in AUTH["paths"].values():
        for operation in item.values():
            moved = merged[OPERATION_ID_PREFIX + operation["operationId"]]
            assert schemas_of(moved) == schemas_of(operation)
            assert moved.get("requestBody") == operation.get("requestBody")
            assert moved.get("parameters") == operation.get("parameters")
    # The same document but for the schemas' form: only the version decides.
    three_0 = await served("3.0.2")
    assert set(three_0["paths"]) == set(document["paths"])
    assert three_0["components"]["securitySchemes"] == document["components"]["securitySchemes"]
