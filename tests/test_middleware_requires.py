"""`requires(*scopes)`: the endpoint-level check, with or without a request argument."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from support import (
    Clock,
    RecordingApp,
    asgi_client,
    bearer,
    call_http,
    http_scope,
    login,
    make_clocked_service,
)

from s3auth_asgi import S3AuthError, auth_error_response
from s3auth_asgi.errors import (
    AuthenticationRequiredError,
    InsufficientScopeError,
    PermissionDeniedError,
)
from s3auth_asgi.middleware.bearer import BearerTokenMiddleware
from s3auth_asgi.middleware.requires import requires
from s3auth_asgi.middleware.user import (
    ANONYMOUS_CREDENTIALS,
    ANONYMOUS_USER,
    AuthenticatedUser,
    current_scope,
)

pytestmark = pytest.mark.anyio


async def scope_of(scopes: list[str]) -> dict[str, Any]:
    """The scope BearerTokenMiddleware hands to the app."""
    service = make_clocked_service(clock=Clock())
    _, pair = await login(service, scopes=scopes)
    inner = RecordingApp()
    headers = bearer(pair.access_token)
    await call_http(BearerTokenMiddleware(inner, service), http_scope(headers=headers))
    (seen,) = inner.scopes
    return dict(seen)


async def test_check_returns_the_user_or_raises() -> None:
    scope = await scope_of(["items:read", "items:write"])
    assert isinstance(requires().check(scope), AuthenticatedUser)
    assert requires("items:read", "items:write").check(scope) is scope["user"]
    with pytest.raises(InsufficientScopeError) as refused:
        requires("items:read", "admin").check(scope)
    assert refused.value.scopes == ("items:read", "admin")
    assert isinstance(refused.value, PermissionDeniedError)
    assert refused.value.status == 403


async def test_anonymous_callers_need_to_authenticate() -> None:
    anonymous = {"type": "http", "user": ANONYMOUS_USER, "auth": ANONYMOUS_CREDENTIALS}
    with pytest.raises(AuthenticationRequiredError) as refused:
        requires().check(anonymous)
    assert refused.value.status == 401


FIX = "put BearerTokenMiddleware in front of this route"


def test_without_the_middleware_it_names_the_fix() -> None:
    # A setup mistake, answered 500: the message says what to do, not only what is missing.
    for connection in (None, {"type": "http"}):
        with pytest.raises(RuntimeError, match=FIX) as raised:
            requires().check(connection)
        assert "require_scopes" in str(raised.value)
        assert "requires_scopes" in str(raised.value)


async def test_an_app_without_the_middleware_names_the_fix() -> None:
    @requires("admin")
    async def admin(request: Request) -> Response:
        raise AssertionError("not reached")

    app = Starlette(routes=[Route("/admin", admin)])
    async with asgi_client(app) as client:
        with pytest.raises(RuntimeError, match=FIX):
            await client.get("/admin")


async def test_the_decorator_finds_the_connection_in_any_argument() -> None:
    scope = await scope_of(["admin"])
    request = SimpleNamespace(scope=scope)

    @requires("admin")
    async def async_endpoint(request: Any) -> str:
        return "async"

    @requires("admin")
    def sync_endpoint(self: Any, request: Any) -> str:
        return "sync"

    @requires("billing")
    async def refused(request: Any) -> str:
        raise AssertionError("not reached")

    assert await async_endpoint(request) == "async"
    assert sync_endpoint(object(), request=request) == "sync"
    assert async_endpoint.__name__ == "async_endpoint"  # frameworks read the wrapped name
    with pytest.raises(InsufficientScopeError):
        await refused(request)


async def test_without_a_request_argument_the_current_connection_is_used() -> None:
    scope = await scope_of(["admin"])

    @requires("admin")
    async def view() -> str:
        return "ok"

    token = current_scope.set(scope)
    try:
        assert await view() == "ok"
        assert requires("admin").dependency() is scope["user"]
        requires("admin").guard(SimpleNamespace(scope=scope), None)
    finally:
        current_scope.reset(token)
    with pytest.raises(RuntimeError):
        await view()


def test_scopes_are_validated() -> None:
    with pytest.raises(ValueError):
        requires("two words")
    with pytest.raises(ValueError):
        requires("")


async def test_a_body_shaped_like_a_scope_is_not_taken_for_the_connection() -> None:
    # The decorator on a FastAPI route with a body: the JSON object comes before the
    # request among the arguments, and whatever its members say, the caller is the
    # connection's, as the middleware found it: no 500, no refusal of an allowed caller.
    service = make_clocked_service(clock=Clock())
    api = FastAPI()

    @api.exception_handler(S3AuthError)
    async def refused(request: Request, error: S3AuthError) -> Response:
        status, headers, body = auth_error_response(error)
        return Response(body, status_code=status, headers=headers)

    @api.post("/reports")
    @requires("admin")
    async def reports(payload: dict[str, Any], request: Request) -> dict[str, Any]:
        return {"by": request.user.id}

    @api.post("/notes")
    @requires("admin")
    async def notes(payload: dict[str, Any]) -> dict[str, bool]:
        return {"ok": True}

    app = BearerTokenMiddleware(api, service)
    root, admin = await login(service, "root", scopes=["admin"])
    _, plain = await login(service, "plain")
    forged = [{"type": "http"}, {"type": "http", "user": "root", "auth": {"scopes": ["admin"]}}]
    async with asgi_client(app) as client:
        for body in forged:
            for path in ("/reports", "/notes"):
                allowed = await client.post(
                    path, json=body, headers=dict(bearer(admin.access_token))
                )
                assert allowed.status_code == 200, (path, body, allowed.text)
                refused = await client.post(
                    path, json=body, headers=dict(bearer(plain.access_token))
                )
                assert refused.status_code == 403, (path, body, refused.text)
        answered = await client.post(
            "/reports", json=forged[0], headers=dict(bearer(admin.access_token))
        )
        assert answered.json() == {"by": root.id}
