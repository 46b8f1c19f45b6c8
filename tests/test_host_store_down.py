"""A token is judged before anything is asked of the store, on every path: with the store
down and no revocation snapshot yet, a token that fails its signature check is refused
401 `invalid_token` by the hosts' dependencies and guards as by the middlewares, asking the
store nothing, and only a well-signed one waits for the snapshot that cannot be read (503).
With the signing keys kept in the store and not read yet, a token that is no signed token
of an algorithm the store keeps is refused as well, before any key is asked for; one that
is needs the keys (503).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest
from conftest import make_service
from fastapi import FastAPI
from forged_tokens import b64url, claims, forge
from litestar import Litestar, get
from support import StoreWrapper, asgi_client, login, ok_app

from s3auth_asgi import (
    BearerTokenMiddleware,
    BlacklistMiddleware,
    S3AuthService,
    StoreUnavailableError,
)
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.app.fastapi import CurrentUser, include_auth
from s3auth_asgi.app.litestar import S3AuthPlugin, requires_scopes
from s3auth_asgi.keys.ring import hmac_entry
from s3auth_asgi.storage import ObjectInfo, Store

pytestmark = pytest.mark.anyio
R = TypeVar("R")


class Down(StoreWrapper):
    """`inner`, unreachable while `down`: each request tried is counted and fails."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.down = False
        self.tried = 0

    def _check(self) -> None:
        if self.down:
            self.tried += 1
            raise StoreUnavailableError("injected: the store is down")

    async def call(self, name: str, run: Callable[[], Awaitable[R]]) -> R:
        self._check()
        return await run()

    async def list(self, prefix: str, offset: str | None = None) -> AsyncIterator[ObjectInfo]:
        self._check()
        async for item in self.inner.list(prefix, offset):
            yield item


def fastapi_host(service: S3AuthService) -> Any:
    app = FastAPI()
    include_auth(app, service, rate_limit=False)

    @app.get("/me")
    async def me(user: CurrentUser) -> dict[str, str]:
        return {"user": user.username}

    return app


def litestar_host(service: S3AuthService) -> Any:
    @get("/me", guards=[requires_scopes()])
    async def me() -> dict[str, str]:
        return {"user": "alice"}

    return Litestar([me], plugins=[S3AuthPlugin(service, rate_limit=False)])


def dependency_alone(host: Any, service: S3AuthService) -> Any:
    return host(service)


def dependency_on_excluded_path(host: Any, service: S3AuthService) -> Any:
    app = BlacklistMiddleware(host(service), service)
    return BearerTokenMiddleware(app, service, exclude=("/auth/*", "/me"))


def middlewares(_host: Any, service: S3AuthService) -> Any:
    return BearerTokenMiddleware(BlacklistMiddleware(ok_app, service), service)


SETTINGS_KID = hmac_entry(make_service().settings).kid
GARBAGE = {
    "not a JWT": "not-a-jwt",
    "bad signature": forge(
        {"alg": "HS256", "typ": "at+jwt", "kid": SETTINGS_KID}, claims(), secret=b"x" * 32
    ),
    "wrong alg": forge({"alg": "HS384", "typ": "at+jwt", "kid": SETTINGS_KID}, claims()),
}
hosts = pytest.mark.parametrize("host", [fastapi_host, litestar_host], ids=["fastapi", "litestar"])
paths = pytest.mark.parametrize(
    "build",
    [dependency_alone, dependency_on_excluded_path, middlewares],
    ids=["dependency", "excluded-path", "middlewares"],
)


async def _reader_on_down_store() -> tuple[S3AuthService, Down, str]:
    """A well-signed token from one instance, and a second instance on the same store,
    which has read nothing yet, with the store going down."""
    writer = make_service()
    _, pair = await login(writer)
    down = Down(writer.store)
    reader = make_service(store=down)
    down.down = True
    return reader, down, pair.access_token


@hosts
@paths
@pytest.mark.parametrize("token", GARBAGE.values(), ids=GARBAGE.keys())
async def test_a_forged_token_is_refused_401_without_the_store(
    host: Any, build: Any, token: str
) -> None:
    reader, down, _ = await _reader_on_down_store()
    async with asgi_client(build(host, reader)) as client:
        refused = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert (refused.status_code, refused.json()["code"]) == (401, "invalid_token")
    assert down.tried == 0


