"""Interoperability over real HTTP: the auth app serves its JWKS from uvicorn on 127.0.0.1;
PyJWT (an independent JOSE implementation) verifies our tokens from it and signs tokens
ours verify; and a verify-only service (JwksVerifier: no secret, no store) verifies from
the URL, reading it again at most once per interval however many unknown kids arrive."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from support import free_port, make_clocked_service, serving, stored_user
from test_tokens_low_s import s_of, twin

from s3auth_asgi import BearerTokenMiddleware, InvalidTokenError, JwksVerifier, S3AuthService
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.http_reads import _HttpRedirectsOnly
from s3auth_asgi.keys.algorithms import generate_key
from s3auth_asgi.keys.stored import KeyStore
from s3auth_asgi.storage import ObjectStore

pytestmark = pytest.mark.anyio

JWKS_PATH = "/.well-known/jwks.json"


@dataclass
class AuthServer:
    url: str
    service: S3AuthService
    jwks_requests: list[float]


def serve(service: S3AuthService) -> Iterator[AuthServer]:
    requests: list[float] = []
    app = create_auth_app(service)

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == JWKS_PATH:
            requests.append(time.monotonic())
        await app(scope, receive, send)

    with serving(counting) as url:
        yield AuthServer(url, service, requests)


def keyed(algorithm: str, **overrides: Any) -> S3AuthService:
    return make_clocked_service(
        clock=time.time,
        store=ObjectStore.from_url("memory://"),
        algorithm=algorithm,
        issuer="https://auth.example",
        audience="api",
        **overrides,
    )


@pytest.fixture(params=["ES256", "EdDSA", "RS256"])
def auth_server(request: pytest.FixtureRequest) -> Iterator[AuthServer]:
    yield from serve(keyed(request.param))


async def token_of(service: S3AuthService, username: str = "alice") -> str:
    return (await service.create_token_pair(await stored_user(service, username))).access_token


async def test_pyjwt_verifies_our_tokens_from_the_published_jwks(auth_server: AuthServer) -> None:
    token = await token_of(auth_server.service)
    async with httpx.AsyncClient() as client:
        jwks = (await client.get(auth_server.url + JWKS_PATH)).json()
    header = jwt.get_unverified_header(token)
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    claims = jwt.decode(
        token, key.key, algorithms=[header["alg"]], audience="api", issuer="https://auth.example"
    )
    assert claims["preferred_username"] == "alice"
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(tampered, key.key, algorithms=[header["alg"]], audience="api")


def test_the_rfc_9864_name_is_a_setting_because_some_verifiers_lack_it() -> None:
    """PyJWT 2 knows `EdDSA` and not `Ed25519`: the same key signs either name."""
    import anyio

    service = keyed("Ed25519")
    token = anyio.run(token_of, service)
    assert jwt.get_unverified_header(token)["alg"] == "Ed25519"
    assert service.verify_access_token(token)
    jwks = anyio.run(service.published_keys).jwks(time.time())
    key = jwt.PyJWKSet.from_dict({"keys": [{**jwks["keys"][0], "alg": "EdDSA"}]}).keys[0]
    with pytest.raises(jwt.InvalidAlgorithmError):
        jwt.decode(token, key.key, algorithms=["Ed25519"], audience="api")


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA", "RS256"])
async def test_tokens_pyjwt_signs_with_our_key_verify_with_ours(algorithm: str) -> None:
    private = generate_key(algorithm).private_key
    assert private is not None
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    service = keyed(algorithm, signing_key=pem)
    kid = (await service.published_keys()).signing_key(time.time()).kid
    now = int(time.time())
    claims = {
        "sub": "u" * 22,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": secrets.token_urlsafe(16),
        "sid": "s" * 22,
        "iss": "https://auth.example",
        "aud": "api",
        "scope": "read",
    }

    def sign(typ: str) -> str:
        token = jwt.encode(claims, pem, algorithm=algorithm, headers={"kid": kid, "typ": typ})
        if algorithm != "ES256":
            return token
        # PyJWT writes either signature of the ECDSA pair; the low-S one verifies here.
        low, high = sorted((token, twin(token)), key=s_of)
        with pytest.raises(InvalidTokenError, match="high_s"):
            service.verify_access_token(high)
        return low

    assert service.verify_access_token(sign("at+jwt"))["sub"] == "u" * 22
    with pytest.raises(Exception, match="not an access token"):
        service.verify_access_token(sign("JWT"))


# The verify-only service -------------------------------------------------------------


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"user": request.scope["auth"].claims["sub"]})


def verify_only_app(verifier: JwksVerifier) -> Any:
    app = Starlette(routes=[Route("/whoami", whoami)])
    return BearerTokenMiddleware(app, verifier)


async def test_a_verify_only_service_verifies_from_the_jwks_url(auth_server: AuthServer) -> None:
    verifier = JwksVerifier(
        auth_server.url + JWKS_PATH,
        issuer="https://auth.example",
        audience="api",
        min_refresh_seconds=1.0,
    )
    token = await token_of(auth_server.service)
    transport = httpx.ASGITransport(app=verify_only_app(verifier))
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        answer = await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200
        assert answer.json()["user"] == auth_server.service.verify_access_token(token)["sub"]
        assert len(auth_server.jwks_requests) == 1

        # A flood of tokens naming keys nobody has: one read of the JWKS in the interval.
        intruder = generate_key(auth_server.service.settings.algorithm)
        private = intruder.private_key
        assert private is not None
        for _ in range(30):
            forged = jwt.encode(
                {"sub": "x"},
                private,
                algorithm=auth_server.service.settings.algorithm,
                headers={"kid": secrets.token_urlsafe(8), "typ": "at+jwt"},
            )
            refused = await client.get("/whoami", headers={"Authorization": f"Bearer {forged}"})
            assert refused.status_code == 401
        assert len(auth_server.jwks_requests) <= 2
        assert verifier.fetches == len(auth_server.jwks_requests)

        # A key made elsewhere starts signing: the first token naming it makes one read.
        time.sleep(1.0)
        store = auth_server.service.store
        await KeyStore(store).rotate(auth_server.service.settings.algorithm, time.time(), 0)
        ring = auth_server.service.tokens.ring
        assert ring is not None
        await ring.sync()
        rotated = await token_of(auth_server.service, "bob")
        before = len(auth_server.jwks_requests)
        answer = await client.get("/whoami", headers={"Authorization": f"Bearer {rotated}"})
        assert answer.status_code == 200
        assert len(auth_server.jwks_requests) == before + 1
        # The old key still verifies: it stopped signing, it was not retired.
        answer = await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200


async def test_a_verify_only_service_reads_a_jwks_file(tmp_path: Path) -> None:
    target = tmp_path / "jwks.json"
    service = keyed("ES256", jwks_publish_url=f"file://{target}")
    token = await token_of(service)
    verifier = JwksVerifier(target, issuer="https://auth.example", audience="api")
    await verifier.load()
    assert verifier.verify_access_token(token)["preferred_username"] == "alice"
    assert (
        json.loads(target.read_text())["keys"][0]["kid"] == jwt.get_unverified_header(token)["kid"]
    )


async def test_an_unreachable_jwks_is_a_503_not_a_401() -> None:
    service = keyed("ES256")
    token = await token_of(service)
    verifier = JwksVerifier(f"http://127.0.0.1:{free_port()}/jwks.json", timeout_seconds=1)
    transport = httpx.ASGITransport(app=verify_only_app(verifier))
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        answer = await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"


def test_the_verify_only_service_loads_no_store_and_no_hasher() -> None:
    code = (
        "import sys\n"
        "from s3auth_asgi import BearerTokenMiddleware, JwksVerifier\n"
        "BearerTokenMiddleware(lambda *a: None, JwksVerifier('https://auth.example/jwks.json'))\n"
        "print(' '.join(m for m in ('obstore', 'pwdlib', 'argon2') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == []


@pytest.mark.parametrize(
    ("start", "to", "followed"),
    [
        ("https://keys.example/jwks.json", "https://cdn.example/jwks.json", True),
        ("http://keys.example/jwks.json", "https://keys.example/jwks.json", True),
        ("https://keys.example/jwks.json", "http://keys.example/jwks.json", False),
        ("https://keys.example/jwks.json", "ftp://keys.example/jwks.json", False),
    ],
)
def test_a_jwks_fetch_follows_no_redirect_to_clear_text(
    start: str, to: str, followed: bool
) -> None:
    # Keys fetched over TLS handed over in clear could be swapped by anyone on the path.
    handler = _HttpRedirectsOnly()
    request = urllib.request.Request(start)  # noqa: S310 - built, never opened
    redirected = handler.redirect_request(request, None, 302, "Found", {}, to)
    assert (redirected is not None) == followed
    if redirected is not None:
        assert redirected.full_url == to
