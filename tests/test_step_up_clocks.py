"""A recent authentication (`max_age`, `step_up`) judged across hosts whose clocks differ,
with the leeway every other time of the token gets (`S3AUTH_LEEWAY_SECONDS`, 5 here): the
token's `auth_time` comes from the clock of the host the user authenticated on, and the
host asked to take it judges it by its own. Taken while it is at most `max_age` plus the
leeway old, or at most the leeway in the future; refused past either, at every place that
asks (a path's `max_age`, `requires`, FastAPI's `require_scopes`, the administrator
operations with S3AUTH_ADMIN_MAX_AGE_SECONDS).

Hosts share one store; each has its own clock, a fixed offset from a common time that the
test moves by hand."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from support import SharedTime, skewed_host
from test_app import PASSWORD, assert_problem, auth_app, client_for

from s3auth_asgi import S3AuthError, S3AuthService, auth_error_response
from s3auth_asgi.app.fastapi import include_auth, require_scopes
from s3auth_asgi.middleware.bearer import BearerTokenMiddleware
from s3auth_asgi.middleware.requires import requires
from s3auth_asgi.middleware.user import AuthenticatedUser
from s3auth_asgi.step_up import ReauthenticationRequiredError, require_recent
from s3auth_asgi.storage import ObjectStore, Store

pytestmark = pytest.mark.anyio

MAX_AGE = 60
LEEWAY = 5
SETTINGS = {"leeway_seconds": LEEWAY, "admin_max_age_seconds": MAX_AGE}


def refused_as(error: Exception) -> Response:
    assert isinstance(error, S3AuthError)
    status, headers, body = auth_error_response(error, realm="api")
    return Response(body, status, headers)


async def ok(request: Request) -> Response:
    return JSONResponse({"ok": True})


def by_path(service: S3AuthService) -> Any:
    protected = {"/*": [], "/transfer": requires(max_age=MAX_AGE)}
    return BearerTokenMiddleware(
        Starlette(routes=[Route("/transfer", ok)]), service, protected=protected
    )


def by_requires(service: S3AuthService) -> Any:
    # The verifier's clock, as a host would give the one its service runs on.
    endpoint = requires(max_age=MAX_AGE, clock=service.clock)(ok)
    app = Starlette(
        routes=[Route("/transfer", endpoint)],
        exception_handlers={S3AuthError: lambda _request, error: refused_as(error)},
    )
    return BearerTokenMiddleware(app, service)


def by_fastapi(service: S3AuthService) -> Any:
    app = FastAPI()
    include_auth(app, service, rate_limit=False)

    @app.get("/transfer")
    async def transfer(
        user: Annotated[AuthenticatedUser, require_scopes(max_age=MAX_AGE)],
    ) -> dict[str, bool]:
        return {"ok": True}

    return app


def by_admin(service: S3AuthService) -> Any:
    return Starlette(routes=[Mount("/auth", app=auth_app(service))])


SURFACES: dict[str, tuple[Callable[[S3AuthService], Any], str]] = {
    "path": (by_path, "/transfer"),
    "requires": (by_requires, "/transfer"),
    "fastapi": (by_fastapi, "/transfer"),
    "admin": (by_admin, "/auth/admin/users"),
}


async def status_on(verifier: S3AuthService, surface: str, access_token: str) -> tuple[int, str]:
    """The status and the problem code (if any) of the verifier's route asking `MAX_AGE`."""
    build, path = SURFACES[surface]
    async with client_for(build(verifier)) as client:
        answer = await client.get(path, headers={"Authorization": f"Bearer {access_token}"})
    if answer.status_code == 200:
        return 200, ""
    body = assert_problem(answer, answer.status_code, "reauthentication_required")
    assert answer.headers["www-authenticate"].endswith(f'max_age="{MAX_AGE}"')
    return answer.status_code, body["code"]


async def administrator(issuer: S3AuthService) -> Any:
    return await issuer.create_user("root", "root@example.com", PASSWORD, is_admin=True)


def hosts(store: Store, time: SharedTime, *offsets: float) -> list[S3AuthService]:
    return [skewed_host(store, time, offset, **SETTINGS) for offset in offsets]


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize(
    ("ahead", "expected"),
    [(LEEWAY, 200), (LEEWAY + 1, 401)],
    ids=["leeway-ahead", "leeway+1-ahead"],
)
async def test_a_verifier_ahead_of_the_issuer_allows_the_leeway_past_max_age(
    surface: str, ahead: int, expected: int
) -> None:
    # auth_time is the issuer's now; the verifier's clock runs `ahead` of it, so when the
    # issuer's says MAX_AGE seconds have passed, the verifier's says MAX_AGE + `ahead`.
    time, store = SharedTime(), ObjectStore.from_url("memory://")
    issuer, verifier = hosts(store, time, 0.0, float(ahead))
    pair = await issuer.create_token_pair(await administrator(issuer))
    time.advance(MAX_AGE)
    status, code = await status_on(verifier, surface, pair.access_token)
    assert (status, code) == (expected, "" if expected == 200 else "reauthentication_required")


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize(
    ("verifier_offset", "expected"),
    [(0.0, 200), (-1.0, 401)],
    ids=["auth_time-leeway-ahead", "auth_time-leeway+1-ahead"],
)
async def test_an_auth_time_further_ahead_than_the_leeway_is_refused(
    surface: str, verifier_offset: float, expected: int
) -> None:
    # The login on a host the leeway ahead sets auth_time; a refresh on an exact host
    # issues the token (iat by its clock, auth_time kept, the leeway after iat: valid).
    time, store = SharedTime(), ObjectStore.from_url("memory://")
    login_host, refresh_host, verifier = hosts(store, time, LEEWAY, 0.0, verifier_offset)
    pair = await login_host.create_token_pair(await administrator(login_host))
    refreshed = await refresh_host.refresh_access_token(pair.refresh_token)
    claims = refresh_host.decode_token(refreshed.access_token)
    assert claims["auth_time"] == claims["iat"] + LEEWAY
    # The verifier takes the token itself either way: only the step-up check may refuse.
    assert verifier.verify_access_token(refreshed.access_token)["sub"] == claims["sub"]
    status, code = await status_on(verifier, surface, refreshed.access_token)
    assert (status, code) == (expected, "" if expected == 200 else "reauthentication_required")


@pytest.mark.parametrize(
    ("age", "taken"),
    [
        (MAX_AGE + LEEWAY, True),
        (MAX_AGE + LEEWAY + 1, False),
        (-LEEWAY, True),
        (-LEEWAY - 1, False),
    ],
)
def test_the_boundaries_in_whole_seconds(age: int, taken: bool) -> None:
    now = 1_800_000_000.75  # the fraction counts for nothing, as for `exp`
    claims = {"auth_time": int(now) - age}
    if taken:
        require_recent(claims, MAX_AGE, now, leeway=LEEWAY)
    else:
        with pytest.raises(ReauthenticationRequiredError):
            require_recent(claims, MAX_AGE, now, leeway=LEEWAY)
