"""The problem codes of a host's own guarded routes: in the document FastAPI serves under
`include_auth`, the one Litestar serves with `S3AuthPlugin` and one a Starlette host
declares its rate limits in, each refusal lists the codes it may carry, by status, from
the bundles the auth app's operations list theirs from (`problem_codes`). Real hosts,
behind the middlewares or with the dependencies and guards alone, are driven through each
refusal: every answer's code is one its route declares for its status, and every code a
route declares is answered by some host."""

from __future__ import annotations

from collections.abc import Callable
from itertools import count
from typing import Annotated, Any, Protocol

import httpx
import msgspec
import obstore
import pytest
from declared_answers import listed_codes, path_pattern
from fastapi import FastAPI
from forged_tokens import b64url
from litestar import Litestar, get
from litestar.middleware import DefineMiddleware
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.schemas import SchemaGenerator
from support import Clock, StoreWrapper, login, make_clocked_service
from test_app import client_for
from test_storage_probes import UnconditionalStore

from s3auth_asgi import (
    AuthenticatedUser,
    BearerTokenMiddleware,
    BlacklistMiddleware,
    S3AuthService,
    StoreUnavailableError,
    requires,
)
from s3auth_asgi.app.fastapi import CurrentUser, include_auth, require_scopes
from s3auth_asgi.app.litestar import S3AuthPlugin, requires_scopes
from s3auth_asgi.middleware.ratelimit import RateLimitMiddleware
from s3auth_asgi.problems import PROBLEM_CONTENT_TYPE
from s3auth_asgi.ratelimit import RateLimit, RateLimiter, RateLimitRule, declare_rate_limits
from s3auth_asgi.storage import ObjectStore, keys

pytestmark = pytest.mark.anyio

RULES = [RateLimitRule("/limited", "host")]
"""The host's own limit: one request to `/limited`, the second refused."""
GUARDED = ("/items", "/admin", "/limited")
"""Any caller, an `admin` scope, any caller and the limit."""
DECLARED = {
    "/items": {400, 401, 503},
    "/admin": {400, 401, 403, 503},
    "/limited": {400, 401, 429, 503},
}
"""The statuses of the refusals each route declares, each with its codes."""


def limiter() -> RateLimiter:
    return RateLimiter({"host": RateLimit(1, 600)})


def limited(app: Any, rate_limiter: RateLimiter) -> Any:
    return RateLimitMiddleware(app, rate_limiter, RULES)


def fastapi_host(service: S3AuthService, middlewares: bool) -> tuple[Any, str]:
    rate_limiter = limiter()
    app = FastAPI()
    include_auth(
        app,
        service,
        rate_limit=False,
        extend_document=lambda document: declare_rate_limits(document, RULES, rate_limiter),
    )

    @app.get("/items")
    async def items(user: CurrentUser) -> dict[str, str]:
        return {"user": user.username}

    @app.get("/admin")
    async def admin(user: Annotated[AuthenticatedUser, require_scopes("admin")]) -> dict[str, str]:
        return {"admin": user.username}

    @app.get("/limited")
    async def limited_items(user: CurrentUser) -> dict[str, str]:
        return {"user": user.username}

    host: Any = app
    if middlewares:
        host = BearerTokenMiddleware(BlacklistMiddleware(app, service), service, protected=GUARDED)
    return limited(host, rate_limiter), "/openapi.json"


@get("/items", guards=[requires_scopes()])
async def litestar_items() -> dict[str, bool]:
    return {"ok": True}


@get("/admin", guards=[requires_scopes("admin")])
async def litestar_admin() -> dict[str, bool]:
    return {"ok": True}


@get("/limited", guards=[requires_scopes()])
async def litestar_limited() -> dict[str, bool]:
    return {"ok": True}


def litestar_host(service: S3AuthService, middlewares: bool) -> tuple[Any, str]:
    rate_limiter = limiter()
    plugin = S3AuthPlugin(
        service,
        rate_limit=False,
        extend_document=lambda document: declare_rate_limits(document, RULES, rate_limiter),
    )
    stack = [DefineMiddleware(RateLimitMiddleware, limiter=rate_limiter, rules=RULES)]
    if middlewares:
        stack += [
            DefineMiddleware(BearerTokenMiddleware, tokens=service, protected=GUARDED),
            DefineMiddleware(BlacklistMiddleware, blacklist=service),
        ]
    app = Litestar(
        [litestar_items, litestar_admin, litestar_limited],
        middleware=stack,
        plugins=[plugin],
        logging_config=None,
    )
    return app, "/schema/openapi.json"


