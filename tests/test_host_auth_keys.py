"""A token signed by a key this process has not read yet (`s3auth keys rotate --now` run
elsewhere): the FastAPI dependencies, the Litestar guards and the auth app's own token
check read the stored keys again and admit it, as BearerTokenMiddleware does, at most once
per key-sync interval; a key that is nowhere is still refused.

Two processes share one memory:// store and one clock moved by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from litestar import Litestar, get
from starlette.applications import Starlette
from starlette.routing import Mount
from support import Clock, make_clocked_service
from test_app import PASSWORD, assert_problem, client_for

from s3auth_asgi import BearerTokenMiddleware, S3AuthService
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.app.fastapi import CurrentUser, include_auth
from s3auth_asgi.app.litestar import S3AuthPlugin, requires_scopes
from s3auth_asgi.keys.algorithms import generate_key
from s3auth_asgi.keys.keyset import KeyEntry
from s3auth_asgi.keys.stored import KeyStore
from s3auth_asgi.storage import ObjectStore

pytestmark = pytest.mark.anyio

SYNC = 60


def keyed(store: ObjectStore, clock: Clock) -> S3AuthService:
    return make_clocked_service(
        store=store,
        clock=clock,
        algorithm="ES256",
        key_sync_seconds=SYNC,
        revocation_sync_seconds=5 * SYNC,  # fresh throughout: only the keys are read
    )


def fastapi_host(service: S3AuthService) -> Any:
    app = FastAPI()
    include_auth(app, service, rate_limit=False)

    @app.get("/auth/me-too")
    async def me(user: CurrentUser) -> dict[str, str]:
        return {"user": user.username}

    return app


def litestar_host(service: S3AuthService) -> Any:
    @get("/auth/me-too", guards=[requires_scopes()])
    async def me() -> dict[str, bool]:
        return {"ok": True}

    return Litestar([me], plugins=[S3AuthPlugin(service, rate_limit=False)])


def auth_app(service: S3AuthService) -> Any:
    return Starlette(routes=[Mount("/auth", app=create_auth_app(service, rate_limit=False))])


def middleware(service: S3AuthService) -> Any:
    return BearerTokenMiddleware(auth_app(service), service)


HOSTS: dict[str, tuple[Callable[[S3AuthService], Any], str]] = {
    "fastapi dependency": (fastapi_host, "/auth/me-too"),
    "litestar guard": (litestar_host, "/auth/me-too"),
    "auth app": (auth_app, "/auth/me"),
    "bearer middleware": (middleware, "/auth/me"),
}


@pytest.mark.parametrize("host", sorted(HOSTS))
async def test_a_token_of_a_key_made_active_elsewhere_is_admitted(host: str) -> None:
    build, path = HOSTS[host]
    clock, store = Clock(), ObjectStore.from_url("memory://")
    issuer, verifier = keyed(store, clock), keyed(store, clock)
    user = await issuer.create_user("alice", "alice@example.com", PASSWORD)
    await verifier.ensure_fresh()  # what its lifespan does at start-up
    # The leak's response, run elsewhere: a new key that signs at once.
    await KeyStore(store).rotate("ES256", clock(), 0)
    clock.advance(SYNC)  # the verifier's keys are due for a read, which no request made
    await issuer.tokens.ring.sync()  # type: ignore[union-attr]
    token = (await issuer.create_token_pair(user)).access_token
    store.reset_counts()
    async with client_for(build(verifier)) as client:
        answered = await client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert answered.status_code == 200, answered.text
        keys_read = store.requests["get"] - (1 if path == "/auth/me" else 0)
        assert keys_read == 1
        # A key no store holds: refused, and the keys are not read again within the
        # interval, however many such tokens come.
        stranger = KeyEntry("stranger", "ES256", generate_key("ES256"))
        forged = issuer.tokens.issue_access_token(
            user_id=user.id,
            username="alice",
            session_id="s" * 32,
            is_admin=False,
            scopes=[],
            key=stranger,
        )[0]
        store.reset_counts()
        for _ in range(3):
            refused = await client.get(path, headers={"Authorization": f"Bearer {forged}"})
            assert_problem(refused, 401, "invalid_token")
        assert store.requests["get"] == 0
