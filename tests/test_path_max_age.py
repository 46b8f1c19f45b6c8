"""A recent authentication asked for by path: BearerTokenMiddleware's `protected` maps a
pattern to `requires(*scopes, max_age=N)` as well as to a list of scopes, and refuses a
token authenticated longer ago there as a route's `max_age` does (`step_up`): 401
`reauthentication_required` with RFC 9470's challenge, before the app runs; its document
says so for those operations only."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from support import Clock, make_clocked_service
from test_app import PASSWORD, assert_problem, auth_app, bearer, client_for, login, register
from test_step_up import CHALLENGE

from s3auth_asgi import ConfigurationError
from s3auth_asgi.middleware.bearer import BearerTokenMiddleware
from s3auth_asgi.middleware.openapi import declare_bearer_refusals
from s3auth_asgi.middleware.requires import requires
from s3auth_asgi.paths import PathRules

pytestmark = pytest.mark.anyio

PROTECTED = {
    "/*": [],
    "/transfer*": requires(max_age=300),
    "/admin*": requires("admin", max_age=600),
    "/admin/keys*": ["keys"],
}


def host(service: Any) -> tuple[Any, int]:
    """The app behind the middleware, and how often it ran."""
    ran = [0]

    async def ok(request: Request) -> Response:
        ran[0] += 1
        return JSONResponse({"ok": True})

    app = Starlette(
        routes=[
            Mount("/auth", app=auth_app(service)),
            Route("/transfer", ok),
            Route("/items", ok),
            Route("/admin/x", ok),
        ]
    )
    return BearerTokenMiddleware(
        app, service, protected=PROTECTED, exclude=("/auth", "/auth/*")
    ), ran


async def test_a_path_with_max_age_asks_for_a_recent_authentication() -> None:
    clock = Clock()
    service = make_clocked_service(clock=clock)
    app, ran = host(service)
    async with client_for(app) as client:
        await register(client, "alice")
        tokens = await login(client, "alice")
        # Taken until the leeway past max_age, the allowance of every time the token holds.
        clock.advance(300 + service.leeway_seconds)
        assert (await client.get("/transfer", headers=bearer(tokens))).status_code == 200
        clock.advance(1)
        refused = await client.get("/transfer", headers=bearer(tokens))
        assert_problem(refused, 401, "reauthentication_required")
        assert refused.headers["www-authenticate"] == CHALLENGE
        assert ran[0] == 1  # refused before the app ran
        assert (await client.get("/items", headers=bearer(tokens))).status_code == 200
        again = await client.post(
            "/auth/reauthenticate", json={"current_password": PASSWORD}, headers=bearer(tokens)
        )
        assert again.status_code == 200, again.text
        taken = await client.get("/transfer", headers=bearer(again.json()))
        assert taken.status_code == 200, taken.text
        # The scopes of the requirement are the path's, checked first.
        clock.advance(1000)
        scoped = await client.get("/admin/x", headers=bearer(again.json()))
        assert_problem(scoped, 403, "insufficient_scope")


def test_the_strictest_max_age_of_the_patterns_that_match_is_asked() -> None:
    rules = PathRules({"/*": [], "/a*": requires(max_age=300), "/a/b*": requires("x", max_age=60)})
    scope = {"type": "http", "method": "GET", "path": "/a/b/c"}
    assert rules.decide(scope) == (rules.decide(scope)[0], ("x",))
    assert rules.max_age(scope) == 60
    assert rules.max_age({**scope, "path": "/a/c"}) == 300
    assert rules.max_age({**scope, "path": "/c"}) is None
    # A path read in several forms takes the strictest of all.
    assert rules.max_age({**scope, "path": "/c/../a/b"}) == 60
    with pytest.raises(ConfigurationError, match="scopes"):
        PathRules({"/a*": 300})  # type: ignore[dict-item]


def test_the_document_declares_it_where_the_path_asks_for_it() -> None:
    service = make_clocked_service()
    paths = {
        p: {"get": {"responses": {"200": {"description": "ok"}}}}
        for p in ("/transfer", "/items", "/admin/{name}")
    }
    document: dict[str, Any] = {"openapi": "3.1.0", "info": {}, "paths": paths}
    declare_bearer_refusals(document, {"tokens": service, "protected": PROTECTED})

    def codes(path: str) -> list[str]:
        answer = document["paths"][path]["get"]["responses"]["401"]
        found: list[str] = answer["content"]["application/problem+json"]["schema"]["allOf"][1][
            "properties"
        ]["code"]["enum"]
        return found

    assert "reauthentication_required" in codes("/transfer")
    assert "reauthentication_required" in codes("/admin/{name}")
    assert "reauthentication_required" not in codes("/items")
    said = document["paths"]["/transfer"]["get"]["responses"]["401"]["description"]
    assert "POST /reauthenticate" in said
