"""The forms a host's own document comes in, through both declarations of the middlewares
(`declare_rate_limits`, `declare_bearer_refusals`): a real Starlette app documented by its
SchemaGenerator, whose YAML docstrings key statuses by number, and whose document says
OpenAPI 3.0 or 3.1. What the host declares stays its own under either key, and the
document served is valid OpenAPI of the version it says."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import make_service
from declared_answers import listed_codes
from openapi_spec_validator import OpenAPIV30SpecValidator, OpenAPIV31SpecValidator, validate
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.schemas import SchemaGenerator
from test_app import client_for

from s3auth_asgi import declare_bearer_refusals
from s3auth_asgi.host_openapi import problem_definition
from s3auth_asgi.openapi_30 import schema_for_3_0
from s3auth_asgi.problems import PROBLEM_CONTENT_TYPE
from s3auth_asgi.ratelimit import (
    ObjectStoreRateLimitStore,
    RateLimit,
    RateLimiter,
    RateLimitRule,
    declare_rate_limits,
)
from s3auth_asgi.storage import ObjectStore

pytestmark = pytest.mark.anyio

RULES = [
    RateLimitRule("/items", "shared"),
    RateLimitRule("/busy", "shared"),
    RateLimitRule("/open", "local"),
]
BEARER = {"protected": {"/items": ("read",)}, "exclude": ("/openapi.json",)}


async def items(request: Request) -> JSONResponse:
    """responses:
    200:
      description: The items
    401:
      description: Sign in first
    429:
      description: Too many searches at once
    """
    return JSONResponse([])


async def open_(request: Request) -> JSONResponse:
    """responses:
    200:
      description: Anyone's
    """
    return JSONResponse({})


async def busy(request: Request) -> JSONResponse:
    """responses:
    200:
      description: Done
    503:
      description: Down for maintenance
    """
    return JSONResponse({})


def host(version: str) -> Starlette:
    generator = SchemaGenerator({"openapi": version, "info": {"title": "t", "version": "1"}})
    limits = {"shared": RateLimit(5, 60), "local": RateLimit(5, 60)}
    shared = ObjectStoreRateLimitStore(ObjectStore.from_url("memory://"))
    limiter = RateLimiter(limits, stores={"shared": shared})
    service = make_service()

    def schema(request: Request) -> JSONResponse:
        document = generator.get_schema(routes)
        declare_rate_limits(document, RULES, limiter)
        declare_bearer_refusals(document, {"tokens": service, **BEARER})
        return JSONResponse(document)

    routes = [
        Route("/items", items),
        Route("/open", open_),
        Route("/busy", busy),
        Route("/openapi.json", schema, include_in_schema=False),
    ]
    return Starlette(routes=routes)


def once_each(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    assert len(keys) == len(set(keys)), f"a key given twice: {keys}"
    return dict(pairs)


async def served(version: str) -> dict[str, Any]:
    async with client_for(host(version)) as client:
        answer = await client.get("/openapi.json")
    document: dict[str, Any] = json.loads(answer.text, object_pairs_hook=once_each)
    return document


async def test_a_status_a_yaml_docstring_keys_by_number_stays_the_hosts() -> None:
    paths = (await served("3.1.0"))["paths"]
    responses = paths["/items"]["get"]["responses"]
    assert set(responses) == {"200", "400", "401", "403", "429", "503"}
    refusal = responses["429"]
    assert refusal["description"] == "Too many searches at once"
    # Completed as a 429 the host declared under its text is: the problem, the headers.
    assert listed_codes(refusal["content"][PROBLEM_CONTENT_TYPE]["schema"]) == ["rate_limited"]
    assert {"Retry-After", "RateLimit-Policy", "RateLimit"} <= set(refusal["headers"])
    assert responses["401"]["description"] == "Sign in first"
    assert listed_codes(responses["401"]["content"][PROBLEM_CONTENT_TYPE]["schema"]) == [
        "authentication_required",
        "invalid_token",
        "token_expired",
    ]
    assert set(responses["401"]["headers"]) >= {"WWW-Authenticate"}
    unavailable = paths["/busy"]["get"]["responses"]["503"]
    assert unavailable["description"] == "Down for maintenance"
    assert listed_codes(unavailable["content"][PROBLEM_CONTENT_TYPE]["schema"]) == [
        "store_unavailable"
    ]
    # The host's own 503 may be its app's, which the middleware admitted: the fields too.
    assert set(unavailable["headers"]) == {"Retry-After", "RateLimit-Policy", "RateLimit"}


@pytest.mark.parametrize(
    ("version", "validator"),
    [("3.0.0", OpenAPIV30SpecValidator), ("3.1.0", OpenAPIV31SpecValidator)],
)
async def test_the_document_stays_valid_openapi_of_its_version(
    version: str, validator: Any
) -> None:
    document = await served(version)
    validate(document, cls=validator)
    problem = document["components"]["schemas"]["Problem"]
    if version == "3.1.0":
        assert problem == problem_definition()
    else:
        assert problem == schema_for_3_0(problem_definition())
        assert problem["properties"]["detail"] == {
            "type": "string",
            "nullable": True,
            "default": None,
        }
    for path in ("/items", "/open"):
        responses = document["paths"][path]["get"]["responses"]
        for status in ("429", "503") if path == "/items" else ("429", "401"):
            assert listed_codes(responses[status]["content"][PROBLEM_CONTENT_TYPE]["schema"])


def test_a_3_1_schema_in_the_3_0_form() -> None:
    ref = {"$ref": "#/components/schemas/Item"}
    given = {
        "type": "object",
        "properties": {
            "kind": {"const": "item", "examples": ["item"]},
            "size": {"type": ["integer", "null"], "exclusiveMinimum": 0},
            "owner": {"anyOf": [ref, {"type": "null"}]},
            "tags": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
            "either": {"oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]},
            "parent": {**ref, "description": "Its parent"},
            "nothing": {"type": "null"},
            "grant": {"anyOf": [{"const": "refresh"}, {"type": "null"}], "default": None},
            "options": {"type": "object", "properties": {}, "required": []},
        },
        "default": {"type": "null"},  # a value, not a schema: as it is
    }
    assert schema_for_3_0(given) == {
        "type": "object",
        "properties": {
            "kind": {"enum": ["item"], "example": "item"},
            "size": {"type": "integer", "nullable": True, "minimum": 0, "exclusiveMinimum": True},
            "owner": {"allOf": [ref], "nullable": True},
            "tags": {"type": "array", "items": {"type": "string", "nullable": True}},
            "either": {
                "oneOf": [
                    {"type": "string", "nullable": True},
                    {"type": "integer", "nullable": True},
                ]
            },
            "parent": {"allOf": [ref], "description": "Its parent"},
            "nothing": {"nullable": True, "enum": [None]},
            "grant": {"enum": ["refresh", None], "nullable": True, "default": None},
            "options": {"type": "object", "properties": {}},
        },
        "default": {"type": "null"},
    }
    assert given["properties"]["size"] == {"type": ["integer", "null"], "exclusiveMinimum": 0}
