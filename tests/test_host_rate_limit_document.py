"""A host's OpenAPI document declares what its RateLimitMiddleware rules add: the 429 and
the RateLimit fields, on the operations a rule limits whatever their path parameters
are, and nothing on those it limits for some values only, which are reported instead.

Real FastAPI and Litestar apps, behind the middleware and with the auth app merged in,
are asked for every operation until the middleware refuses; each answer's fields and
status are checked against the document they serve.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from itertools import count
from typing import Any

import httpx
import pytest
from conftest import make_service
from fastapi import FastAPI
from litestar import Litestar, get, post
from litestar.middleware import DefineMiddleware
from litestar.params import FromPath
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from test_app import client_for
from test_app_openapi_ratelimit import FAMILY

from s3auth_asgi.app.fastapi import include_auth
from s3auth_asgi.app.litestar import S3AuthPlugin
from s3auth_asgi.middleware.ratelimit import RateLimitMiddleware
from s3auth_asgi.problems import PROBLEM_CONTENT_TYPE, with_codes
from s3auth_asgi.ratelimit import (
    PartialMatch,
    RateLimit,
    RateLimiter,
    RateLimitRule,
    declare_rate_limits,
)

pytestmark = pytest.mark.anyio

LIMITS = {"api": RateLimit(2, 600), "hot": RateLimit(1, 600), "logins": RateLimit(1, 600)}
RULES = [
    RateLimitRule("/api/*", "api"),
    RateLimitRule("/items/1", "hot"),
    RateLimitRule("/reports", "api", methods=["POST"]),
    RateLimitRule("/auth/login", "logins", methods=["POST"]),
]
LIMITED = {
    ("get", "/api/items/{item_id}"),
    ("get", "/api/things"),
    ("post", "/reports"),
    ("post", "/auth/login"),
}
"""The operations some rule limits for every value of their parameters."""
PARTIAL = [PartialMatch("/items/{item_id}", "GET", RULES[1])]
CALLS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("get", "/api/items/{item_id}", "/api/items/7", {}),
    ("get", "/api/things", "/api/things", {}),
    ("get", "/items/{item_id}", "/items/2", {}),
    ("get", "/items/{item_id}", "/items/1", {}),
    ("get", "/reports", "/reports", {}),
    ("post", "/reports", "/reports", {}),
    ("get", "/health", "/health", {}),
    ("post", "/auth/login", "/auth/login", {"data": {"username": "nobody", "password": "x"}}),
]
"""(method, documented path, URL, options): each URL is asked three times, by a client of
its own, so every limit above is spent and the third answer, at the latest, refused."""

Declare = Callable[[dict[str, Any]], object]


def declaring(limiter: RateLimiter, send_headers: bool, partial: list[PartialMatch]) -> Declare:
    def declare(document: dict[str, Any]) -> None:
        partial.extend(declare_rate_limits(document, RULES, limiter, send_headers=send_headers))

    return declare


def fastapi_host(limiter: RateLimiter, send_headers: bool, declare: Declare) -> FastAPI:
    app = FastAPI()
    include_auth(app, make_service(), rate_limit=False, extend_document=declare)

    @app.get("/api/items/{item_id}")
    async def api_item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/api/things")
    async def things() -> list[int]:
        return [1]

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/reports")
    async def read_reports() -> list[str]:
        return []

    @app.post("/reports")
    async def write_report() -> dict[str, bool]:
        return {"written": True}

    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    app.add_middleware(
        RateLimitMiddleware,  # type: ignore[arg-type]
        limiter=limiter,
        rules=RULES,
        send_headers=send_headers,
    )
    return app


@get("/api/items/{item_id:int}")
async def api_item(item_id: FromPath[int]) -> dict[str, int]:
    return {"id": item_id}


@get("/api/things")
async def things() -> list[int]:
    return [1]


@get("/items/{item_id:int}")
async def item(item_id: FromPath[int]) -> dict[str, int]:
    return {"id": item_id}


@get("/reports")
async def read_reports() -> list[str]:
    return []


@post("/reports")
async def write_report() -> dict[str, bool]:
    return {"written": True}


@get("/health")
async def health() -> dict[str, bool]:
    return {"ok": True}


def litestar_host(limiter: RateLimiter, send_headers: bool, declare: Declare) -> Litestar:
    rate_limits = DefineMiddleware(
        RateLimitMiddleware, limiter=limiter, rules=RULES, send_headers=send_headers
    )
    return Litestar(
        [api_item, things, item, read_reports, write_report, health],
        middleware=[rate_limits],
        plugins=[S3AuthPlugin(make_service(), rate_limit=False, extend_document=declare)],
    )


HOSTS = {
    "fastapi": (fastapi_host, "/openapi.json"),
    "litestar": (litestar_host, "/schema/openapi.json"),
}
OPTIONS = {
    "fields": {"legacy": False, "send_headers": True},
    "legacy fields": {"legacy": True, "send_headers": True},
    "refusals only": {"legacy": True, "send_headers": False},
}


def _declared(responses: dict[str, Any], status: int) -> set[str]:
    return {name.lower() for name in responses[str(status)].get("headers", {})} & FAMILY


@pytest.mark.parametrize("host", HOSTS.values(), ids=HOSTS.keys())
@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
async def test_the_document_declares_what_the_rules_send(
    host: tuple[Callable[..., Any], str], options: dict[str, bool]
) -> None:
    make_host, schema_path = host
    limiter = RateLimiter(LIMITS, legacy_headers=options["legacy"])
    partial: list[PartialMatch] = []
    app = make_host(
        limiter, options["send_headers"], declaring(limiter, options["send_headers"], partial)
    )
    peers = count(1)
    answers: dict[tuple[str, str], list[httpx.Response]] = defaultdict(list)
    async with client_for(app, peer=("192.0.2.250", 1)) as client:
        document = (await client.get(schema_path)).json()
    for method, path, url, request_options in CALLS:
        async with client_for(app, peer=(f"192.0.2.{next(peers)}", 1)) as client:
            for _ in range(3):
                answers[method, path].append(await client.request(method, url, **request_options))
    validate(document, cls=OpenAPIV31SpecValidator)
    assert partial == PARTIAL
    for (method, path), sent_answers in answers.items():
        responses = document["paths"][path][method]["responses"]
        sent_by_status: dict[int, set[str]] = defaultdict(set)
        for answer in sent_answers:
            status = answer.status_code
            sent = {name.lower() for name in answer.headers} & FAMILY
            sent_by_status[status] |= sent
            if (method, path) not in LIMITED:
                continue
            where = (method, path, status, sent)
            assert str(status) in responses, where
            assert sent == _declared(responses, status), where
        if (method, path) in LIMITED:
            assert 429 in sent_by_status, (method, path)
            refusal = responses["429"]
            assert refusal["content"][PROBLEM_CONTENT_TYPE]["schema"] == with_codes(
                {"$ref": "#/components/schemas/Problem"}, ["rate_limited"]
            )
            for status, response in responses.items():
                declared = {name.lower() for name in response.get("headers", {})} & FAMILY
                if status == "429" or options["send_headers"]:
                    assert declared, (method, path, status)
                if int(status) in sent_by_status:
                    assert declared <= sent_by_status[int(status)], (method, path, status)
        else:
            assert "429" not in responses, (method, path)
            for response in responses.values():
                assert not set(map(str.lower, response.get("headers", {}))) & FAMILY, path
            if path != "/items/{item_id}":  # whose `/items/1` is refused undeclared
                assert all(not {n.lower() for n in a.headers} & FAMILY for a in sent_answers)
    # The partial match refuses `/items/1`, and only it.
    assert [a.status_code for a in answers["get", "/items/{item_id}"]] == [200] * 4 + [429] * 2


# The matching of templated paths, and what is added where -----------------------------------


def _document(*paths: str, method: str = "get") -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": {path: {method: {"responses": {"200": {"description": "OK"}}}} for path in paths},
    }


def _limited(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if "429" in operation["responses"]
    }


ONE = RateLimiter({"api": RateLimit(5, 60)})


@pytest.mark.parametrize(
    ("pattern", "path", "outcome"),
    [
        ("/api/*", "/api/{x}", "all"),
        ("/api/*", "/api/{x}/photos/{y}", "all"),
        ("/api*", "/apiary/{x}", "all"),
        ("/*", "/{x}", "all"),
        ("/api/a*", "/api/{x}", "some"),
        ("/api/*", "/{version}/items", "some"),
        ("/items/1", "/items/{id}", "some"),
        ("/items/1/*", "/items/{id}/photos", "some"),
        ("/items/1/photos", "/items/{id}/photos", "some"),
        ("/items/1/photos", "/items/{id}/photos/", "some"),
        ("/items/{id}", "/items/{id}", "some"),
        ("/items", "/items/", "all"),
        ("/items", "/items", "all"),
        ("/api/*", "/apiary/{x}", "none"),
        ("/items/1/2", "/items/{id}", "none"),
        ("/items/1/*", "/items/{id}", "none"),
        ("/items", "/other/{id}", "none"),
        ("/api/*", "/api", "all"),  # Litestar routes `/api` to a route `/api/`
    ],
)
def test_a_rule_covers_a_templated_path_for_all_some_or_no_values(
    pattern: str, path: str, outcome: str
) -> None:
    rule = RateLimitRule(pattern, "api")
    document = _document(path)
    partial = declare_rate_limits(document, [rule], ONE)
    assert bool(_limited(document)) is (outcome == "all")
    assert partial == ([PartialMatch(path, "GET", rule)] if outcome == "some" else [])


def test_methods_and_root_path_decide_too() -> None:
    document = _document("/items", "/items/{id}", method="head")
    document["paths"]["/items"]["post"] = {"responses": {"201": {"description": "Made"}}}
    # HEAD is counted where GET is; a rule for GET leaves the POST out.
    assert declare_rate_limits(document, [RateLimitRule("/v1/*", "api", ["GET"])], ONE) == []
    assert _limited(document) == set()
    declare_rate_limits(document, [RateLimitRule("/v1/*", "api", ["GET"])], ONE, root_path="/v1")
    assert _limited(document) == {("head", "/items"), ("head", "/items/{id}")}


def test_what_is_added_and_what_the_host_declared_stays() -> None:
    document = _document("/api/a", "/api/b")
    responses = document["paths"]["/api/a"]["get"]["responses"]
    responses["429"] = {"description": "Slow down", "headers": {"Retry-After": {"schema": {}}}}
    host_problem = {"type": "object", "properties": {"message": {"type": "string"}}}
    document["components"] = {"schemas": {"Problem": host_problem}}
    rules = [RateLimitRule("/api/*", "api"), RateLimitRule("/api/b", "api")]
    limiter = RateLimiter(LIMITS, legacy_headers=True)
    assert declare_rate_limits(document, rules, limiter) == []
    once = repr(document)
    assert declare_rate_limits(document, rules, limiter) == []
    assert repr(document) == once  # declaring again changes nothing
    validate(document, cls=OpenAPIV31SpecValidator)
    schemas = document["components"]["schemas"]
    assert schemas["Problem"] == host_problem  # the host's own, kept
    problem = {"$ref": "#/components/schemas/S3AuthProblem"}
    refusal = responses["429"]
    assert refusal["description"] == "Slow down"
    assert refusal["headers"]["Retry-After"] == {"schema": {}}
    assert refusal["content"] == {
        PROBLEM_CONTENT_TYPE: {"schema": with_codes(problem, ["rate_limited"])}
    }
    assert set(refusal["headers"]) == {
        "Retry-After",
        "RateLimit-Policy",
        "RateLimit",
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
    }
    assert set(responses["200"]["headers"]) == set(refusal["headers"]) - {"Retry-After"}
    assert "`api`" in responses["200"]["headers"]["RateLimit-Policy"]["description"]


def test_methods_given_once_through_are_declared_as_they_are_counted() -> None:
    document = _document("/items", method="post")
    rule = RateLimitRule("/items", "api", (name for name in ["post"]))
    assert rule.matches({"type": "http", "method": "POST", "path": "/items"})
    declare_rate_limits(document, [rule], ONE)
    assert _limited(document) == {("post", "/items")}