@hosts
@paths
async def test_a_well_signed_token_waits_for_the_snapshot(host: Any, build: Any) -> None:
    reader, down, token = await _reader_on_down_store()
    async with asgi_client(build(host, reader)) as client:
        refused = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert (refused.status_code, refused.json()["code"]) == (503, "store_unavailable")
    assert down.tried == 1  # the one revocation sync, tried once


async def test_the_auth_app_judges_the_token_first_too() -> None:
    reader, down, token = await _reader_on_down_store()
    async with asgi_client(create_auth_app(reader, rate_limit=False)) as client:
        forged = await client.get(
            "/me", headers={"Authorization": f"Bearer {GARBAGE['bad signature']}"}
        )
        assert (forged.status_code, forged.json()["code"]) == (401, "invalid_token")
        assert down.tried == 0
        signed = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert (signed.status_code, signed.json()["code"]) == (503, "store_unavailable")
        assert down.tried == 1


def _compact(header: dict[str, Any], signature: str = "c2ln") -> str:
    return (
        f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims()).encode())}.{signature}"
    )


ES256 = {"alg": "ES256", "typ": "at+jwt", "kid": "k" * 43}
NOT_SIGNED_BY_A_STORED_KEY = {
    "one segment": "abc",
    "two segments": "YWJj.ZGVm",
    "header not base64url": "abc!.e30.c2ln",
    "header not JSON": f"{b64url(b'not json')}.e30.c2ln",
    "header an array": f"{b64url(b'[]')}.e30.c2ln",
    "HS256, kept nowhere in a store": forge({**ES256, "alg": "HS256"}, claims()),
    "alg none": _compact({**ES256, "alg": "none"}, signature=""),
    "alg not a string": _compact({**ES256, "alg": ["ES256"]}),
    "header over its bound": _compact({**ES256, "x": "x" * 400}),
}


async def _key_reader_on_down_store() -> tuple[S3AuthService, Down, str]:
    """As `_reader_on_down_store`, with ES256 keys kept in the store, which the second
    instance has not read."""
    writer = make_service(algorithm="ES256")
    _, pair = await login(writer)
    down = Down(writer.store)
    reader = make_service(store=down, algorithm="ES256")
    down.down = True
    return reader, down, pair.access_token


@hosts
@paths
@pytest.mark.parametrize(
    "token", NOT_SIGNED_BY_A_STORED_KEY.values(), ids=NOT_SIGNED_BY_A_STORED_KEY.keys()
)
async def test_no_key_is_read_for_a_token_no_stored_key_could_sign(
    host: Any, build: Any, token: str
) -> None:
    reader, down, _ = await _key_reader_on_down_store()
    async with asgi_client(build(host, reader)) as client:
        refused = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert (refused.status_code, refused.json()["code"]) == (401, "invalid_token")
    assert down.tried == 0


@hosts
@paths
@pytest.mark.parametrize("signed", [True, False], ids=["well-signed", "well-formed"])
async def test_a_token_a_stored_key_could_sign_waits_for_the_keys(
    host: Any, build: Any, signed: bool
) -> None:
    reader, down, token = await _key_reader_on_down_store()
    if not signed:
        token = _compact(ES256, signature="A" * 86)
    async with asgi_client(build(host, reader)) as client:
        refused = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert (refused.status_code, refused.json()["code"]) == (503, "store_unavailable")
    assert down.tried == 1  # the one read of the keys, tried once


async def test_the_auth_app_reads_no_key_for_what_no_stored_key_could_sign() -> None:
    reader, down, token = await _key_reader_on_down_store()
    async with asgi_client(create_auth_app(reader, rate_limit=False)) as client:
        for garbage in NOT_SIGNED_BY_A_STORED_KEY.values():
            forged = await client.get("/me", headers={"Authorization": f"Bearer {garbage}"})
            assert (forged.status_code, forged.json()["code"]) == (401, "invalid_token")
        assert down.tried == 0
        signed = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert (signed.status_code, signed.json()["code"]) == (503, "store_unavailable")
        assert down.tried == 1
