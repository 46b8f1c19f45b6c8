"""The audience of an access token (RFC 7519 §4.1.3): a verifier that names no audience
refuses every token that carries `aud`, whatever its value; one that names an audience
requires `aud` to name it, as a string or in a list. The same 401 `invalid_token` through
the service, BearerTokenMiddleware and JwksVerifier; what this library issues without an
audience carries no `aud`, so it never refuses its own tokens."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from declared_answers import DeclaredAnswers
from joserfc import jwt
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from support import (
    Clock,
    asgi_client,
    at_most_syncs,
    bearer,
    call_http,
    http_scope,
    login,
    make_clocked_service,
)
from test_app import client_for

from s3auth_asgi import InvalidTokenError, JwksVerifier, S3AuthService
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.middleware.bearer import BearerTokenMiddleware

pytestmark = pytest.mark.anyio

FOREIGN: list[Any] = ["billing", ["billing"], ["billing", "shop"], [], ""]


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"sub": request.scope["auth"].claims["sub"]})


def starlette_app(service: S3AuthService | JwksVerifier) -> Starlette:
    return Starlette(
        routes=[Route("/api/me", whoami)],
        middleware=[Middleware(BearerTokenMiddleware, tokens=service)],
    )


MISSING = object()


def signed_with_aud(service: S3AuthService, aud: Any) -> str:
    """An access token of `service`, signed with its own key, its `aud` replaced by `aud`
    (dropped for MISSING)."""
    token, _ = service.tokens.issue_access_token(
        user_id="u" * 32, username="mallory", session_id="s" * 32, is_admin=False, scopes=[]
    )
    key = service.tokens.key_set().signing_key(0)
    decoded = jwt.decode(token, key.key, algorithms=[key.algorithm])
    claims = {name: value for name, value in decoded.claims.items() if name != "aud"}
    if aud is not MISSING:
        claims["aud"] = aud
    return jwt.encode(decoded.header, claims, key.key, algorithms=[key.algorithm])


async def test_a_token_for_another_audience_is_refused_where_none_is_configured() -> None:
    """Two services sharing a key, one of them for `billing`: its tokens are not for the
    other, which names no audience."""
    clock = Clock()
    plain = make_clocked_service(clock=clock)
    billing = make_clocked_service(clock=clock, audience="billing")
    _, own = await login(plain)
    _, foreign = await login(billing)
    async with asgi_client(starlette_app(plain)) as client:
        accepted = await client.get(
            "/api/me", headers={"Authorization": f"Bearer {own.access_token}"}
        )
        refused = await client.get(
            "/api/me", headers={"Authorization": f"Bearer {foreign.access_token}"}
        )
    assert accepted.status_code == 200
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_token"
    assert refused.headers["www-authenticate"].startswith(
        'Bearer realm="api", error="invalid_token", error_description="'
    )
    assert "aud" in refused.headers["www-authenticate"]


@pytest.mark.parametrize("aud", FOREIGN, ids=repr)
async def test_any_aud_is_refused_where_none_is_configured(aud: Any) -> None:
    service = make_clocked_service(clock=Clock())
    token = signed_with_aud(service, aud)
    with pytest.raises(InvalidTokenError) as info:
        service.verify_access_token(token)
    assert info.value.code == "invalid_token"
    response = await call_http(
        BearerTokenMiddleware(starlette_app(service), service),
        http_scope("/api/me", headers=bearer(token)),
    )
    assert response.status == 401
    assert response.json()["code"] == "invalid_token"


async def test_our_tokens_carry_no_aud_without_an_audience() -> None:
    service = make_clocked_service(clock=Clock())
    _, pair = await login(service)
    claims = service.verify_access_token(pair.access_token)
    assert "aud" not in claims
    assert (
        "aud"
        not in jwt.decode(pair.access_token, service.tokens.key_set().signing_key(0).key).claims
    )


@pytest.mark.parametrize(
    ("aud", "accepted"),
    [("api", True), (["web", "api"], True), (["api"], True), ("web", False), (["web"], False),
     ([], False), ("", False), (None, False), (MISSING, False)],
)  # fmt: skip
async def test_a_configured_audience_must_be_named(aud: Any, accepted: bool) -> None:
    service = make_clocked_service(clock=Clock(), audience="api")
    token = signed_with_aud(service, aud)
    if accepted:
        assert service.verify_access_token(token)["aud"] == aud
        return
    with pytest.raises(InvalidTokenError) as info:
        service.verify_access_token(token)
    assert info.value.code == "invalid_token"


async def jwks_verifier(
    service: S3AuthService, path: Path, clock: Clock, audience: str | None
) -> JwksVerifier:
    keys = await service.published_keys()
    path.write_text(json.dumps(keys.jwks(clock())))
    verifier = JwksVerifier(path, clock=clock, audience=audience)
    await verifier.load()
    return verifier


async def test_a_jwks_verifier_without_an_audience_refuses_a_token_with_aud(
    tmp_path: Path,
) -> None:
    clock = Clock()
    billing = make_clocked_service(clock=clock, algorithm="ES256", audience="billing")
    _, pair = await login(billing)
    verifier = await jwks_verifier(billing, tmp_path / "jwks.json", clock, None)
    with pytest.raises(InvalidTokenError, match="aud"):
        verifier.verify_access_token(pair.access_token)
    response = await call_http(
        BearerTokenMiddleware(starlette_app(verifier), verifier),
        http_scope("/api/me", headers=bearer(pair.access_token)),
    )
    assert response.status == 401
    assert response.json()["code"] == "invalid_token"
    # The same token where its audience is the verifier's: accepted.
    named = await jwks_verifier(billing, tmp_path / "named.json", clock, "billing")
    assert named.verify_access_token(pair.access_token)["aud"] == "billing"


async def test_a_jwks_verifier_without_an_audience_accepts_our_tokens(tmp_path: Path) -> None:
    clock = Clock()
    service = make_clocked_service(clock=clock, algorithm="ES256")
    _, pair = await login(service)
    verifier = await jwks_verifier(service, tmp_path / "jwks.json", clock, None)
    response = await call_http(
        BearerTokenMiddleware(starlette_app(verifier), verifier),
        http_scope("/api/me", headers=bearer(pair.access_token)),
    )
    assert response.status == 200


async def test_the_auth_app_refuses_a_token_with_aud_as_its_document_declares() -> None:
    """Every operation that takes a bearer token answers it with the 401 its OpenAPI
    document declares, with no account read and nothing written."""
    service = make_clocked_service(clock=Clock())
    app = create_auth_app(service, rate_limit=False)
    taking_tokens = [op for op in app.operations if op.access != "public"]
    headers = bearer(signed_with_aud(service, "billing"))
    host = Starlette(routes=[Mount("/auth", app=app)])
    service.store.reset_counts()
    async with client_for(host, declared=DeclaredAnswers.of(app)) as client:
        for op in taking_tokens:
            path = "/auth" + op.path.format(user_id="0" * 32, session_id="0" * 32)
            refused = await client.request(op.method, path, headers=headers)
            assert refused.json()["code"] == "invalid_token", op.operation_id
    assert len(taking_tokens) > 15
    assert at_most_syncs(service.store.requests)
