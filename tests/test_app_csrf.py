"""Cross-site request forgery in browser mode (s3auth_asgi.app.origins): a state-changing
request that another site's page sent is refused with 403 `cross_origin_request` before
anything is read or stored, and no cookie is set; the app's own pages, listed origins and
clients that are not browsers are served as before. Nothing changes for GETs or in API mode.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from conftest import make_service
from test_app import PASSWORD, assert_problem, bearer, client_for, declared_for, mounted, register
from test_app_frameworks import HOSTS, auth_app_for

from s3auth_asgi import S3AuthService
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.app.origins import UNSAFE_METHODS, OriginCheck, own_origin

pytestmark = pytest.mark.anyio

OWN = "https://testserver"
LISTED = "https://app.testserver"
EVIL = "https://evil.example"
CREDENTIALS = {"username": "alice", "password": PASSWORD}
ANY_ID = "0" * 32


@dataclass
class Browser:
    """A browser-mode app at https://testserver/auth and a client that keeps its cookies."""

    service: S3AuthService
    client: httpx.AsyncClient

    def store_requests(self) -> dict[str, int]:
        return dict(self.service.store.requests)

    async def log_in(self, **headers: str) -> httpx.Response:
        return await self.client.post("/auth/login", data=CREDENTIALS, headers=headers)


def sent_by(origin: str | None = None, site: str | None = None) -> dict[str, str]:
    """The headers a browser sets on a request from a page of `origin`."""
    headers = {}
    if origin is not None:
        headers["Origin"] = origin
    if site is not None:
        headers["Sec-Fetch-Site"] = site
    return headers


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    service = make_service(refresh_cookie=True, allowed_origins=[LISTED])
    async with client_for(
        mounted(service), base_url=OWN, declared=declared_for(service.settings)
    ) as client:
        await register(client, "alice")
        yield Browser(service, client)


def assert_refused(response: httpx.Response) -> None:
    assert_problem(response, 403, "cross_origin_request")
    assert "set-cookie" not in response.headers


# Refused -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        sent_by(EVIL),
        sent_by(EVIL, "cross-site"),
        sent_by("null"),
        sent_by("http://testserver"),  # the same host over plain HTTP is another origin
        sent_by("https://testserver.evil.example"),
        sent_by(EVIL, "same-site"),
        sent_by(None, "same-site"),  # a sibling must show which one it is
        sent_by(OWN, "cross-site"),  # the browser's verdict wins over a matching Origin
        sent_by(LISTED, "cross-site"),
        sent_by(OWN, "no-such-value"),
    ],
    ids=repr,
)
async def test_a_login_from_another_site_sets_no_cookie_and_touches_no_store(
    browser: Browser, headers: dict[str, str]
) -> None:
    browser.service.store.reset_counts()
    assert_refused(await browser.log_in(**headers))
    assert browser.store_requests() == {}


async def test_a_refresh_or_logout_from_another_site_spends_nothing(browser: Browser) -> None:
    tokens = (await browser.log_in()).json()
    browser.service.store.reset_counts()
    assert_refused(await browser.client.post("/auth/refresh", headers=sent_by(EVIL)))
    for path in ("/auth/logout", "/auth/logout-all"):
        response = await browser.client.post(
            path, headers={**bearer(tokens), **sent_by(EVIL, "cross-site")}
        )
        assert_refused(response)
    assert browser.store_requests() == {}
    # The cookie was neither spent nor cleared, and the session lives on.
    response = await browser.client.post("/auth/refresh", headers=sent_by(OWN, "same-origin"))
    assert response.status_code == 200, response.text
    assert (await browser.client.get("/auth/me", headers=bearer(response.json()))).is_success


async def test_every_state_changing_operation_of_the_table_is_covered(browser: Browser) -> None:
    app = create_auth_app(browser.service, rate_limit=False)
    unsafe = [op for op in app.operations if op.method in UNSAFE_METHODS]
    assert {op.operation_id for op in unsafe} >= {"register", "login", "refresh", "logout"}
    browser.service.store.reset_counts()
    for op in unsafe:
        path = "/auth" + op.path.format(user_id=ANY_ID, session_id=ANY_ID)
        response = await browser.client.request(op.method, path, headers=sent_by(EVIL))
        assert_refused(response)
    assert browser.store_requests() == {}


