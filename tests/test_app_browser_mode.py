"""Browser mode (S3AUTH_REFRESH_COOKIE): the refresh token travels in an HttpOnly; Secure;
SameSite=Strict cookie scoped to the refresh endpoint, never in a body."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import make_service, make_settings
from support import StoreWrapper
from test_app import PASSWORD, assert_problem, bearer, client_for, declared_for, mounted, register

from s3auth_asgi import S3AuthService
from s3auth_asgi.mail import FileMailer
from s3auth_asgi.storage import ObjectStore, Store

pytestmark = pytest.mark.anyio

SAME_ORIGIN = {"Origin": "https://testserver"}
"""What a browser sends with every POST of a page of the app's own origin."""


@pytest.fixture
async def browser() -> AsyncIterator[httpx.AsyncClient]:
    service = make_service(refresh_cookie=True, refresh_grace_seconds=0)
    # https: httpx, like a browser, sends a Secure cookie over https only.
    declared = declared_for(service.settings)  # the refusals the handler returns too
    async with client_for(
        mounted(service), base_url="https://testserver", declared=declared, headers=SAME_ORIGIN
    ) as client:
        yield client


def cookie_attributes(response: httpx.Response) -> tuple[str, set[str]]:
    """The refresh cookie a response sets (a login also sets the device cookie)."""
    (header,) = [
        header
        for header in response.headers.get_list("set-cookie")
        if header.startswith("s3auth_refresh=")
    ]
    value, *attributes = (part.strip() for part in header.split(";"))
    return value, set(attributes)


