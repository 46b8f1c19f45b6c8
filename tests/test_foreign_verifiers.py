"""A caller in `scope["auth"]` counts for the auth app and the hosts' checks only when the
service's own verifier put it there.

A host may protect its own routes with BearerTokenMiddleware over another verifier (an
identity provider's JWKS, another service's keys) and mount the auth app behind it. A
token that verifier accepts is no token of the service: its `sub`, `sid` and `adm` name
nobody the service logged in, even when they copy a real user's and session's ids. The
auth app and the FastAPI dependencies and Litestar guards verify the Authorization token
themselves then, and refuse it; the same with credentials a host's own code built. Behind
a middleware given the service, or its TokenCodec, a token is verified once per request,
by the middleware, as before; behind a JwksVerifier over the service's own keys, twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from litestar import Litestar, Request, get
from litestar.middleware import DefineMiddleware
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount
from support import Clock, make_clocked_service, user_record
from test_app import client_for

from s3auth_asgi import BearerCredentials, JwksVerifier, S3AuthService
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.app.fastapi import CurrentUser, include_auth
from s3auth_asgi.app.litestar import S3AuthPlugin, requires_scopes
from s3auth_asgi.keys.algorithms import generate_key
from s3auth_asgi.middleware.bearer import BearerTokenMiddleware
from s3auth_asgi.middleware.user import AuthenticatedUser
from s3auth_asgi.storage import keys
from s3auth_asgi.tokens import TokenCodec
from s3auth_asgi.types import ASGIApp, Receive, Scope, Send
from s3auth_asgi.verifier import AccessTokenVerifier

pytestmark = pytest.mark.anyio

OTHER_SECRET = "another-tenants-secret-key-long-enough-9876543210"


@dataclass
class Setting:
    ours: S3AuthService
    user_id: str
    session_id: str
    token: str
    """Our user's own access token, with administration."""


async def setting(*, algorithm: str = "HS256") -> Setting:
    """Our service and an administrator logged in with it (a real session)."""
    extra = {"signing_key": generate_key("ES256").as_pem(private=True).decode()}
    ours = make_clocked_service(
        clock=Clock(), algorithm=algorithm, **(extra if algorithm == "ES256" else {})
    )
    user = user_record("alice", scopes=["admin"], admin=True)
    await ours.store.create(keys.user(user.id), user)
    pair = await ours.create_token_pair(user)
    claims = ours.verify_access_token(pair.access_token)
    return Setting(ours, user.id, claims["sid"], pair.access_token)


Foreign = tuple[AccessTokenVerifier, Callable[[Setting], str]]


async def foreign(kind: str, at: Setting, tmp_path: Path) -> Foreign:
    """A verifier that is not the service's, and a token it accepts whose `sub` and `sid`
    are our administrator's and whose `adm` says administrator."""
    if kind == "JwksVerifier":
        pem = generate_key("ES256").as_pem(private=True).decode()
        issuer = make_clocked_service(clock=at.ours.clock, algorithm="ES256", signing_key=pem)
        jwks = tmp_path / "jwks.json"
        jwks.write_text(json.dumps((await issuer.published_keys()).jwks(at.ours.clock())))
        verifier: AccessTokenVerifier = JwksVerifier(jwks, clock=at.ours.clock)
        await verifier.load()  # type: ignore[attr-defined]
    else:
        # Another tenant on the very store, with keys of its own.
        issuer = make_clocked_service(
            clock=at.ours.clock, store=at.ours.store, secret_key=OTHER_SECRET
        )
        verifier = issuer if kind == "another service" else issuer.tokens

    def token(at: Setting) -> str:
        minted, _ = issuer.tokens.issue_access_token(
            user_id=at.user_id,
            username="alice",
            session_id=at.session_id,
            is_admin=True,
            scopes=["admin"],
        )
        return minted

    return verifier, token


FOREIGN_KINDS = ["another service", "its TokenCodec", "JwksVerifier"]


def behind(verifier: AccessTokenVerifier, ours: S3AuthService) -> Starlette:
    return Starlette(
        routes=[Mount("/auth", app=create_auth_app(ours, rate_limit=False))],
        middleware=[Middleware(BearerTokenMiddleware, tokens=verifier)],
    )


@pytest.mark.parametrize("kind", FOREIGN_KINDS)
async def test_a_token_of_another_verifier_acts_for_nobody_in_the_auth_app(
    kind: str, tmp_path: Path
) -> None:
    at = await setting()
    verifier, mint = await foreign(kind, at, tmp_path)
    token = mint(at)
    assert verifier.verify_access_token(token)["sub"] == at.user_id  # the middleware's
    headers = {"Authorization": f"Bearer {token}"}
    async with client_for(behind(verifier, at.ours)) as client:
        for method, path in (
            ("GET", "/auth/me"),
            ("GET", "/auth/sessions"),
            ("GET", "/auth/admin/users"),
            ("POST", "/auth/logout-all"),
        ):
            answer = await client.request(method, path, headers=headers)
            assert answer.status_code == 401, (method, path, answer.text)
            assert answer.json()["code"] == "invalid_token"
    # Nothing was done in the administrator's name: the session still refreshes.
    sessions = await at.ours.get_user_active_sessions(at.user_id)
    assert [s.id for s in sessions] == [at.session_id]