STARLETTE_SCHEMAS = SchemaGenerator({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}})


@requires()
async def starlette_items(request: Request) -> JSONResponse:
    """responses:
    200:
      description: The caller's name
    """
    return JSONResponse({"user": request.user.username})


def starlette_host(service: S3AuthService, middlewares: bool) -> tuple[Any, str]:
    """Starlette documents nothing of the middlewares: a document of its routes with the
    rules' 429 declared (`declare_rate_limits`), served at `/openapi.json`."""
    rate_limiter = limiter()

    def schema(request: Request) -> JSONResponse:
        document = STARLETTE_SCHEMAS.get_schema(routes)
        declare_rate_limits(document, RULES, rate_limiter)
        return JSONResponse(document)

    routes = [
        Route("/limited", starlette_items),
        Route("/openapi.json", schema, include_in_schema=False),
    ]
    app = Starlette(routes=routes)
    guarded = BearerTokenMiddleware(BlacklistMiddleware(app, service), service, protected=GUARDED)
    return limited(guarded, rate_limiter), "/openapi.json"


Build = Callable[[S3AuthService, bool], tuple[Any, str]]
HOSTS: dict[str, tuple[Build, bool]] = {
    "fastapi": (fastapi_host, False),
    "fastapi behind the middlewares": (fastapi_host, True),
    "litestar": (litestar_host, False),
    "litestar behind the middlewares": (litestar_host, True),
    "starlette": (starlette_host, True),
}


class Answers:
    """A response hook checking each refusal on a route of `document` against it: its
    status declared, a problem whose code is one of those listed for that status; keeps
    the (method, path, status, code) of each."""

    def __init__(self, document: dict[str, Any], seen: set[tuple[str, str, int, str]]) -> None:
        self.document = document
        self.paths = [(path_pattern(path), path) for path in document["paths"]]
        self.seen = seen

    async def __call__(self, response: httpx.Response) -> None:
        await response.aread()
        request = response.request
        path = next((p for pattern, p in self.paths if pattern.fullmatch(request.url.path)), None)
        if path is None or response.status_code < 400:
            return
        method = request.method.lower()
        said = f"{request.method} {request.url.path}: {response.status_code} {response.text}"
        declared = self.document["paths"][path][method]["responses"].get(str(response.status_code))
        assert declared is not None, f"undeclared: {said}"
        assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE, said
        codes = listed_codes(declared["content"][PROBLEM_CONTENT_TYPE]["schema"])
        assert codes is not None, f"no code listed: {said}"
        code = response.json()["code"]
        assert code in codes, f"not one of {codes}: {said}"
        self.seen.add((method, path, response.status_code, code))


def declared_codes(document: dict[str, Any]) -> set[tuple[str, str, int, str]]:
    """Every (method, path, status, code) the document lists on the host's own routes."""
    found = set()
    for path in GUARDED:
        for method, operation in document["paths"].get(path, {}).items():
            for status, answer in operation["responses"].items():
                if int(status) >= 400:
                    schema = answer["content"][PROBLEM_CONTENT_TYPE]["schema"]
                    found |= {(method, path, int(status), c) for c in listed_codes(schema) or ()}
                    # Its words follow its codes: a host route hashes no password.
                    assert "hashing" not in answer["description"], (path, status)
    return found


class Host:
    """One kind of host, built over each service a refusal needs; what its documents
    declare, and what its answers were."""

    def __init__(self, build: Build, middlewares: bool) -> None:
        self.build = build
        self.middlewares = middlewares
        self.declared: set[tuple[str, str, int, str]] = set()
        self.seen: set[tuple[str, str, int, str]] = set()
        self.peers = count(1)

    async def serving(self, service: S3AuthService) -> Callable[[], httpx.AsyncClient]:
        """The host over `service`: clients of it, each from a peer of its own (the rate
        limit counts by peer), every answer checked against its document."""
        app, document_path = self.build(service, self.middlewares)
        async with client_for(app) as client:
            document = (await client.get(document_path)).json()
        if not self.declared:  # the same document over every service: checked once
            validate(document, cls=OpenAPIV31SpecValidator)
        self.declared |= declared_codes(document)
        answers = Answers(document, self.seen)

        def client() -> httpx.AsyncClient:
            made = client_for(app, peer=(f"192.0.2.{next(self.peers)}", 1))
            made.event_hooks["response"].append(answers)
            return made

        return client

    async def refusals(self, service: S3AuthService, *calls: Call) -> None:
        """Each of `calls` (its headers) to each guarded route, from a peer of its own."""
        client = await self.serving(service)
        for path in GUARDED:
            for headers in calls:
                async with client() as each:
                    await each.get(path, headers=headers)


