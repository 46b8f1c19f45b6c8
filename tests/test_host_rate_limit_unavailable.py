"""The 503 of a limit kept in a store that can fail: RateLimitMiddleware answers it when
the store of a limit a request counts against fails, and `declare_rate_limits` declares
it, with every code it may carry and the headers it is sent with, on the operations such a
limit covers; a limit kept in memory adds none.

Real Starlette and FastAPI hosts over an ObjectStoreRateLimitStore on a fault-injecting
store are driven through each failure: every 503 answered is declared with its code, and
every code declared is answered."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import obstore
import pytest
from conftest import make_service
from declared_answers import listed_codes
from fastapi import FastAPI
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.schemas import SchemaGenerator
from support import StoreWrapper, make_clocked_service
from test_app import client_for
from test_storage_probes import UnconditionalStore

from s3auth_asgi import StoreUnavailableError
from s3auth_asgi.app.fastapi import include_auth
from s3auth_asgi.middleware.ratelimit import RateLimitMiddleware
from s3auth_asgi.openapi_problems import ERROR_DESCRIPTIONS
from s3auth_asgi.problems import PROBLEM_CONTENT_TYPE, with_codes
from s3auth_asgi.ratelimit import (
    ObjectStoreRateLimitStore,
    RateLimit,
    RateLimiter,
    RateLimitRule,
    declare_rate_limits,
)
from s3auth_asgi.ratelimit.stores import BucketState
from s3auth_asgi.storage import CorruptObjectError, ObjectStore, Store, keys

pytestmark = pytest.mark.anyio
R = TypeVar("R")

LIMITS = {"shared": RateLimit(5, 600), "local": RateLimit(5, 600)}
RULES = [
    RateLimitRule("/shared", "shared"),
    RateLimitRule("/both", "local"),
    RateLimitRule("/both", "shared"),
    RateLimitRule("/local", "local"),
    RateLimitRule("/auth/login", "shared", methods=["POST"]),
]
PROBLEM = {"$ref": "#/components/schemas/Problem"}
FIELDS = {"ratelimit-policy", "ratelimit", "retry-after"}


class Faulty(StoreWrapper):
    """A store whose reads fail as `fault` says: unreachable, or an object it cannot read
    and whose version it cannot tell (no `etag` to overwrite it on); keeps the requests
    asked of it."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.fault: str | None = None
        self.asked: list[str] = []

    async def call(self, name: str, run: Callable[[], Awaitable[R]]) -> R:
        self.asked.append(name)
        if name == "get" and self.fault == "unreachable":
            raise StoreUnavailableError("GET failed: ConnectError")
        if name == "get" and self.fault == "unreadable":
            raise CorruptObjectError()
        return await run()


def limiter_over(store: Store) -> RateLimiter:
    return RateLimiter(LIMITS, stores={"shared": ObjectStoreRateLimitStore(store)})


async def ok(request: Request) -> JSONResponse:
    """responses:
    200:
      description: Done
    """
    return JSONResponse({"ok": True})


def starlette_host(limiter: RateLimiter) -> Starlette:
    generator = SchemaGenerator({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}})

    def schema(request: Request) -> JSONResponse:
        document = generator.get_schema(routes)
        declare_rate_limits(document, RULES, limiter)
        return JSONResponse(document)

    routes = [
        Route("/shared", ok),
        Route("/both", ok),
        Route("/local", ok),
        Route("/openapi.json", schema, include_in_schema=False),
    ]
    return RateLimitMiddleware(Starlette(routes=routes), limiter, RULES)  # type: ignore[return-value]


def fastapi_host(limiter: RateLimiter) -> FastAPI:
    app = FastAPI()

    def declare(document: dict[str, Any]) -> None:
        declare_rate_limits(document, RULES, limiter)

    include_auth(app, make_service(), rate_limit=False, extend_document=declare)
    for path in ("/shared", "/both", "/local"):
        app.get(path)(ok)
    app.add_middleware(RateLimitMiddleware, limiter=limiter, rules=RULES)  # type: ignore[arg-type]
    return app


CALLS = [("get", "/shared"), ("get", "/both"), ("get", "/local")]
AUTH_LOGIN = ("post", "/auth/login")


