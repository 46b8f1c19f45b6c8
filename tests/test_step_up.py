"""A host's route that asks for a recent authentication (`max_age`): refused with 401
`reauthentication_required` and RFC 9470's challenge when the token's `auth_time` is older
or absent; taken once the caller re-authenticates. Routes without it take every token."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastapi import FastAPI
from litestar import Litestar, get
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from support import Clock, make_clocked_service
from test_app import PASSWORD, assert_problem, bearer, client_for, login, register

from s3auth_asgi import ConfigurationError, S3AuthError, auth_error_response
from s3auth_asgi.app.fastapi import CurrentUser, include_auth, require_scopes
from s3auth_asgi.app.litestar import S3AuthPlugin, requires_scopes
from s3auth_asgi.middleware.bearer import BearerTokenMiddleware
from s3auth_asgi.middleware.requires import requires
from s3auth_asgi.middleware.user import AuthenticatedUser

pytestmark = pytest.mark.anyio

CHALLENGE = (
    'Bearer realm="api", error="insufficient_user_authentication", '
    'error_description="This needs an authentication within the last 300 seconds; '
    'authenticate again", max_age="300"'
)


def fastapi_host(service: Any) -> FastAPI:
    app = FastAPI()
    include_auth(app, service, rate_limit=False)

    @app.get("/items")
    async def items(user: CurrentUser) -> dict[str, str]:
        return {"user": user.username}

    @app.post("/transfer")
    async def transfer(
        user: Annotated[AuthenticatedUser, require_scopes(max_age=300)],
    ) -> dict[str, str]:
        return {"user": user.username}

    return app


def litestar_host(service: Any) -> Litestar:
    @get("/items", guards=[requires_scopes()])
    async def items() -> dict[str, bool]:
        return {"ok": True}

    @get("/transfer", guards=[requires_scopes(max_age=300)])
    async def transfer() -> dict[str, bool]:
        return {"ok": True}

    return Litestar([items, transfer], plugins=[S3AuthPlugin(service, rate_limit=False)])


async def step_up(client: Any, method: str, clock: Clock, service: Any) -> None:
    await register(client, "alice")
    tokens = await login(client, "alice")
    # Taken until the leeway past max_age, the allowance of every time the token holds.
    clock.advance(300 + service.leeway_seconds)
    answer = await client.request(method, "/transfer", headers=bearer(tokens))
    assert answer.status_code == 200, answer.text
    clock.advance(1)
    refused = await client.request(method, "/transfer", headers=bearer(tokens))
    assert_problem(refused, 401, "reauthentication_required")
    challenge = refused.headers["www-authenticate"]
    assert 'error="insufficient_user_authentication"' in challenge
    assert challenge.endswith('max_age="300"')
    assert (await client.get("/items", headers=bearer(tokens))).status_code == 200
    again = await client.post(
        "/auth/reauthenticate", json={"current_password": PASSWORD}, headers=bearer(tokens)
    )
    assert again.status_code == 200, again.text
    taken = await client.request(method, "/transfer", headers=bearer(again.json()))
    assert taken.status_code == 200, taken.text
    # And after a refresh of the session, which keeps the time.
    clock.advance(200)
    response = await client.post("/auth/refresh", data={"refresh_token": tokens["refresh_token"]})
    refreshed = response.json()
    assert (await client.request(method, "/transfer", headers=bearer(refreshed))).status_code == 200


async def test_a_fastapi_route_with_max_age_asks_for_a_recent_authentication() -> None:
    clock = Clock()
    service = make_clocked_service(clock=clock)
    async with client_for(fastapi_host(service)) as client:
        await step_up(client, "POST", clock, service)


async def test_a_litestar_guard_with_max_age_asks_for_a_recent_authentication() -> None:
    clock = Clock()
    service = make_clocked_service(clock=clock)
    async with client_for(litestar_host(service)) as client:
        await step_up(client, "GET", clock, service)


def starlette_host(service: Any, clock: Clock) -> Any:
    @requires(max_age=300, clock=clock)
    async def transfer(request: Request) -> Response:
        return JSONResponse({"ok": True})

    @requires()
    async def items(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def refused(request: Request, error: Exception) -> Response:
        assert isinstance(error, S3AuthError)
        status, headers, body = auth_error_response(error, realm="api")
        return Response(body, status, headers)

    app = Starlette(
        routes=[Route("/transfer", transfer), Route("/items", items)],
        exception_handlers={S3AuthError: refused},
    )
    return BearerTokenMiddleware(app, service)


async def test_requires_with_max_age_refuses_an_old_or_absent_auth_time() -> None:
    clock = Clock()
    service = make_clocked_service(clock=clock)
    user = await service.create_user("alice", "alice@example.com", PASSWORD)
    pair = await service.create_token_pair(user)
    # Issued before auth_time existed: taken where no recent authentication is asked for.
    old, _ = service.tokens.issue_access_token(
        user_id=user.id, username="alice", session_id="f" * 32, is_admin=False, scopes=[]
    )
    async with client_for(starlette_host(service, clock)) as client:
        fresh = await client.get("/transfer", headers=bearer(pair.to_dict()))
        assert fresh.status_code == 200, fresh.text
        absent = await client.get("/transfer", headers=bearer({"access_token": old}))
        assert_problem(absent, 401, "reauthentication_required")
        assert absent.headers["www-authenticate"] == CHALLENGE
        assert (
            await client.get("/items", headers={"Authorization": f"Bearer {old}"})
        ).status_code == 200
        clock.advance(301 + service.leeway_seconds)
        stale = await client.get("/transfer", headers=bearer(pair.to_dict()))
        assert_problem(stale, 401, "reauthentication_required")
        assert (await client.get("/items", headers=bearer(pair.to_dict()))).status_code == 200
        anonymous = await client.get("/transfer")
        assert_problem(anonymous, 401, "authentication_required")


@pytest.mark.parametrize("max_age", [-1, True, 1.5, "300"])
def test_max_age_must_be_whole_seconds(max_age: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_age"):
        requires(max_age=max_age)
    with pytest.raises(ConfigurationError, match="max_age"):
        require_scopes(max_age=max_age)
    with pytest.raises(ConfigurationError, match="max_age"):
        requires_scopes(max_age=max_age)