Call = list[tuple[str, str]]


def bearer(token: str) -> Call:
    return [("authorization", f"Bearer {token}")]


class FailingLists(StoreWrapper):
    """Every listing fails: no revocation snapshot can be read."""

    def list(self, prefix: str, offset: str | None = None) -> Any:
        raise StoreUnavailableError("LIST failed: ConnectError")


async def drive_tokens(host: Host) -> None:
    """Each refusal of a token: sent twice, none, malformed, revoked, lacking a scope,
    expired; then, in a process that has read no revocations yet, a store that cannot
    list them."""
    clock = Clock()
    store = ObjectStore.from_url("memory://")
    service = make_clocked_service(store=store, clock=clock)
    _, pair = await login(service, "alice")
    _, ended = await login(service, "bob")
    await service.revoke_refresh_token(ended.refresh_token)
    valid = bearer(pair.access_token)
    await host.refusals(service, valid * 2, [], bearer("x.y.z"), bearer(ended.access_token), valid)
    clock.advance(service.settings.access_token_seconds + service.settings.leeway_seconds)
    await host.refusals(service, valid)
    _, fresh = await login(service, "carol")
    await host.refusals(
        make_clocked_service(store=FailingLists(store), clock=clock), bearer(fresh.access_token)
    )


UNOPENED = msgspec.json.encode(
    {"keys": [{"kid": "k", "alg": "ES256", "created_at": 0, "activates_at": 0, "jwk": {}}]}
)


class Refusing(Protocol):
    """A host that makes each of `calls` to its guarded routes over `service`."""

    async def refusals(self, service: S3AuthService, *calls: Call) -> None: ...


ES256_HEADER = b64url(b'{"alg":"ES256","typ":"at+jwt","kid":"k"}')
NEEDS_KEYS = bearer(f"{ES256_HEADER}.e30.{'A' * 86}")
"""An ES256 token a stored key could have signed: only the keys can refuse it."""


async def drive_stored_keys(host: Refusing) -> None:
    """A process whose signing keys are kept in the store and not read yet, where they
    cannot be read (a corrupt object), do not open, or are to be made on a store lacking a
    conditional write that nothing has checked yet (no lifespan ran)."""
    for damaged in (b"\x00 not json", UNOPENED):
        store = ObjectStore.from_url("memory://")
        await obstore.put_async(store._inner, keys.SIGNING_KEYS, damaged)
        await host.refusals(make_clocked_service(store=store, algorithm="ES256"), NEEDS_KEYS)
    unsafe = StoreWrapper(UnconditionalStore.from_url("memory://"))  # taken for an S3 bucket
    service = make_clocked_service("s3://bucket", store=unsafe, algorithm="ES256")
    await host.refusals(service, NEEDS_KEYS)


async def drive_limit(host: Host) -> None:
    """The host's limit: a second request from one peer (its first is admitted)."""
    service = make_clocked_service()
    _, pair = await login(service)
    client = await host.serving(service)
    async with client() as one_peer:
        for _ in range(2):
            await one_peer.get("/limited", headers=bearer(pair.access_token))


@pytest.mark.parametrize("name", list(HOSTS))
async def test_each_refusal_of_a_guarded_route_is_declared_and_each_declared_code_answered(
    name: str,
) -> None:
    host = Host(*HOSTS[name])
    await drive_limit(host)
    if name != "starlette":  # whose document says nothing of the token's check
        await drive_tokens(host)
        await drive_stored_keys(host)
    statuses: dict[str, set[int]] = {}
    for _, path, status, _ in host.declared:
        statuses.setdefault(path, set()).add(status)
    assert statuses == (DECLARED if name != "starlette" else {"/limited": {429}})
    assert host.seen == host.declared  # every code listed is answered