async def test_an_origin_sent_twice_is_refused(browser: Browser) -> None:
    headers = [("Origin", OWN), ("Origin", EVIL)]
    assert_refused(await browser.client.post("/auth/login", data=CREDENTIALS, headers=headers))


# The refresh cookie ------------------------------------------------------------------


async def test_the_refresh_cookie_without_origin_or_fetch_metadata_is_refused(
    browser: Browser,
) -> None:
    """Every browser in use sends `Origin` on a POST, same-origin included, and
    `Sec-Fetch-Site`: a request that carries the cookie and neither header may be a browser
    that withholds them, so it is refused (OWASP's cheat sheet: block when neither `Origin`
    nor `Referer` is present), unless its `Referer` is of an allowed origin."""
    tokens = (await browser.log_in(**sent_by(OWN))).json()
    cookie = f"s3auth_refresh={browser.client.cookies['s3auth_refresh']}"
    browser.service.store.reset_counts()
    for referer in (None, f"{EVIL}/page", "http://testserver/", "https://testserver.evil.example/"):
        headers = {} if referer is None else {"Referer": referer}
        assert_refused(await browser.client.post("/auth/refresh", headers=headers))
    twice = [("Referer", f"{OWN}/"), ("Referer", f"{EVIL}/")]
    assert_refused(await browser.client.post("/auth/refresh", headers=twice))
    # Whichever route it is sent to: the header decides, not the route.
    logout = await browser.client.post("/auth/logout", headers={"Cookie": cookie, **bearer(tokens)})
    assert_refused(logout)
    assert browser.store_requests() == {}
    # A Referer of the app's own origin, or of a listed one, is the cheat sheet's fallback.
    for referer in (f"{OWN}/app/page?x=1#top", f"{LISTED}/", "https://TESTSERVER:443/"):
        response = await browser.client.post("/auth/refresh", headers={"Referer": referer})
        assert response.status_code == 200, response.text


async def test_a_refresh_without_the_cookie_needs_no_origin(browser: Browser) -> None:
    """A client that is not a browser sends its token in the body, and no header."""
    await browser.log_in(**sent_by(OWN))
    token = browser.client.cookies["s3auth_refresh"]
    browser.client.cookies.clear()
    response = await browser.client.post("/auth/refresh", json={"refresh_token": token})
    assert response.status_code == 200, response.text


# Allowed -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        sent_by(OWN, "same-origin"),
        sent_by(OWN),  # a browser without Fetch Metadata
        sent_by("https://TESTSERVER:443"),  # compared as browsers serialise origins
        sent_by(None, "same-origin"),
        sent_by(None, "none"),  # the user's own navigation
        sent_by(LISTED, "same-site"),
        sent_by(LISTED),
        {},  # not a browser: curl, a server, a mobile app
    ],
    ids=repr,
)
async def test_the_apps_own_pages_listed_origins_and_non_browsers_log_in(
    browser: Browser, headers: dict[str, str]
) -> None:
    response = await browser.log_in(**headers)
    assert response.status_code == 200, response.text
    assert "s3auth_refresh=rt1." in response.headers["set-cookie"]


async def test_reads_are_not_checked(browser: Browser) -> None:
    tokens = (await browser.log_in()).json()
    foreign = sent_by(EVIL, "cross-site")
    assert (await browser.client.get("/auth/me", headers={**bearer(tokens), **foreign})).is_success
    assert (await browser.client.get("/auth/openapi.json", headers=foreign)).is_success
    assert (await browser.client.head("/auth/.well-known/jwks.json", headers=foreign)).is_success


async def test_api_mode_is_not_checked() -> None:
    service = make_service(refresh_cookie=False)
    async with client_for(
        mounted(service), base_url=OWN, declared=declared_for(service.settings)
    ) as client:
        account = {"username": "alice", "email": "alice@example.com", "password": PASSWORD}
        response = await client.post(
            "/auth/register", json=account, headers=sent_by(EVIL, "cross-site")
        )
        assert response.status_code == 201, response.text
        response = await client.post(
            "/auth/login", data=CREDENTIALS, headers=sent_by(EVIL, "cross-site")
        )
        assert response.status_code == 200, response.text
        refresh = {"refresh_token": response.json()["refresh_token"]}
        response = await client.post("/auth/refresh", json=refresh, headers=sent_by(EVIL))
        assert response.status_code == 200, response.text


