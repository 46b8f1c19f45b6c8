"""A path under a mount needs a token as it was requested, wherever the middleware runs.

Litestar runs the app's middleware list after routing: into a host's own
`asgi(..., is_mount=True)` mount, it rewrites `path` to what lies below the mount (with a
slash it adds) and records the mount nowhere but in `raw_path`, which it leaves as the
server received it. Starlette's Mount keeps the whole path and ends `root_path` at the
mount. A path is protected if either form is, and an exclusion opens it only where it
matches the form that made it protected.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar, asgi, get
from litestar.middleware import DefineMiddleware
from starlette.applications import Starlette
from starlette.routing import Mount
from support import (
    Clock,
    asgi_client,
    bearer,
    call_http,
    http_scope,
    login,
    make_clocked_service,
    ok_app,
)

from s3auth_asgi import BearerTokenMiddleware, S3AuthService
from s3auth_asgi.path_forms import route_forms
from s3auth_asgi.paths import PathRules
from s3auth_asgi.types import Receive, Scope, Send

pytestmark = pytest.mark.anyio
NOT_A_TOKEN = [(b"authorization", b"Bearer not-a-token")]


async def caller(scope: Scope, receive: Receive, send: Send) -> None:
    """A mounted ASGI app answering with the path it was handed and who called."""
    user = scope["user"]
    body = {"path": scope["path"], "user": user.username if user.is_authenticated else None}
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


@get("/public/page")
async def public_page() -> dict[str, str]:
    return {"host": "public"}


def litestar_mounting(service: S3AuthService, **options: Any) -> Litestar:
    """A host with its own mount at /api and a route of its own, the middleware in its
    middleware list."""

    @asgi("/api", is_mount=True, copy_scope=True)
    async def api(scope: Scope, receive: Receive, send: Send) -> None:
        await caller(scope, receive, send)

    return Litestar(
        route_handlers=[api, public_page],
        middleware=[DefineMiddleware(BearerTokenMiddleware, tokens=service, **options)],
    )


async def test_a_hosts_litestar_mount_is_protected_as_requested() -> None:
    service = make_clocked_service()
    _, pair = await login(service)
    app = litestar_mounting(service, protected=("/api/*",))
    async with asgi_client(app) as client:
        anonymous = await client.get("/api/reports")
        invalid = await client.get("/api/reports", headers=NOT_A_TOKEN)
        allowed = await client.get("/api/reports", headers=bearer(pair.access_token))
        own_route = await client.get("/public/page")
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "authentication_required"
    assert invalid.status_code == 401
    assert allowed.status_code == 200
    assert allowed.json() == {"path": "/reports/", "user": "alice"}  # what the mount is handed
    assert own_route.status_code == 200  # not under /api: a token is optional


@pytest.mark.parametrize("protected", [("/api/*",), ("/*",)])
async def test_an_exclusion_names_a_path_under_a_litestar_mount_as_requested(
    protected: tuple[str, ...],
) -> None:
    app = litestar_mounting(make_clocked_service(), protected=protected, exclude=("/api/public/*",))
    async with asgi_client(app) as client:
        # Skipped: credentials are not even looked at, as for any excluded path.
        skipped = await client.get("/api/public/x", headers=NOT_A_TOKEN)
        refused = await client.get("/api/private/x")
    assert skipped.status_code == 200
    assert skipped.json() == {"path": "/public/x/", "user": None}
    assert refused.status_code == 401


async def test_an_exclusion_of_a_path_below_the_mount_opens_nothing_requested_under_it() -> None:
    # `/public/*` names the host's own route; under the mount, `/api/public/x` is still
    # protected by `/*` as requested.
    app = litestar_mounting(make_clocked_service(), exclude=("/public/*",))
    async with asgi_client(app) as client:
        under_mount = await client.get("/api/public/x")
        own_route = await client.get("/public/page", headers=NOT_A_TOKEN)
    assert under_mount.status_code == 401
    assert own_route.status_code == 200


async def test_a_starlette_mount_around_and_inside() -> None:
    service = make_clocked_service()
    _, pair = await login(service)
    # Around the app: the whole path, as requested.
    around = Starlette(routes=[Mount("/api", app=caller)])
    around.add_middleware(
        BearerTokenMiddleware, tokens=service, protected=("/api/*",), exclude=("/api/public/*",)
    )
    # Inside the mount: the path relative to `root_path`, which ends at the mount.
    inner = BearerTokenMiddleware(
        caller, service, protected=("/reports/*",), exclude=("/public/*",)
    )
    inside = Starlette(routes=[Mount("/api", app=inner)])
    for app in (around, inside):
        async with asgi_client(app) as client:
            refused = await client.get("/api/reports/x")
            skipped = await client.get("/api/public/x", headers=NOT_A_TOKEN)
            allowed = await client.get("/api/reports/x", headers=bearer(pair.access_token))
        assert refused.status_code == 401
        assert skipped.status_code == 200
        assert allowed.json() == {"path": "/api/reports/x", "user": "alice"}


# Generated paths --------------------------------------------------------------------------

PROTECTED = {"/api/*": [], "/admin*": ["admin"]}
EXCLUDED = ("/api/public/*", "/public/*", "/health")
APP = BearerTokenMiddleware(
    ok_app, make_clocked_service(clock=Clock()), protected=PROTECTED, exclude=EXCLUDED
)
PIECES = ["/", "api", "public", "admin", "health", "x", ".", ".."]
below_paths = st.lists(st.sampled_from(PIECES), max_size=6).map(lambda p: "/" + "".join(p))


@st.composite
def routed_and_received(draw: st.DrawFn) -> tuple[str, bytes]:
    """A path as routed and as received: below a mount (Litestar's rewrite, its slash
    added or not), normalised by routing, or as it was."""
    below = draw(below_paths)
    mount = draw(st.sampled_from(["", "/api", "/admin", "/api/public", "/v1", "/public"]))
    received = draw(st.sampled_from([mount + below, below, draw(below_paths)]))
    routed = below + draw(st.sampled_from(["", "/"]))
    encoded = received.replace("a", "%61") if draw(st.booleans()) else received
    return routed, encoded.encode()


def protecting(form: str) -> set[str]:
    # A pattern that ends in a slash and a star also protects the path without the slash.
    return {p for p in PROTECTED if form.startswith(p[:-1]) or form + "/*" == p}


def excluded(form: str) -> bool:
    return form == "/health" or form.startswith(("/api/public/", "/public/"))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(routed_and_received())
async def test_protection_by_either_form_refuses_a_request_without_a_token(
    paths: tuple[str, bytes],
) -> None:
    routed, raw_path = paths
    as_routed = route_forms({"path": routed})
    as_received = route_forms({"path": raw_path.decode().replace("%61", "a")})
    status = (await call_http(APP, http_scope(routed, NOT_A_TOKEN, raw_path=raw_path))).status
    # As received: a protected form no exclusion matches needs a token.
    if any(protecting(form) and not excluded(form) for form in as_received):
        assert status == 401
    # As routed: so does one protected by a pattern that does not protect it as received,
    # whatever exclusion matches it as received.
    by_received = set().union(*map(protecting, as_received))
    if any(protecting(form) - by_received and not excluded(form) for form in as_routed):
        assert status == 401
    # And an exclusion that matches every form as received, where no other pattern
    # protects it as routed, skips it: the token is not looked at.
    by_routed = set().union(*map(protecting, as_routed))
    if all(excluded(form) for form in as_received) and by_routed <= by_received:
        assert status == 200


@given(st.lists(routed_and_received(), max_size=30))
def test_remembered_decisions_are_the_requests_own(requests: list[tuple[str, bytes]]) -> None:
    """The outcome is remembered per path as routed and as received: each is the one the
    rules give the request itself, whatever came before it."""
    remembering = PathRules(PROTECTED, EXCLUDED)
    for routed, raw_path in requests:
        scope = http_scope(routed, raw_path=raw_path)
        assert remembering.decide(scope) == PathRules(PROTECTED, EXCLUDED).decide(scope)