async def log_in(client: httpx.AsyncClient) -> httpx.Response:
    await register(client, "alice")
    response = await client.post("/auth/login", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    return response


async def test_login_sets_the_cookie_and_keeps_the_token_out_of_the_body(
    browser: httpx.AsyncClient,
) -> None:
    response = await log_in(browser)
    value, attributes = cookie_attributes(response)
    name, _, token = value.partition("=")
    assert name == "s3auth_refresh" and token.startswith("rt1.")
    assert {"HttpOnly", "Secure", "SameSite=strict", "Path=/auth/refresh"} <= attributes
    assert "refresh_token" not in response.json()
    assert token not in response.text


async def test_refresh_reads_the_cookie_and_rotates_it(browser: httpx.AsyncClient) -> None:
    first = cookie_attributes(await log_in(browser))[0]
    response = await browser.post("/auth/refresh")
    assert response.status_code == 200
    second = cookie_attributes(response)[0]
    assert second != first
    assert "refresh_token" not in response.json()
    assert (await browser.get("/auth/me", headers=bearer(response.json()))).status_code == 200


async def test_the_cookie_goes_to_the_refresh_endpoint_only(browser: httpx.AsyncClient) -> None:
    tokens = (await log_in(browser)).json()
    sent: list[str] = []

    async def record(request: httpx.Request) -> None:
        sent.append(f"{request.url.path}:{request.headers.get('cookie', '')}")

    browser.event_hooks["request"].append(record)
    await browser.get("/auth/me", headers=bearer(tokens))
    await browser.post("/auth/refresh")
    assert sent[0] == "/auth/me:"
    assert sent[1].startswith("/auth/refresh:s3auth_refresh=rt1.")


async def test_a_refused_refresh_clears_the_cookie(
    browser: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    old = cookie_attributes(await log_in(browser))[0]
    for _ in range(2):  # two rotations: the first cookie is now older than the grace token
        assert (await browser.post("/auth/refresh")).status_code == 200
    # Replaying the spent cookie is a reuse: refused, and the browser is told to drop it.
    browser.cookies.clear()
    caplog.set_level(logging.INFO, logger="s3auth_asgi.events")
    caplog.clear()  # what earlier requests logged, at a level another test left
    replay = await browser.post("/auth/refresh", headers={"Cookie": old})
    assert assert_problem(replay, 401, "refresh_token_reused")["error"] == "invalid_grant"
    # The answer is returned, not raised: the event still carries its code, and alarms.
    (record,) = [r for r in caplog.records if r.name == "s3auth_asgi.events"]
    assert (record.levelname, record.getMessage()) == (
        "ERROR",
        "auth event refresh failure refresh_token_reused",
    )
    value, attributes = cookie_attributes(replay)
    assert value == 's3auth_refresh=""'  # emptied, and expired at once
    assert {"Max-Age=0", "Path=/auth/refresh"} <= attributes
    assert_problem(await browser.post("/auth/refresh"), 401, "authentication_required")


async def test_logout_clears_the_cookie(browser: httpx.AsyncClient) -> None:
    tokens = (await log_in(browser)).json()
    for path in ("/auth/logout", "/auth/logout-all"):
        response = await browser.post(path, headers=bearer(tokens))
        assert response.status_code in (200, 204)
        assert "Max-Age=0" in cookie_attributes(response)[1]
        tokens = (
            await browser.post("/auth/login", data={"username": "alice", "password": PASSWORD})
        ).json()


async def test_ending_ones_own_current_session_clears_the_cookie(
    browser: httpx.AsyncClient,
) -> None:
    """`DELETE /sessions/{id}` of the caller's own session ends the session of the cookie:
    the browser is told to drop it, as at a logout. Another session's end leaves it."""
    await log_in(browser)
    login = await browser.post("/auth/login", data={"username": "alice", "password": PASSWORD})
    tokens = login.json()  # the cookie now holds this second session's refresh token
    listed = (await browser.get("/auth/sessions", headers=bearer(tokens))).json()["sessions"]
    (current,) = [s["id"] for s in listed if s["current"]]
    (other,) = [s["id"] for s in listed if not s["current"]]

    ended_other = await browser.delete(f"/auth/sessions/{other}", headers=bearer(tokens))
    assert ended_other.status_code == 204
    assert "set-cookie" not in ended_other.headers
    assert (await browser.post("/auth/refresh")).status_code == 200  # the cookie still works

    tokens = (
        await browser.post("/auth/login", data={"username": "alice", "password": PASSWORD})
    ).json()
    listed = (await browser.get("/auth/sessions", headers=bearer(tokens))).json()["sessions"]
    (current,) = [s["id"] for s in listed if s["current"]]
    ended_own = await browser.delete(f"/auth/sessions/{current}", headers=bearer(tokens))
    assert ended_own.status_code == 204
    value, attributes = cookie_attributes(ended_own)
    assert value == 's3auth_refresh=""'
    assert {"Max-Age=0", "Path=/auth/refresh", "HttpOnly", "Secure"} <= attributes
    assert_problem(await browser.post("/auth/refresh"), 401, "authentication_required")


async def test_password_change_sets_a_new_cookie(browser: httpx.AsyncClient) -> None:
    tokens = (await log_in(browser)).json()
    response = await browser.post(
        "/auth/password",
        json={"current_password": PASSWORD, "new_password": "Newer123!"},
        headers=bearer(tokens),
    )
    assert response.status_code == 200
    assert cookie_attributes(response)[0].startswith("s3auth_refresh=rt1.")
    assert (await browser.post("/auth/refresh")).status_code == 200


async def test_a_refresh_cookie_sent_twice_is_refused_and_kept() -> None:
    # Another host of the site (`evil.example.com` beside `auth.example.com`) can set a
    # cookie of the same name for the whole domain and the same path (cookie tossing): the
    # browser then sends both, and nothing in the request says which is the host's own.
    # Using either would put the page in the planter's session, or, for a value that fails,
    # have the 401 clear the owner's cookie; so neither is used and nothing is cleared.
    service = make_service(refresh_cookie=True)
    async with client_for(
        mounted(service), base_url="https://testserver", headers=SAME_ORIGIN
    ) as client:
        await register(client, "mallory")
        await log_in(client)
        alice = client.cookies["s3auth_refresh"]
        await client.post("/auth/login", data={"username": "mallory", "password": PASSWORD})
        mallory = client.cookies["s3auth_refresh"]
        client.cookies.clear()
        sent = {
            "the owner's, then a tossed one": [f"s3auth_refresh={alice}; s3auth_refresh={mallory}"],
            "a tossed one first": [f"s3auth_refresh={mallory}; s3auth_refresh={alice}"],
            "a broken one tossed": [f"s3auth_refresh={alice}; s3auth_refresh=rt1.garbage"],
            "the same value twice": [f's3auth_refresh={alice};s3auth_refresh="{alice}"'],
            # HTTP/2 may send each cookie in a field of its own.
            "in two Cookie fields": [f"s3auth_refresh={alice}", f"s3auth_refresh={mallory}"],
        }
        for label, fields in sent.items():
            service.store.reset_counts()
            response = await client.post(
                "/auth/refresh", headers=[("Cookie", field) for field in fields]
            )
            problem = assert_problem(response, 400, "repeated_cookie")
            assert "s3auth_refresh" in problem["detail"], label
            assert "set-cookie" not in response.headers, label
            assert dict(service.store.requests) == {}, label
        # Neither token was spent: each alone still refreshes its own account's session.
        for token, name in ((alice, "alice"), (mallory, "mallory")):
            response = await client.post(
                "/auth/refresh", headers={"Cookie": f"s3auth_refresh={token}"}
            )
            assert response.status_code == 200
            me = await client.get("/auth/me", headers=bearer(response.json()))
            assert me.json()["username"] == name


class OtherTabRefreshes(StoreWrapper):
    """Holds the next conditional PUT while the browser's other tab refreshes twice (its
    requests served by another instance), each answer putting the newest token in the
    jar."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.other: S3AuthService | None = None
        self.tokens: list[str] = []

    async def call(self, name: str, run: Any) -> Any:
        if name == "replace" and self.other is not None:
            other, self.other = self.other, None
            for _ in range(2):
                pair = await other.refresh_access_token(self.tokens[-1])
                self.tokens.append(pair.refresh_token)
        return await run()


async def test_a_refresh_that_lost_to_the_other_tabs_refreshes_keeps_the_cookie() -> None:
    """Two tabs refresh with the same cookie; one request's write is held in the store while
    the other tab rotates, and at once rotates again. The held one is refused and ends
    nothing (the session goes on): its answer must not delete the cookie, which by then
    holds the session's newest token, or the browser is logged out of a live session."""
    inner = ObjectStore.from_url("memory://")
    held = OtherTabRefreshes(inner)
    service = make_service(refresh_cookie=True, store=held)
    async with client_for(
        mounted(service), base_url="https://testserver", headers=SAME_ORIGIN
    ) as client:
        await log_in(client)
        held.tokens.append(client.cookies["s3auth_refresh"])
        held.other = make_service(refresh_cookie=True, store=inner)
        refused = await client.post("/auth/refresh")
        assert_problem(refused, 401, "token_revoked")
        assert "set-cookie" not in refused.headers
        newest = {"Cookie": f"s3auth_refresh={held.tokens[-1]}"}
        client.cookies.clear()
        assert (await client.post("/auth/refresh", headers=newest)).status_code == 200


async def test_a_refused_token_sent_in_the_body_leaves_the_cookie(
    browser: httpx.AsyncClient,
) -> None:
    """The cookie was not the token refused: it still works, and is kept."""
    await log_in(browser)
    refused = await browser.post("/auth/refresh", json={"refresh_token": "rt1.not.a.token"})
    assert_problem(refused, 401, "invalid_token")
    assert "set-cookie" not in refused.headers
    assert (await browser.post("/auth/refresh")).status_code == 200


async def test_an_administrator_ending_their_own_session_by_the_admin_path_clears_the_cookie() -> (
    None
):
    """The admin path to a session is another name for `DELETE /sessions/{id}`: ending the
    caller's own session through it clears the cookie as well; another session's end, even
    one of the caller's, leaves it."""
    service = make_service(refresh_cookie=True)
    root = await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    async with client_for(
        mounted(service), base_url="https://testserver", headers=SAME_ORIGIN
    ) as browser:
        form = {"username": "root", "password": PASSWORD}
        other = (await browser.post("/auth/login", data=form)).json()
        tokens = (await browser.post("/auth/login", data=form)).json()
        other_sid = service.decode_token(other["access_token"])["sid"]
        path = f"/auth/admin/users/{root.id}/sessions/"
        ended_other = await browser.delete(path + other_sid, headers=bearer(tokens))
        assert ended_other.status_code == 204, ended_other.text
        assert "set-cookie" not in ended_other.headers

        own_sid = service.decode_token(tokens["access_token"])["sid"]
        ended_own = await browser.delete(path + own_sid, headers=bearer(tokens))
        assert ended_own.status_code == 204, ended_own.text
        value, attributes = cookie_attributes(ended_own)
        assert value == 's3auth_refresh=""'
        assert {"Max-Age=0", "Path=/auth/refresh", "HttpOnly", "Secure"} <= attributes
        assert_problem(await browser.post("/auth/refresh"), 401, "authentication_required")


async def test_an_administrator_ending_every_own_session_by_the_admin_paths_clears_the_cookie() -> (
    None
):
    """`POST /admin/users/{own id}/revoke` is `/logout-all` by another name, and a password
    set through `/admin/users/{own id}/password` ends every session as well: the cookie's
    session is over either way, so the answer clears the cookie. The same calls on another
    account leave it."""
    service = make_service(refresh_cookie=True)
    root = await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    bob = await service.create_user("bob", "bob@example.com", PASSWORD)
    form = {"username": "root", "password": PASSWORD}
    async with client_for(
        mounted(service), base_url="https://testserver", headers=SAME_ORIGIN
    ) as browser:
        for action, body in (("revoke", None), ("password", {"new_password": "Newer123!x"})):
            tokens = (await browser.post("/auth/login", data=form)).json()
            other = await browser.post(
                f"/auth/admin/users/{bob.id}/{action}", json=body, headers=bearer(tokens)
            )
            assert other.status_code in (200, 204), other.text
            assert "set-cookie" not in other.headers, action

            own = await browser.post(
                f"/auth/admin/users/{root.id}/{action}", json=body, headers=bearer(tokens)
            )
            assert own.status_code in (200, 204), own.text
            value, attributes = cookie_attributes(own)
            assert value == 's3auth_refresh=""', action
            assert {"Max-Age=0", "Path=/auth/refresh", "HttpOnly", "Secure"} <= attributes
            refused = await browser.post("/auth/refresh")
            assert_problem(refused, 401, "authentication_required")
            form["password"] = body["new_password"] if body else PASSWORD


async def test_an_administrator_changing_their_own_scopes_clears_the_cookie() -> None:
    """New scopes end every session of the account, the caller's own among them, as
    `/admin/users/{own id}/revoke` does: the answer clears the cookie, whose token no
    refresh takes any more. A change of their own account that ends nothing leaves it."""
    service = make_service(refresh_cookie=True)
    root = await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    form = {"username": "root", "password": PASSWORD}
    async with client_for(
        mounted(service), base_url="https://testserver", headers=SAME_ORIGIN
    ) as browser:
        tokens = (await browser.post("/auth/login", data=form)).json()
        path = f"/auth/admin/users/{root.id}"
        kept = await browser.patch(path, json={"full_name": "Root"}, headers=bearer(tokens))
        assert kept.status_code == 200, kept.text
        assert "set-cookie" not in kept.headers
        assert (await browser.post("/auth/refresh")).status_code == 200

        tokens = (await browser.post("/auth/login", data=form)).json()
        ended = await browser.patch(path, json={"scopes": ["reports"]}, headers=bearer(tokens))
        assert ended.status_code == 200, ended.text
        assert ended.json()["scopes"] == ["reports"]
        value, attributes = cookie_attributes(ended)
        assert value == 's3auth_refresh=""'
        assert {"Max-Age=0", "Path=/auth/refresh", "HttpOnly", "Secure"} <= attributes
        assert_problem(await browser.post("/auth/refresh"), 401, "authentication_required")


async def test_an_administrator_ending_every_session_or_resetting_their_own_clears_the_cookie(
    tmp_path: Path,
) -> None:
    """`POST /admin/sessions/end-all` ends every session, the caller's too, and a reset
    of one's own account with `end_sessions` ends the account's: either answer clears the
    cookie, whose token no refresh takes any more. A reset of another account leaves it."""
    service = S3AuthService(
        make_settings(refresh_cookie=True),
        store=ObjectStore.from_url("memory://"),
        mailer=FileMailer(tmp_path / "outbox"),
    )
    root = await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    bob = await service.create_user("bob", "bob@example.com", PASSWORD)
    form = {"username": "root", "password": PASSWORD}
    ending = {"end_sessions": True}
    async with client_for(
        mounted(service), base_url="https://testserver", headers=SAME_ORIGIN
    ) as browser:
        tokens = (await browser.post("/auth/login", data=form)).json()
        other = await browser.post(
            f"/auth/admin/users/{bob.id}/password-reset", json=ending, headers=bearer(tokens)
        )
        assert other.status_code == 202, other.text
        assert "set-cookie" not in other.headers
        for path, body in (
            (f"/auth/admin/users/{root.id}/password-reset", ending),
            ("/auth/admin/sessions/end-all", None),
        ):
            tokens = (await browser.post("/auth/login", data=form)).json()
            own = await browser.post(path, json=body, headers=bearer(tokens))
            assert own.status_code in (200, 202), own.text
            value, attributes = cookie_attributes(own)
            assert value == 's3auth_refresh=""', path
            assert {"Max-Age=0", "Path=/auth/refresh", "HttpOnly", "Secure"} <= attributes
            assert_problem(await browser.post("/auth/refresh"), 401, "authentication_required")
    await service.mail.drain()