async def test_behind_a_proxy_that_rewrites_host_the_public_origin_is_listed() -> None:
    """The own origin comes from the request; a proxy that sends `Host: internal:8000`
    hides the public one, which must then be listed (or the browser sends Fetch Metadata)."""
    public = "https://auth.example.com"
    for listed, status in (([], 403), ([public], 200)):
        service = make_service(refresh_cookie=True, allowed_origins=listed)
        async with client_for(
            mounted(service),
            base_url="http://internal:8000",
            declared=declared_for(service.settings),
        ) as client:
            await register(client, "alice")
            response = await client.post("/auth/login", data=CREDENTIALS, headers=sent_by(public))
            assert response.status_code == status, response.text


@pytest.mark.parametrize("root_path", ["", "/api"])
@pytest.mark.parametrize("host", sorted(HOSTS))
async def test_every_host_framework_hands_over_what_the_check_needs(
    host: str, root_path: str
) -> None:
    """Scheme and Host reach the mounted app intact under Starlette, FastAPI, Litestar and
    Quart, so the own origin is recognised and another is not."""
    service = make_service(refresh_cookie=True)
    app = HOSTS[host](auth_app_for(host, service))
    prefix = f"{root_path}/auth"
    async with client_for(app, base_url=OWN, root_path=root_path) as client:
        await register(client, "alice", prefix=prefix)
        login = f"{prefix}/login"
        assert_refused(await client.post(login, data=CREDENTIALS, headers=sent_by(EVIL)))
        response = await client.post(login, data=CREDENTIALS, headers=sent_by(OWN))
        assert response.status_code == 200, response.text


# The pieces --------------------------------------------------------------------------


def test_the_own_origin_is_the_scheme_and_host_of_the_request() -> None:
    def scope(headers: list[tuple[bytes, bytes]], **extra: Any) -> dict[str, Any]:
        return {"type": "http", "scheme": "https", "headers": headers, **extra}

    assert own_origin(scope([(b"host", b"Auth.Example.com:443")])) == "https://auth.example.com"
    assert own_origin(scope([(b"host", b"[::1]:8443")])) == "https://[::1]:8443"
    assert own_origin(scope([], server=("10.0.0.5", 8443))) == "https://10.0.0.5:8443"
    assert own_origin(scope([], server=("::1", 443))) == "https://[::1]"
    assert own_origin(scope([(b"host", b"bad host")])) is None
    assert own_origin(scope([])) is None


def test_only_unsafe_methods_in_browser_mode_are_checked() -> None:
    browser = OriginCheck(make_service(refresh_cookie=True).settings)
    api = OriginCheck(make_service().settings)
    methods = ("GET", "HEAD", "OPTIONS", "TRACE", "POST", "PUT", "PATCH", "DELETE")
    assert [m for m in methods if browser.applies_to(m)] == ["POST", "PUT", "PATCH", "DELETE"]
    assert not any(api.applies_to(m) for m in UNSAFE_METHODS)


def test_the_document_lists_the_403_where_the_check_applies() -> None:
    def responses(service: S3AuthService, path: str, method: str) -> dict[str, Any]:
        document = create_auth_app(service).openapi.for_mount("/auth")
        found: dict[str, Any] = document["paths"][path][method]["responses"]
        return found

    browser, api = make_service(refresh_cookie=True), make_service()
    assert "cross_origin_request" in responses(browser, "/login", "post")["403"]["description"]
    admin = responses(browser, "/admin/users/{user_id}", "delete")["403"]["description"]
    assert admin.startswith("Authenticated, but not allowed; or") and "cross_origin" in admin
    assert "403" not in responses(browser, "/me", "get")
    # In API mode a login's 403 is a token too large for its verifiers, never an origin's.
    api_login = responses(api, "/login", "post")["403"]["description"]
    assert "`token_too_large`" in api_login and "cross_origin" not in api_login
    browser_login = responses(browser, "/login", "post")["403"]["description"]
    assert browser_login.startswith(api_login) and "`cross_origin_request`" in browser_login
