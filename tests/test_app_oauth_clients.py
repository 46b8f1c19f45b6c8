"""The token endpoints driven by real OAuth 2.0 client libraries, as an application would
drive them: authlib's AsyncOAuth2Client (over httpx, against the app mounted at /auth with
a route behind BearerTokenMiddleware) and requests-oauthlib's OAuth2Session with oauthlib's
LegacyApplicationClient (over a real server). A grant, a refresh with rotation, and each
refusal as the RFC 6749 §5.2 `error` those libraries raise: a refusal they could not tell
from a token would be taken for one."""

from __future__ import annotations

import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
import requests
from authlib.integrations.base_client import OAuthError
from conftest import make_service
from declared_answers import DeclaredAnswers
from oauthlib.oauth2 import InvalidGrantError, LegacyApplicationClient
from requests_oauthlib import OAuth2Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from support import StoreWrapper, serving
from test_app import PASSWORD, assert_problem, auth_app, client_for, register

from s3auth_asgi import BearerTokenMiddleware, S3AuthService
from s3auth_asgi.app.token_errors import TOKEN_ERRORS
from s3auth_asgi.ratelimit import RateLimit, RateLimiter
from s3auth_asgi.storage import ObjectStore

with warnings.catch_warnings():
    # It would rather have httpx2; these tests give it the httpx every other test uses.
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client

pytestmark = pytest.mark.anyio
R = TypeVar("R")

BASE = "http://testserver"
LOGIN = f"{BASE}/auth/login"
REFRESH = f"{BASE}/auth/refresh"
FORM = "application/x-www-form-urlencoded"


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"user": request.user.username})


def host(service: S3AuthService, **options: Any) -> tuple[Starlette, DeclaredAnswers]:
    """The auth app at /auth and one route of the application's own, behind the
    middleware; and what the auth app declares, which every answer is checked against."""
    app = auth_app(service, **options)
    routes = [Mount("/auth", app=app), Route("/api/whoami", whoami)]
    middleware = BearerTokenMiddleware(Starlette(routes=routes), service, protected=("/api/*",))
    return middleware, DeclaredAnswers.of(app)  # type: ignore[return-value]


def oauth_client(app: Any, declared: DeclaredAnswers, **options: Any) -> AsyncOAuth2Client:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    return AsyncOAuth2Client(
        transport=transport, base_url=BASE, event_hooks={"response": [declared]}, **options
    )


@pytest.fixture
def service() -> S3AuthService:
    return make_service(refresh_grace_seconds=0)


@pytest.fixture
async def alice(service: S3AuthService) -> AsyncIterator[None]:
    async with client_for(host(service)[0]) as client:
        await register(client, "alice")
    yield


CLIENTS = {
    # RFC 6749 §2.3.1: client credentials in HTTP Basic (authlib's default with a secret),
    # in the form, or none at all (a public client).
    "basic": {"client_id": "app", "client_secret": "s3cret"},
    "post": {
        "client_id": "app",
        "client_secret": "s3cret",
        "token_endpoint_auth_method": "client_secret_post",
    },
    "public": {"client_id": "app", "token_endpoint_auth_method": "none"},
}


@pytest.mark.parametrize("options", CLIENTS.values(), ids=CLIENTS)
@pytest.mark.usefixtures("alice")
async def test_authlib_password_grant_and_refresh_reach_the_protected_route(
    service: S3AuthService, options: dict[str, str]
) -> None:
    app, declared = host(service)
    async with oauth_client(app, declared, **options) as client:
        token = await client.fetch_token(LOGIN, username="alice", password=PASSWORD)
        assert token["token_type"] == "bearer"
        assert (await client.get("/api/whoami")).json() == {"user": "alice"}
        spent = token["refresh_token"]
        renewed = await client.refresh_token(REFRESH, refresh_token=spent)
        assert renewed["refresh_token"] != spent
        assert client.token["access_token"] == renewed["access_token"]
        assert (await client.get("/api/whoami")).json() == {"user": "alice"}
        # The spent token is refused as RFC 6749 says: invalid_grant, which the client
        # raises, keeping the token it has rather than taking the refusal for a new one.
        with pytest.raises(OAuthError) as refused:
            await client.refresh_token(REFRESH, refresh_token=spent)
        assert refused.value.error == "invalid_grant"
        assert refused.value.description == (
            "An old refresh token was presented; the session has been revoked"
        )
        assert client.token["access_token"] == renewed["access_token"]