@pytest.mark.parametrize("make_host", [starlette_host, fastapi_host], ids=["starlette", "fastapi"])
async def test_the_503_of_a_limit_in_a_store_is_declared_with_each_code_it_answers(
    make_host: Callable[[RateLimiter], Any],
) -> None:
    faulty = Faulty(ObjectStore.from_url("memory://"))
    app = make_host(limiter_over(faulty))
    async with client_for(app) as client:
        document = (await client.get("/openapi.json")).json()
    validate(document, cls=OpenAPIV31SpecValidator)
    calls = [*CALLS, AUTH_LOGIN] if make_host is fastapi_host else CALLS
    answered: set[tuple[str, str, str]] = set()
    for fault in ("unreachable", "unreadable"):
        faulty.fault = fault
        for method, path in calls:
            faulty.asked.clear()
            async with client_for(app) as client:
                form = {"username": "x", "password": "y"} if method == "post" else None
                answer = await client.request(method, path, data=form)
            if path == "/local":  # kept in memory: the store is never asked
                assert (answer.status_code, faulty.asked) == (200, [])
                continue
            assert answer.status_code == 503, (fault, path, answer.text)
            assert faulty.asked == ["get"]  # the state's read, which failed: nothing written
            assert answer.headers["content-type"] == PROBLEM_CONTENT_TYPE
            assert answer.headers["retry-after"] == "5"
            assert not {name.lower() for name in answer.headers} & (FIELDS - {"retry-after"})
            declared = document["paths"][path][method]["responses"]["503"]
            codes = listed_codes(declared["content"][PROBLEM_CONTENT_TYPE]["schema"])
            assert codes is not None and answer.json()["code"] in codes, (path, answer.text)
            answered.add((method, path, answer.json()["code"]))
    unavailable = {
        "description": ERROR_DESCRIPTIONS[503],
        "content": {
            PROBLEM_CONTENT_TYPE: {
                "schema": with_codes(PROBLEM, ["store_unavailable", "corrupt_object"])
            }
        },
        "headers": {"Retry-After": {"description": "Seconds to wait before retrying"}},
    }
    for method, path in CALLS[:2]:
        declared = document["paths"][path][method]["responses"]["503"]
        # Retry-After, and none of the RateLimit fields: the middleware sends none with it.
        assert set(declared["headers"]) == {"Retry-After"}
        declared["headers"]["Retry-After"].pop("schema")
        assert declared == unavailable, path
        assert {code for m, p, code in answered if (m, p) == (method, path)} == {
            "store_unavailable",
            "corrupt_object",
        }
    assert "503" not in document["paths"]["/local"]["get"]["responses"]
    if make_host is fastapi_host:
        # The auth operation's own 503, with its own codes, stays as the auth app has it.
        login = document["paths"]["/auth/login"]["post"]["responses"]["503"]
        assert {"store_unavailable", "corrupt_object", "server_busy"} <= set(
            listed_codes(login["content"][PROBLEM_CONTENT_TYPE]["schema"]) or ()
        )
        assert login["description"] != ERROR_DESCRIPTIONS[503]


async def test_a_store_that_tells_versions_is_declared_with_what_it_can_answer() -> None:
    """The object store tells every object's version, so an unreadable state is
    overwritten, not answered 503: `store_unavailable` alone. The service's store, where its
    conditional writes are yet to be checked, adds `store_unsafe`, which a store lacking
    one is answered (here over a wrapper, which may not tell versions: `corrupt_object`)."""
    store = ObjectStore.from_url("memory://")
    # Wrapped, the store names no URL and is taken for the service's S3 bucket.
    unconditional = StoreWrapper(UnconditionalStore.from_url("memory://"))
    unsafe = make_clocked_service("s3://bucket", store=unconditional).store
    every = ["store_unavailable", "corrupt_object", "store_unsafe"]
    for over, codes in ((store, ["store_unavailable"]), (unsafe, every)):
        limiter = limiter_over(over)
        document = {
            "openapi": "3.1.0",
            "info": {"title": "t", "version": "1"},
            "paths": {"/shared": {"get": {"responses": {"200": {"description": "OK"}}}}},
        }
        declare_rate_limits(document, RULES, limiter)
        declared = document["paths"]["/shared"]["get"]["responses"]["503"]
        assert declared["content"][PROBLEM_CONTENT_TYPE]["schema"] == with_codes(PROBLEM, codes)
        app = RateLimitMiddleware(Starlette(routes=[Route("/shared", ok)]), limiter, RULES)
        await obstore.put_async(store._inner, keys.ratelimit("shared", "ip:127.0.0.1"), b"\x00")
        async with client_for(app) as client:
            answer = await client.get("/shared")
        if over is store:
            assert answer.status_code == 200  # the unreadable state counted as none
            # Read, and replaced on the version read: 1 GET + 1 conditional PUT.
            assert (store.requests["get"], store.requests["put"]) == (1, 1)
            assert await store.get(keys.ratelimit("shared", "ip:127.0.0.1"), BucketState)
        else:
            assert (answer.status_code, answer.json()["code"]) == (503, "store_unsafe")


def test_a_503_the_host_declared_is_kept_and_declaring_twice_changes_nothing() -> None:
    limiter = limiter_over(Faulty(ObjectStore.from_url("memory://")))
    own = {"description": "Down for maintenance"}
    shared_ref = {"$ref": "#/components/responses/Unavailable"}
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/shared": {"get": {"responses": {"200": {"description": "OK"}, "503": own}}},
            "/both": {"get": {"responses": {"503": shared_ref}}},
            "/local": {"get": {"responses": {"200": {"description": "OK"}}}},
        },
        "components": {"responses": {"Unavailable": {"description": "Unavailable"}}},
    }
    declare_rate_limits(document, RULES, limiter)
    once = repr(document)
    declare_rate_limits(document, RULES, limiter)
    assert repr(document) == once
    validate(document, cls=OpenAPIV31SpecValidator)
    paths = document["paths"]
    assert own["description"] == "Down for maintenance"
    assert own["content"] == {
        PROBLEM_CONTENT_TYPE: {
            "schema": with_codes(PROBLEM, ["store_unavailable", "corrupt_object"])
        }
    }
    # The host's own 503 may come from its app, which the middleware admitted: the fields.
    assert {name.lower() for name in own["headers"]} == FIELDS
    assert paths["/both"]["get"]["responses"]["503"] == shared_ref
    assert "503" not in paths["/local"]["get"]["responses"]