class Counted:
    """Counts the verifications of a real codec, whoever asks for them."""

    def __init__(self, codec: TokenCodec) -> None:
        self.calls = 0
        verify = codec.verify_access_token

        def counting(token: object) -> dict[str, Any]:
            self.calls += 1
            return verify(token)

        codec.verify_access_token = counting  # type: ignore[method-assign]


@pytest.mark.parametrize("given", ["service", "its TokenCodec"])
async def test_behind_the_services_own_verifier_a_token_is_verified_once(
    given: str, tmp_path: Path
) -> None:
    at = await setting()
    counted = Counted(at.ours.tokens)
    verifier = at.ours if given == "service" else at.ours.tokens
    headers = {"Authorization": f"Bearer {at.token}"}
    async with client_for(behind(verifier, at.ours)) as client:
        for _ in range(3):
            answer = await client.get("/auth/me", headers=headers)
            assert answer.json()["id"] == at.user_id
    # The middleware's first one; its cache then, and the app trusts what it put there.
    assert counted.calls == 1


async def test_behind_a_jwks_verifier_over_the_services_keys_the_app_verifies_again(
    tmp_path: Path,
) -> None:
    at = await setting(algorithm="ES256")
    jwks = tmp_path / "ours.json"
    jwks.write_text(json.dumps((await at.ours.published_keys()).jwks(at.ours.clock())))
    verifier = JwksVerifier(jwks, clock=at.ours.clock)
    await verifier.load()
    counted = Counted(at.ours.tokens)
    headers = {"Authorization": f"Bearer {at.token}"}
    async with client_for(behind(verifier, at.ours)) as client:
        for _ in range(2):
            assert (await client.get("/auth/me", headers=headers)).json()["id"] == at.user_id
    assert counted.calls == 2


def claiming(user_id: str, session_id: str) -> Callable[[ASGIApp], ASGIApp]:
    """A host's own middleware that says who is calling, as its own code decided."""

    def middleware(app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            claims = {"sub": user_id, "sid": session_id, "adm": True, "scope": "admin"}
            scope["auth"] = BearerCredentials(("authenticated", "admin"), claims)
            await app(scope, receive, send)

        return wrapped

    return middleware


async def test_credentials_a_host_built_itself_act_for_nobody_in_the_auth_app(
    tmp_path: Path,
) -> None:
    at = await setting()
    host = Starlette(
        routes=[Mount("/auth", app=create_auth_app(at.ours, rate_limit=False))],
        middleware=[Middleware(claiming(at.user_id, at.session_id))],
    )
    async with client_for(host) as client:
        answer = await client.get("/auth/me")
    assert answer.status_code == 401
    assert answer.json()["code"] == "authentication_required"


def fastapi_host(ours: S3AuthService, verifier: AccessTokenVerifier) -> FastAPI:
    app = FastAPI()
    include_auth(app, ours, rate_limit=False)

    @app.get("/items")
    async def items(user: CurrentUser) -> dict[str, str]:
        return {"id": user.id}

    app.add_middleware(BearerTokenMiddleware, tokens=verifier)
    return app


@get("/items", guards=[requires_scopes()])
async def litestar_items(request: Request[Any, Any, Any]) -> dict[str, str]:
    user: AuthenticatedUser = request.user
    return {"id": user.id}


def litestar_host(ours: S3AuthService, verifier: AccessTokenVerifier) -> Litestar:
    return Litestar(
        [litestar_items],
        plugins=[S3AuthPlugin(ours, rate_limit=False)],
        middleware=[DefineMiddleware(BearerTokenMiddleware, tokens=verifier)],
    )


HOSTS: dict[str, Callable[[S3AuthService, AccessTokenVerifier], Any]] = {
    "fastapi": fastapi_host,
    "litestar": litestar_host,
}


@pytest.mark.parametrize("framework", sorted(HOSTS))
@pytest.mark.parametrize("kind", ["another service", "JwksVerifier"])
async def test_a_token_of_another_verifier_is_no_caller_of_the_hosts_checks(
    framework: str, kind: str, tmp_path: Path
) -> None:
    at = await setting()
    verifier, mint = await foreign(kind, at, tmp_path)
    counted = Counted(at.ours.tokens)
    async with client_for(HOSTS[framework](at.ours, verifier)) as client:
        refused = await client.get("/items", headers={"Authorization": f"Bearer {mint(at)}"})
        assert refused.status_code == 401, refused.text
        assert refused.json()["code"] == "invalid_token"
    assert counted.calls == 1  # the service verified it, and refused it


@pytest.mark.parametrize("framework", sorted(HOSTS))
async def test_behind_the_services_middleware_the_hosts_checks_verify_nothing_again(
    framework: str, tmp_path: Path
) -> None:
    at = await setting()
    counted = Counted(at.ours.tokens)
    async with client_for(HOSTS[framework](at.ours, at.ours)) as client:
        for _ in range(2):
            answer = await client.get("/items", headers={"Authorization": f"Bearer {at.token}"})
            assert answer.json() == {"id": at.user_id}
    assert counted.calls == 1