@pytest.mark.usefixtures("alice")
async def test_authlib_refreshes_by_itself_with_the_refresh_endpoint_as_token_endpoint(
    service: S3AuthService,
) -> None:
    # An expired token is renewed before a request, at `token_endpoint`: the refresh
    # endpoint, while the login goes to the login endpoint by name.
    app, declared = host(service)
    renewed: list[dict[str, Any]] = []

    async def update_token(token: dict[str, Any], **_: Any) -> None:
        renewed.append(token)

    async with oauth_client(
        app, declared, token_endpoint=REFRESH, update_token=update_token
    ) as client:
        first = await client.fetch_token(LOGIN, username="alice", password=PASSWORD)
        client.token["expires_at"] = int(time.time()) - 1
        assert (await client.get("/api/whoami")).json() == {"user": "alice"}
        assert [token["refresh_token"] for token in renewed] == [client.token["refresh_token"]]
        assert client.token["refresh_token"] != first["refresh_token"]


@pytest.mark.usefixtures("alice")
async def test_authlib_raises_a_wrong_password_as_invalid_grant(service: S3AuthService) -> None:
    app, declared = host(service)
    async with oauth_client(app, declared) as client:
        for username in ("alice", "nobody"):
            with pytest.raises(OAuthError) as refused:
                await client.fetch_token(LOGIN, username=username, password="Wrong-horse-9")
            assert refused.value.error == "invalid_grant"
            assert refused.value.description == "Invalid username or password"
            assert client.token is None


@pytest.mark.usefixtures("alice")
async def test_authlib_raises_another_grant_type_as_unsupported(service: S3AuthService) -> None:
    app, declared = host(service)
    async with oauth_client(app, declared, client_id="app", client_secret="s3cret") as client:
        with pytest.raises(OAuthError) as refused:
            await client.fetch_token(LOGIN, grant_type="client_credentials")
        assert refused.value.error == "unsupported_grant_type"
        with pytest.raises(OAuthError) as refused:
            await client.refresh_token(LOGIN, refresh_token="rt1.x")
        assert refused.value.error == "unsupported_grant_type"
        with pytest.raises(OAuthError) as refused:
            await client.fetch_token(REFRESH, username="alice", password=PASSWORD)
        assert refused.value.error == "unsupported_grant_type"
        assert client.token is None


@pytest.mark.usefixtures("alice")
async def test_authlib_raises_a_malformed_refresh_as_invalid_request_or_grant(
    service: S3AuthService,
) -> None:
    app, declared = host(service)
    async with oauth_client(app, declared) as client:
        with pytest.raises(OAuthError) as refused:
            await client.refresh_token(REFRESH, refresh_token="not-a-refresh-token")
        assert refused.value.error == "invalid_grant"
        with pytest.raises(OAuthError) as refused:
            await client.fetch_token(LOGIN, grant_type="password", username="alice")
        assert refused.value.error == "invalid_request"


@pytest.mark.usefixtures("alice")
async def test_authlib_raises_a_rate_limited_refresh_rather_than_keep_it_as_a_token(
    service: S3AuthService,
) -> None:
    limiter = RateLimiter({"token": RateLimit(max_requests=1, window_seconds=60)})
    app, declared = host(service, rate_limit=True, limiter=limiter)
    async with oauth_client(app, declared) as client:
        token = await client.fetch_token(LOGIN, username="alice", password=PASSWORD)
        await client.refresh_token(REFRESH, refresh_token=token["refresh_token"])
        kept = dict(client.token)
        with pytest.raises(OAuthError) as refused:
            await client.refresh_token(REFRESH, refresh_token=kept["refresh_token"])
        assert refused.value.error == "temporarily_unavailable"
        assert client.token == kept


