"""`requires(...)` on real Starlette, FastAPI, Litestar and Quart apps, whatever the rule of
the path it sits on: each refusal is the documented 401/403 problem through the host's
exception handler, never a 500.

Each app has the same endpoints under two prefixes: `/open`, which the middleware excludes
(no token is read there, so the caller is anonymous whatever it sends), and `/maybe`,
which it neither protects nor excludes (a token is verified when sent). Under each,
`admin` needs the `admin` scope and `recent` an authentication at most a minute old.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from fastapi import Request as FastAPIRequest
from litestar import Litestar, get
from litestar import Request as LitestarRequest
from litestar import Response as LitestarResponse
from litestar.middleware import DefineMiddleware
from quart import Quart
from quart import Response as QuartResponse
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from support import (  # noqa: F401 (the *_fixture names register fixtures here)
    Clock,
    asgi_client,
    by_framework,
    clock_fixture,
    clocked_service_fixture,
    framework_fixture,
    login,
)

from s3auth_asgi import S3AuthError, S3AuthService
from s3auth_asgi.middleware.bearer import BearerTokenMiddleware
from s3auth_asgi.middleware.blacklist import BlacklistMiddleware
from s3auth_asgi.middleware.requires import ScopeRequirement, requires
from s3auth_asgi.middleware.user import AuthenticatedUser
from s3auth_asgi.problems import auth_error_response

pytestmark = pytest.mark.anyio

# The module, which the package's `requires` function shadows as an attribute.
requires_module = importlib.import_module("s3auth_asgi.middleware.requires")

RULES: dict[str, Any] = {"protected": ("/api/*",), "exclude": ("/open", "/open/*")}
PREFIXES = ("open", "maybe")
MAX_AGE = 60


def requirements(clock: Clock) -> dict[str, ScopeRequirement]:
    return {"admin": requires("admin"), "recent": requires(max_age=MAX_AGE, clock=clock)}


def starlette_app(service: S3AuthService, clock: Clock) -> Any:
    async def ok(request: Request) -> JSONResponse:
        return JSONResponse({"user": request.user.display_name})

    async def auth_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, S3AuthError)
        status, headers, body = auth_error_response(exc)
        return Response(body, status_code=status, headers=headers)

    return Starlette(
        routes=[
            Route(f"/{prefix}/{name}", requirement(ok))
            for prefix in PREFIXES
            for name, requirement in requirements(clock).items()
        ],
        middleware=[
            Middleware(BearerTokenMiddleware, tokens=service, **RULES),
            Middleware(BlacklistMiddleware, blacklist=service),
        ],
        exception_handlers={S3AuthError: auth_error},
    )


def fastapi_app(service: S3AuthService, clock: Clock) -> Any:
    app = FastAPI()
    for prefix in PREFIXES:
        for name, requirement in requirements(clock).items():

            async def ok(
                user: AuthenticatedUser = Depends(requirement.dependency),  # noqa: B008
            ) -> dict[str, Any]:
                return {"user": user.display_name}

            app.get(f"/{prefix}/{name}")(ok)

    @app.exception_handler(S3AuthError)
    async def auth_error(request: FastAPIRequest, exc: S3AuthError) -> Response:
        status, headers, body = auth_error_response(exc)
        return Response(body, status_code=status, headers=headers)

    app.add_middleware(BlacklistMiddleware, blacklist=service)
    app.add_middleware(BearerTokenMiddleware, tokens=service, **RULES)
    return app


def litestar_auth_error(
    request: LitestarRequest[Any, Any, Any], exc: Exception
) -> LitestarResponse[bytes]:
    assert isinstance(exc, S3AuthError)
    status, headers, body = auth_error_response(exc)
    media_type = headers.pop("content-type")
    return LitestarResponse(body, status_code=status, headers=headers, media_type=media_type)


def litestar_app(service: S3AuthService, clock: Clock) -> Any:
    async def ok(request: LitestarRequest[Any, Any, Any]) -> dict[str, Any]:
        return {"user": request.user.display_name}

    handlers = [
        get(f"/{prefix}/{name}", guards=[requirement.guard], name=f"{prefix}-{name}")(ok)
        for prefix in PREFIXES
        for name, requirement in requirements(clock).items()
    ]
    return Litestar(
        route_handlers=handlers,
        middleware=[
            DefineMiddleware(BearerTokenMiddleware, tokens=service, **RULES),
            DefineMiddleware(BlacklistMiddleware, blacklist=service),
        ],
        exception_handlers={S3AuthError: litestar_auth_error},
    )


def quart_app(service: S3AuthService, clock: Clock) -> Any:
    app = Quart("s3auth_requires_paths")

    async def ok() -> dict[str, Any]:
        return {"user": "seen"}

    for prefix in PREFIXES:
        for name, requirement in requirements(clock).items():
            app.get(f"/{prefix}/{name}", endpoint=f"{prefix}-{name}")(requirement(ok))

    @app.errorhandler(S3AuthError)
    async def auth_error(error: S3AuthError) -> QuartResponse:
        status, headers, body = auth_error_response(error)
        return QuartResponse(body, status=status, headers=headers)

    app.asgi_app = BearerTokenMiddleware(  # type: ignore[method-assign]
        BlacklistMiddleware(app.asgi_app, service), service, **RULES
    )
    return app


FRAMEWORKS = by_framework(starlette_app, fastapi_app, litestar_app, quart_app)


def bearer_header(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


def code_of(response: Any) -> str:
    """The problem's code; a 500, or any answer that is not the documented problem, fails."""
    assert response.status_code in (401, 403), (response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith('Bearer realm="api"')
    code: str = response.json()["code"]
    return code


async def test_a_refusal_is_the_documented_problem_whatever_the_path(
    framework: str, service: S3AuthService, clock: Clock
) -> None:
    app = FRAMEWORKS[framework](service, clock)
    _, reader = await login(service, "reader", scopes=["items:read"])
    _, admin = await login(service, "root", scopes=["admin"])
    callers = {"anonymous": None, "reader": reader.access_token, "admin": admin.access_token}
    async with asgi_client(app) as http:
        # Excluded: no token is read, so every caller is anonymous there.
        for name in ("admin", "recent"):
            for token in callers.values():
                refused = await http.get(f"/open/{name}", headers=bearer_header(token))
                assert code_of(refused) == "authentication_required"
        # Optional: a token sent is verified, and `requires` judges its holder.
        anonymous = await http.get("/maybe/admin")
        assert code_of(anonymous) == "authentication_required"
        no_scope = await http.get("/maybe/admin", headers=bearer_header(reader.access_token))
        assert code_of(no_scope) == "insufficient_scope"
        allowed = await http.get("/maybe/admin", headers=bearer_header(admin.access_token))
        assert allowed.status_code == 200
        recent = await http.get("/maybe/recent", headers=bearer_header(reader.access_token))
        assert recent.status_code == 200
        clock.advance(MAX_AGE + service.leeway_seconds + 1)  # the leeway is for clocks
        stale = await http.get("/maybe/recent", headers=bearer_header(reader.access_token))
        assert code_of(stale) == "reauthentication_required"
        assert f'max_age="{MAX_AGE}"' in stale.headers["www-authenticate"]
        still_open = await http.get("/open/recent", headers=bearer_header(reader.access_token))
        assert code_of(still_open) == "authentication_required"


class Kept(logging.Handler):
    """The records of one logger, attached to it directly: Litestar's logging setup keeps
    them from pytest's capture."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_on_an_excluded_path_the_log_names_the_fix(
    framework: str, service: S3AuthService, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Once per requirement and process: the tests before this one have met it already.
    monkeypatch.setattr(requires_module, "_WARNED_EXCLUDED", set(), raising=False)
    app = FRAMEWORKS[framework](service, clock)
    _, admin = await login(service, "root", scopes=["admin"])
    kept = Kept()
    logger = logging.getLogger("s3auth_asgi")
    logger.addHandler(kept)
    try:
        async with asgi_client(app) as http:
            for _ in range(3):
                refused = await http.get("/open/admin", headers=bearer_header(admin.access_token))
                assert code_of(refused) == "authentication_required"
            await http.get("/maybe/admin")  # an anonymous caller where tokens are read: no log
    finally:
        logger.removeHandler(kept)
    assert len(kept.records) == 1, [r.getMessage() for r in kept.records]
    message = kept.records[0].getMessage()
    assert "requires('admin',)" in message
    assert "'/open/admin'" in message
    assert "take the path out of `exclude`" in message
    assert admin.access_token not in message