def test_requests_oauthlib_legacy_application_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # a loopback server
    service = make_service(refresh_grace_seconds=0)
    app, _ = host(service)
    with serving(app) as url:
        registered = requests.post(
            f"{url}/auth/register",
            json={"username": "alice", "email": "alice@example.com", "password": PASSWORD},
            timeout=10,
        )
        assert registered.status_code == 201, registered.text
        session = OAuth2Session(client=LegacyApplicationClient(client_id="app"))
        token = session.fetch_token(
            f"{url}/auth/login", username="alice", password=PASSWORD, include_client_id=True
        )
        assert session.get(f"{url}/api/whoami", timeout=10).json() == {"user": "alice"}
        renewed = session.refresh_token(f"{url}/auth/refresh", timeout=10)
        assert renewed["refresh_token"] != token["refresh_token"]
        with pytest.raises(InvalidGrantError, match="the session has been revoked"):
            session.refresh_token(
                f"{url}/auth/refresh", refresh_token=token["refresh_token"], timeout=10
            )
        stranger = OAuth2Session(client=LegacyApplicationClient(client_id="app"))
        with pytest.raises(InvalidGrantError, match="Invalid username or password"):
            stranger.fetch_token(f"{url}/auth/login", username="alice", password="Wrong-9x")


async def test_every_refusal_of_the_token_endpoints_names_its_rfc_6749_error(
    service: S3AuthService,
) -> None:
    app, declared = host(service)
    async with client_for(app, declared=declared) as client:
        answers = {
            "malformed_body": await client.post(
                "/auth/login", content=b"username=%ff", headers={"content-type": FORM}
            ),
            "validation_error": await client.post("/auth/login", data={"username": "alice"}),
            "unsupported_media_type": await client.post(
                "/auth/refresh", content=b"x", headers={"content-type": "text/plain"}
            ),
            "authentication_required": await client.post("/auth/refresh", data={}),
            "invalid_token": await client.post("/auth/refresh", data={"refresh_token": "rt1.x"}),
        }
    for code, answer in answers.items():
        status = 401 if code in ("authentication_required", "invalid_token") else answer.status_code
        body = assert_problem(answer, status, code)
        assert body["error"] == TOKEN_ERRORS[code]
        assert body["error_description"] == body.get("detail", body["title"])
    assert {code: TOKEN_ERRORS[code] for code in answers} == {
        "malformed_body": "invalid_request",
        "validation_error": "invalid_request",
        "unsupported_media_type": "invalid_request",
        "authentication_required": "invalid_request",
        "invalid_token": "invalid_grant",
    }


class Broken(StoreWrapper):
    """A store whose every request, once `broken`, fails as a bug would: not an error of
    this package, so an answer of the app's own 500."""

    broken = False

    async def call(self, name: str, run: Callable[[], Awaitable[R]]) -> R:
        if self.broken:
            raise RuntimeError("a bug")
        return await run()


async def test_a_bug_at_the_token_endpoints_is_a_server_error_to_oauth_clients(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = Broken(ObjectStore.from_url("memory://"))
    service = make_service(store=store, refresh_grace_seconds=0)
    app, declared = host(service)
    async with client_for(app) as client:
        await register(client, "alice")
        token = (
            await client.post("/auth/login", data={"username": "alice", "password": PASSWORD})
        ).json()
        store.broken = True
        answers = [
            await client.post("/auth/login", data={"username": "alice", "password": PASSWORD}),
            await client.post("/auth/refresh", data={"refresh_token": token["refresh_token"]}),
        ]
        other = await client.post(
            "/auth/register",
            json={"username": "bob", "email": "bob@example.com", "password": PASSWORD},
        )
    for answer in answers:
        body = assert_problem(answer, 500, "internal_error")
        assert body == {
            "title": "Internal server error",
            "status": 500,
            "code": "internal_error",
            "error": "server_error",
            "error_description": "Internal server error",
        }
        assert answer.headers["cache-control"] == "no-store"
        declared.check_problem(answer)
    # Elsewhere a 500 has no OAuth members, and the check says so.
    assert assert_problem(other, 500, "internal_error").keys() == {"title", "status", "code"}
    declared.check_problem(other)
    assert "a bug" in caplog.text  # logged, not answered
