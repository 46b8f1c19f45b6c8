"""BearerTokenMiddleware on raw ASGI: who gets in, what a refusal looks like, the
verified-token cache, WebSocket token conventions, and pass-through of everything else."""

from __future__ import annotations

import base64
import json
import operator
from typing import Any

import pytest
from conftest import SECRET
from hypothesis import given
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.errors import ExpiredTokenError
from joserfc.jwk import ECKey, OctKey
from joserfc.jwt import JWTClaimsRegistry
from support import (  # noqa: F401 (the *_fixture names register fixtures here)
    Clock,
    RecordingApp,
    bearer,
    call_http,
    clock_fixture,
    clocked_service_fixture,
    http_scope,
    login,
    make_clocked_service,
    run_lifespan,
    websocket_scope,
    websocket_session,
)

from s3auth_asgi import ConfigurationError, S3AuthService
from s3auth_asgi.errors import PermissionDeniedError, TokenExpiredError
from s3auth_asgi.keys.remote import JwksVerifier
from s3auth_asgi.middleware.bearer import BearerTokenMiddleware
from s3auth_asgi.middleware.cache import VerifiedToken
from s3auth_asgi.middleware.user import (
    AnonymousUser,
    AuthenticatedUser,
    BearerCredentials,
    current_user,
)
from s3auth_asgi.problems import auth_error_response
from s3auth_asgi.tokens import TokenCodec

pytestmark = pytest.mark.anyio


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers with what the middleware put into the scope."""
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        message = await receive()
        await send(
            {"type": "websocket.send", "text": f"{scope['user'].display_name}:{message['text']}"}
        )
        await send({"type": "websocket.close", "code": 1000})
        return
    user, auth = scope["user"], scope["auth"]
    body = {
        "authenticated": user.is_authenticated,
        "id": user.id,
        "identity": user.identity,
        "name": user.display_name,
        "scopes": list(user.scopes),
        "granted": list(auth.scopes),
        "admin": user.is_admin,
        "current_is_scope_user": current_user() is user,
    }
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


def sign(header: dict[str, Any], claims: dict[str, Any], key: Any = None) -> str:
    key = key if key is not None else OctKey.import_key(SECRET.encode())
    return jwt.encode(header, claims, key, algorithms=[header["alg"]])


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}."


# Who gets in -------------------------------------------------------------------------


async def test_a_valid_token_puts_the_user_and_credentials_into_the_scope(
    service: S3AuthService,
) -> None:
    user, pair = await login(service, "alice", scopes=["items:read", "items:write"])
    app = BearerTokenMiddleware(echo_app, service)
    response = await call_http(app, http_scope(headers=bearer(pair.access_token)))
    assert response.status == 200
    assert response.json() == {
        "authenticated": True,
        "id": user.id,
        "identity": user.id,
        "name": "alice",
        "scopes": ["items:read", "items:write"],
        "granted": ["authenticated", "items:read", "items:write"],
        "admin": False,
        "current_is_scope_user": True,
    }


async def test_the_user_object_exposes_claims_read_only(service: S3AuthService) -> None:
    user, pair = await login(service)
    inner = RecordingApp()
    await call_http(
        BearerTokenMiddleware(inner, service), http_scope(headers=bearer(pair.access_token))
    )
    (seen,) = inner.scopes
    authenticated, credentials = seen["user"], seen["auth"]
    assert isinstance(authenticated, AuthenticatedUser)
    assert isinstance(credentials, BearerCredentials)
    assert authenticated.claims["sub"] == user.id
    assert authenticated.session_id == authenticated.claims["sid"]
    assert authenticated.roles == ()
    assert credentials.claims is authenticated.claims
    with pytest.raises(TypeError):
        authenticated.claims["sub"] = "someone else"  # type: ignore[index]


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
async def test_the_scheme_is_case_insensitive(service: S3AuthService, scheme: str) -> None:
    _, pair = await login(service)
    headers = [(b"authorization", f"{scheme}   {pair.access_token} ".encode())]
    response = await call_http(
        BearerTokenMiddleware(echo_app, service), http_scope(headers=headers)
    )
    assert response.status == 200
    assert response.json()["name"] == "alice"


async def test_anonymous_requests_get_an_unauthenticated_user_outside_protected_paths(
    service: S3AuthService,
) -> None:
    app = BearerTokenMiddleware(echo_app, service, protected=("/api/*",))
    response = await call_http(app, http_scope("/public"))
    assert response.status == 200
    assert response.json()["authenticated"] is False
    assert response.json()["name"] == ""
    assert response.json()["granted"] == []


async def test_a_missing_token_on_a_protected_path_is_401_without_an_error_code(
    service: S3AuthService,
) -> None:
    app = BearerTokenMiddleware(echo_app, service, realm="shop")
    response = await call_http(app, http_scope("/api/items"))
    assert response.status == 401
    assert response.challenge == 'Bearer realm="shop"'
    assert response.headers[b"content-type"] == b"application/problem+json"
    assert response.headers[b"cache-control"] == b"no-store"
    assert response.headers[b"x-content-type-options"] == b"nosniff"
    assert response.json() == {
        "title": "Authentication required",
        "status": 401,
        "code": "authentication_required",
    }


async def test_another_scheme_counts_as_no_token(service: S3AuthService) -> None:
    app = BearerTokenMiddleware(echo_app, service, protected=("/api/*",))
    basic = [(b"authorization", b"Basic YWxpY2U6c2VjcmV0")]
    assert (await call_http(app, http_scope("/api/x", basic))).challenge == 'Bearer realm="api"'
    assert (await call_http(app, http_scope("/public", basic))).json()["authenticated"] is False


async def test_excluded_paths_do_not_look_at_credentials(service: S3AuthService) -> None:
    app = BearerTokenMiddleware(echo_app, service, exclude=("/health", "/docs", "/docs/*"))
    garbage = [(b"authorization", b"Bearer not-a-token")]
    for path in ("/health", "/docs", "/docs/oauth2-redirect"):
        response = await call_http(app, http_scope(path, garbage))
        assert response.status == 200, path
        assert response.json()["authenticated"] is False
    for path in ("/healthz", "/docsearch"):
        assert (await call_http(app, http_scope(path, garbage))).status == 401, path


@pytest.mark.parametrize(
    ("headers", "subprotocols", "query", "seen"),
    [
        ([], ["bearer"], b"", []),
        ([], ["chat.v1", "bearer"], b"", ["chat.v1"]),
        ([], ["bearer", "x", "chat.v1", "bearer"], b"", ["chat.v1"]),
        ([], ["bearer", "not ascii \u00e9"], b"", []),
        ([], ["bearer", ""], b"", []),
        ([(b"authorization", b"Bearer a"), (b"authorization", b"Bearer b")], [], b"", []),
        ([], ["bearer", "x"], b"access_token=y&access_token=z", []),
    ],
)
async def test_excluded_websocket_paths_do_not_look_at_credentials(
    service: S3AuthService,
    headers: list[tuple[bytes, bytes]],
    subprotocols: list[str],
    query: bytes,
    seen: list[str],
) -> None:
    """Nothing a handshake carries is judged on an excluded path, not even a malformed
    convention; the marker and what follows it are still taken out, so no token reaches
    the app, and the marker is named when the app accepts without a subprotocol."""
    offered: list[list[str]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        offered.append(scope["subprotocols"])
        await echo_app(scope, receive, send)

    middleware = BearerTokenMiddleware(
        app, service, exclude=("/public/ws",), websocket_query_param="access_token"
    )
    scope = websocket_scope("/public/ws", headers, subprotocols=subprotocols, query_string=query)
    result = await websocket_session(middleware, scope)
    assert result.texts == [":hello"]  # anonymous
    assert offered == [seen]
    expected = {"subprotocol": "bearer"} if "bearer" in subprotocols else {}
    assert result.first == {"type": "websocket.accept", **expected}


async def test_an_invalid_token_on_an_optional_path_is_refused(service: S3AuthService) -> None:
    app = BearerTokenMiddleware(echo_app, service, protected=("/api/*",))
    response = await call_http(app, http_scope("/public", [(b"authorization", b"Bearer x.y.z")]))
    assert response.status == 401
    assert 'error="invalid_token"' in response.challenge


async def test_methods_limit_which_requests_need_a_token(service: S3AuthService) -> None:
    app = BearerTokenMiddleware(echo_app, service, methods=("POST", "DELETE"))
    assert (await call_http(app, http_scope("/api/items", method="GET"))).status == 200
    assert (await call_http(app, http_scope("/api/items", method="POST"))).status == 401
    assert (await call_http(app, http_scope("/api/items", method="DELETE"))).status == 401


async def test_path_scopes_give_403_insufficient_scope(service: S3AuthService) -> None:
    _, reader = await login(service, "reader", scopes=["items:read"])
    _, admin = await login(service, "root", scopes=["admin", "items:read"])
    app = BearerTokenMiddleware(
        echo_app, service, protected={"/*": [], "/admin*": ["admin"], "/admin/billing": ["billing"]}
    )
    refused = await call_http(app, http_scope("/admin/users", bearer(reader.access_token)))
    assert refused.status == 403
    assert refused.challenge == (
        'Bearer realm="api", error="insufficient_scope", '
        'error_description="This needs the scopes: admin", scope="admin"'
    )
    assert refused.json()["code"] == "insufficient_scope"
    assert (
        await call_http(app, http_scope("/admin/users", bearer(admin.access_token)))
    ).status == 200
    # Every matching pattern adds its scopes.
    billing = await call_http(app, http_scope("/admin/billing", bearer(admin.access_token)))
    assert billing.status == 403
    assert 'scope="admin billing"' in billing.challenge
    assert (await call_http(app, http_scope("/items", bearer(reader.access_token)))).status == 200


# What is refused ---------------------------------------------------------------------


def _claims(service: S3AuthService, **changes: Any) -> dict[str, Any]:
    now = int(service.clock())
    claims = {
        "sub": "a" * 32,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": "j" * 22,
        "sid": "s" * 32,
        "scope": "",
        "preferred_username": "mallory",
        "adm": True,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _header(service: S3AuthService, **changes: Any) -> dict[str, Any]:
    header = {"alg": "HS256", "typ": "at+jwt", "kid": service.tokens.key_set().signing_key(0).kid}
    header.update(changes)
    return {k: v for k, v in header.items() if v is not None}


def bad_tokens(service: S3AuthService) -> dict[str, str]:
    """Tokens that must each be a 401, never a 500."""
    now = int(service.clock())
    return {
        "garbage": "not-a-token",
        "three dots": "a.b.c",
        "alg none": unsigned(_header(service, alg="none"), _claims(service)),
        "alg none, empty signature kept": unsigned(_header(service, alg="none"), _claims(service))
        + "AAAA",
        "HS512 with the same secret": sign(_header(service, alg="HS512"), _claims(service)),
        "ES256 with its own key": sign(
            _header(service, alg="ES256"), _claims(service), ECKey.generate_key("P-256")
        ),
        "another secret": sign(
            _header(service), _claims(service), OctKey.import_key(b"another-secret-" * 4)
        ),
        "typ JWT": sign(_header(service, typ="JWT"), _claims(service)),
        "no typ": sign(_header(service, typ=None), _claims(service)),
        "unknown kid": sign(_header(service, kid="nope"), _claims(service)),
        "no kid": sign(_header(service, kid=None), _claims(service)),
        "expired": sign(
            _header(service), _claims(service, iat=now - 900, nbf=now - 900, exp=now - 60)
        ),
        "not yet valid": sign(_header(service), _claims(service, nbf=now + 600)),
        "issued in the future": sign(_header(service), _claims(service, iat=now + 600)),
        "no exp": sign(_header(service), _claims(service, exp=None)),
        "no sid": sign(_header(service), _claims(service, sid=None)),
        "sub not a string": sign(_header(service), _claims(service, sub=42)),
        "exp not a number": sign(_header(service), _claims(service, exp="tomorrow")),
        "tampered payload": _tampered(service),
        "refresh token": "rt1." + "a" * 32 + "." + "b" * 32 + ".0." + "c" * 43,
        "oversized": "a" * 9000,
        "non-ascii": "ey\u00e9.\u2603.x",
    }


def _tampered(service: S3AuthService) -> str:
    token = sign(_header(service), _claims(service, scope="items:read"))
    header, _, signature = token.split(".")
    payload = base64.urlsafe_b64encode(json.dumps(_claims(service, scope="admin")).encode()).rstrip(
        b"="
    )
    return f"{header}.{payload.decode()}.{signature}"


async def test_every_bad_token_is_a_401_invalid_token(service: S3AuthService) -> None:
    app = BearerTokenMiddleware(echo_app, service)
    for name, token in bad_tokens(service).items():
        headers = [(b"authorization", b"Bearer " + token.encode())]
        response = await call_http(app, http_scope(headers=headers))
        assert response.status == 401, name
        assert response.challenge.startswith('Bearer realm="api", error="invalid_token"'), name
        assert 'error_description="' in response.challenge, name
        assert response.json()["code"] in ("invalid_token", "token_expired"), name
        assert response.headers[b"content-type"] == b"application/problem+json", name


async def test_an_expired_token_says_so(service: S3AuthService, clock: Clock) -> None:
    _, pair = await login(service)
    clock.advance(service.settings.access_token_seconds + service.settings.leeway_seconds + 1)
    response = await call_http(
        BearerTokenMiddleware(echo_app, service), http_scope(headers=bearer(pair.access_token))
    )
    assert response.status == 401
    assert response.json()["code"] == "token_expired"
    assert 'error_description="The token has expired"' in response.challenge


async def test_issuer_and_audience_are_checked() -> None:
    service = make_clocked_service(issuer="https://auth.example.com", audience="shop")
    others = {
        "wrong issuer": make_clocked_service(issuer="https://evil.example.com", audience="shop"),
        "wrong audience": make_clocked_service(issuer="https://auth.example.com", audience="blog"),
        "neither": make_clocked_service(),
    }
    app = BearerTokenMiddleware(echo_app, service)
    _, good = await login(service)
    assert (await call_http(app, http_scope(headers=bearer(good.access_token)))).status == 200
    for name, other in others.items():
        _, pair = await login(other)
        response = await call_http(app, http_scope(headers=bearer(pair.access_token)))
        assert response.status == 401, name
        assert response.json()["code"] == "invalid_token", name


@pytest.mark.parametrize(
    "value",
    [b"Bearer", b"Bearer ", b"Bearer a b", b"Bearer \t", b"Bearer " + b"a" * 8193],
)
async def test_malformed_authorization_headers_are_401(
    service: S3AuthService, value: bytes
) -> None:
    response = await call_http(
        BearerTokenMiddleware(echo_app, service), http_scope(headers=[(b"authorization", value)])
    )
    assert response.status == 401
    assert 'error="invalid_token"' in response.challenge


async def test_two_authorization_headers_are_a_400_invalid_request(service: S3AuthService) -> None:
    """RFC 6750 §3.1: a request that repeats a parameter is malformed, `invalid_request`
    with 400, not a token that is invalid: neither token is looked at."""
    _, pair = await login(service)
    for headers in (
        bearer(pair.access_token) + bearer(pair.access_token),
        [*bearer(pair.access_token), (b"authorization", b"Basic YTpi")],
    ):
        response = await call_http(
            BearerTokenMiddleware(echo_app, service), http_scope(headers=headers)
        )
        assert response.status == 400
        assert response.challenge == (
            'Bearer realm="api", error="invalid_request", '
            'error_description="More than one Authorization header"'
        )
        assert response.headers[b"content-type"] == b"application/problem+json"
        assert response.headers[b"cache-control"] == b"no-store"
        assert response.json()["code"] == "invalid_request"
        assert response.json()["status"] == 400


def test_auth_error_response_is_what_the_middleware_sends() -> None:
    status, headers, body = auth_error_response(PermissionDeniedError("Admins only"), realm="x")
    assert status == 403
    assert headers == {
        "content-type": "application/problem+json",
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
        "www-authenticate": (
            'Bearer realm="x", error="insufficient_scope", error_description="Admins only"'
        ),
    }
    assert json.loads(body)["code"] == "insufficient_scope"
    status, headers, _ = auth_error_response(TokenExpiredError('bad "quote" \\ here\n'))
    assert status == 401
    assert headers["www-authenticate"] == (
        'Bearer realm="api", error="invalid_token", error_description="bad ?quote? ? here?"'
    )


# The verified-token cache ------------------------------------------------------------


class CountingCodec(TokenCodec):
    verifications = 0

    def verify_access_token(self, token: object) -> dict[str, Any]:
        self.verifications += 1
        return super().verify_access_token(token)


async def test_a_reused_token_is_verified_once(service: S3AuthService, clock: Clock) -> None:
    codec = CountingCodec(service.settings, clock=clock)
    _, pair = await login(service)
    app = BearerTokenMiddleware(echo_app, codec)
    for _ in range(5):
        assert (await call_http(app, http_scope(headers=bearer(pair.access_token)))).status == 200
    assert codec.verifications == 1
    uncached = BearerTokenMiddleware(echo_app, codec, cache_size=0)
    for _ in range(3):
        await call_http(uncached, http_scope(headers=bearer(pair.access_token)))
    assert codec.verifications == 4


async def test_a_cached_token_expires_exactly_when_verification_would_refuse_it(
    service: S3AuthService, clock: Clock
) -> None:
    _, pair = await login(service)
    issued_at = clock.now
    exp = service.tokens.verify_access_token(pair.access_token)["exp"]
    boundary = exp + service.settings.leeway_seconds
    outcomes = []
    for offset in (-1.0, -0.001, 0.0, 0.5, 0.999, 1.0, 1.5, 30.0):
        clock.now = issued_at
        app = BearerTokenMiddleware(echo_app, service)
        assert (await call_http(app, http_scope(headers=bearer(pair.access_token)))).status == 200
        clock.now = boundary + offset
        try:
            service.tokens.verify_access_token(pair.access_token)
            expected = 200
        except TokenExpiredError:
            expected = 401
        response = await call_http(app, http_scope(headers=bearer(pair.access_token)))
        assert response.status == expected, offset
        outcomes.append(expected)
        if expected == 401:
            assert response.json()["code"] == "token_expired"
            assert len(app.cache) == 0  # the expired entry is dropped
    assert outcomes == [200, 200, 401, 401, 401, 401, 401, 401]


async def test_a_cached_verification_stands_one_key_sync_interval_then_is_redone(
    clock: Clock,
) -> None:
    # Keys kept in the store are read again every S3AUTH_KEY_SYNC_SECONDS: a verification
    # stands that long, then the token is verified again (not refused as expired), and
    # its own expiry still ends it, without a verification.
    service = make_clocked_service(clock=clock, algorithm="ES256", key_sync_seconds=60)
    codec = CountingCodec(service.settings, clock=clock, keys=service.tokens.ring)
    _, pair = await login(service)
    app = BearerTokenMiddleware(echo_app, codec)
    expires_from = codec.verify_access_token(pair.access_token)["exp"] + codec.leeway_seconds
    codec.verifications = 0

    async def status() -> int:
        return (await call_http(app, http_scope(headers=bearer(pair.access_token)))).status

    start = clock.now
    assert await status() == 200
    clock.now = start + 59.999
    assert await status() == 200
    assert codec.verifications == 1
    clock.now = start + 60
    assert await status() == 200
    assert codec.verifications == 2
    clock.now = expires_from - 30  # the next bound would pass the token's expiry
    assert await status() == 200
    assert codec.verifications == 3
    clock.now = expires_from
    response = await call_http(app, http_scope(headers=bearer(pair.access_token)))
    assert response.status == 401 and response.json()["code"] == "token_expired"
    assert codec.verifications == 3  # refused from the entry, as before


def test_how_long_a_verification_stands_follows_where_the_keys_come_from(
    service: S3AuthService, clock: Clock
) -> None:
    stored = make_clocked_service(clock=clock, algorithm="ES256", key_sync_seconds=45)
    assert stored.reverify_seconds == stored.tokens.reverify_seconds == 45
    assert service.reverify_seconds is None  # HS256: a key derived from the secret
    fixed = TokenCodec(service.settings, clock=clock, keys=service.tokens.key_set())
    assert fixed.reverify_seconds is None
    jwks = JwksVerifier("jwks.json", refresh_seconds=120, min_refresh_seconds=10)
    assert jwks.reverify_seconds == 120

    class ZeroInterval(TokenCodec):
        reverify_seconds = 0

    with pytest.raises(ConfigurationError, match="reverify_seconds"):
        BearerTokenMiddleware(echo_app, ZeroInterval(service.settings, clock=clock))


@given(
    exp=st.one_of(st.integers(1_000, 2_000), st.floats(1_000, 2_000)),
    now=st.floats(900, 2_100),
    leeway=st.integers(0, 30),
)
def test_the_cached_expiry_matches_joserfc_for_any_exp(exp: float, now: float, leeway: int) -> None:
    registry = JWTClaimsRegistry(now=lambda: int(now), leeway=leeway, exp={"essential": True})
    try:
        registry.validate({"exp": exp})
        refused = False
    except ExpiredTokenError:
        refused = True
    entry = VerifiedToken({"exp": exp, "sub": "x"}, leeway)
    assert (now >= entry.expires_from) is refused


async def test_the_cache_is_bounded_and_least_recently_used_goes_first(
    service: S3AuthService,
) -> None:
    pairs = [(await login(service, f"user{i}"))[1] for i in range(4)]
    app = BearerTokenMiddleware(echo_app, service, cache_size=2)
    tokens = [p.access_token.encode() for p in pairs]
    for token in tokens[:2]:
        await call_http(app, http_scope(headers=[(b"authorization", b"Bearer " + token)]))
    await call_http(app, http_scope(headers=[(b"authorization", b"Bearer " + tokens[0])]))
    await call_http(app, http_scope(headers=[(b"authorization", b"Bearer " + tokens[2])]))
    assert len(app.cache) == 2
    assert tokens[0] in app.cache and tokens[2] in app.cache and tokens[1] not in app.cache


async def test_failed_tokens_are_not_cached(service: S3AuthService) -> None:
    app = BearerTokenMiddleware(echo_app, service)
    for token in bad_tokens(service).values():
        await call_http(app, http_scope(headers=[(b"authorization", b"Bearer " + token.encode())]))
    assert len(app.cache) == 0


# Pure ASGI ---------------------------------------------------------------------------


async def test_lifespan_and_other_scopes_pass_straight_through(service: S3AuthService) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(dict(scope))
        assert (await receive())["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.complete"})

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    sent = await run_lifespan(BearerTokenMiddleware(app, service), dict(scope))
    assert seen == [scope]
    assert "user" not in seen[0]
    assert sent == [{"type": "lifespan.startup.complete"}]


async def test_http_messages_reach_the_app_and_the_server_untouched(
    service: S3AuthService,
) -> None:
    """No body buffering, no response rewriting: each message the server or the app sends
    is the very object the other side gets, and the app streams through."""
    _, pair = await login(service)
    chunks = [b"one", b"two", b"three"]
    request_chunks = [
        {"type": "http.request", "body": c, "more_body": i < 2} for i, c in enumerate(chunks)
    ]
    sent_by_server = list(request_chunks)
    sent: list[dict[str, Any]] = []
    sent_by_app: list[dict[str, Any]] = []
    received_by_app: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return request_chunks.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def streaming_app(scope: dict[str, Any], app_receive: Any, app_send: Any) -> None:
        while True:
            message = await app_receive()
            received_by_app.append(message)
            if not message["more_body"]:
                break
        sent_by_app.append({"type": "http.response.start", "status": 200, "headers": []})
        for message in received_by_app:
            body = message["body"]
            sent_by_app.append({"type": "http.response.body", "body": body, "more_body": True})
        sent_by_app.append({"type": "http.response.body", "body": b""})
        for message in sent_by_app:
            await app_send(message)

    await BearerTokenMiddleware(streaming_app, service)(
        http_scope(method="POST", headers=bearer(pair.access_token)), receive, send
    )
    assert all(map(operator.is_, received_by_app, sent_by_server))
    assert len(sent) == len(sent_by_app) == 5
    assert all(map(operator.is_, sent, sent_by_app))
    assert [m.get("body") for m in sent[1:]] == [*chunks, b""]


async def test_current_user_is_reset_after_the_request(service: S3AuthService) -> None:
    _, pair = await login(service)
    await call_http(
        BearerTokenMiddleware(echo_app, service), http_scope(headers=bearer(pair.access_token))
    )
    assert isinstance(current_user(), AnonymousUser)


# WebSocket ---------------------------------------------------------------------------


async def test_a_websocket_without_a_token_is_closed_with_1008_before_accept(
    service: S3AuthService,
) -> None:
    result = await websocket_session(BearerTokenMiddleware(echo_app, service), websocket_scope())
    assert result.first == {
        "type": "websocket.close",
        "code": 1008,
        "reason": "authentication_required",
    }
    assert not result.accepted


async def test_a_websocket_with_a_bad_token_is_closed_with_1008(service: S3AuthService) -> None:
    scope = websocket_scope(headers=[(b"authorization", b"Bearer x.y.z")])
    app = BearerTokenMiddleware(echo_app, service, websocket_query_param="access_token")
    result = await websocket_session(app, scope)
    assert result.first == {"type": "websocket.close", "code": 1008, "reason": "invalid_token"}


async def test_a_websocket_token_in_the_authorization_header(service: S3AuthService) -> None:
    _, pair = await login(service)
    scope = websocket_scope(headers=bearer(pair.access_token))
    result = await websocket_session(BearerTokenMiddleware(echo_app, service), scope)
    assert result.accepted
    assert result.texts == ["alice:hello"]


async def test_a_websocket_token_in_the_subprotocol_convention(service: S3AuthService) -> None:
    _, pair = await login(service)
    offered: list[list[str]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        offered.append(scope["subprotocols"])
        await echo_app(scope, receive, send)

    scope = websocket_scope(subprotocols=["chat.v1", "bearer", pair.access_token])
    result = await websocket_session(BearerTokenMiddleware(app, service), scope)
    assert result.texts == ["alice:hello"]
    assert offered == [["chat.v1"]]  # the token never reaches the app
    assert result.first == {"type": "websocket.accept", "subprotocol": "bearer"}


async def test_the_app_may_choose_its_own_subprotocol(service: S3AuthService) -> None:
    _, pair = await login(service)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept", "subprotocol": "chat.v1"})
        await send({"type": "websocket.close", "code": 1000})

    scope = websocket_scope(subprotocols=["bearer", pair.access_token, "chat.v1"])
    result = await websocket_session(BearerTokenMiddleware(app, service), scope)
    assert result.first == {"type": "websocket.accept", "subprotocol": "chat.v1"}


async def test_a_websocket_token_in_the_query_parameter_only_when_named(
    service: S3AuthService,
) -> None:
    _, pair = await login(service)
    query = f"room=1&access_token={pair.access_token}".encode()
    # Off by default: a token in a URL lands in proxy and access logs.
    default = BearerTokenMiddleware(echo_app, service)
    refused = await websocket_session(default, websocket_scope(query_string=query))
    assert refused.first == {
        "type": "websocket.close",
        "code": 1008,
        "reason": "authentication_required",
    }
    named = BearerTokenMiddleware(echo_app, service, websocket_query_param="access_token")
    result = await websocket_session(named, websocket_scope(query_string=query))
    assert result.texts == ["alice:hello"]
    renamed = BearerTokenMiddleware(echo_app, service, websocket_query_param="jwt")
    refused = await websocket_session(renamed, websocket_scope(query_string=query))
    assert refused.first["code"] == 1008


async def test_http_never_reads_a_token_from_the_query_string(service: S3AuthService) -> None:
    _, pair = await login(service)
    scope = http_scope()
    scope["query_string"] = f"access_token={pair.access_token}".encode()
    assert (await call_http(BearerTokenMiddleware(echo_app, service), scope)).status == 401


@pytest.mark.parametrize(
    "how",
    ["header and query", "subprotocol and query", "marker without token", "two query values"],
)
async def test_ambiguous_websocket_credentials_are_an_invalid_request(
    service: S3AuthService, how: str
) -> None:
    """RFC 6750 §3.1: more than one way of sending the token, a parameter repeated or one
    missing make a malformed request (`invalid_request`), not an invalid token."""
    _, pair = await login(service)
    token = pair.access_token

    def scope() -> dict[str, Any]:
        return {
            "header and query": lambda: websocket_scope(
                headers=bearer(token), query_string=f"access_token={token}".encode()
            ),
            "subprotocol and query": lambda: websocket_scope(
                subprotocols=["bearer", token], query_string=f"access_token={token}".encode()
            ),
            "marker without token": lambda: websocket_scope(subprotocols=["bearer"]),
            "two query values": lambda: websocket_scope(
                query_string=f"access_token={token}&access_token={token}".encode()
            ),
        }[how]()

    app = BearerTokenMiddleware(echo_app, service, websocket_query_param="access_token")
    result = await websocket_session(app, scope())
    assert result.first == {"type": "websocket.close", "code": 1008, "reason": "invalid_request"}
    # Where the server can send a response, it is RFC 6750's 400 with its challenge.
    answerable = {**scope(), "extensions": {"websocket.http.response": {}}}
    denied = await websocket_session(app, answerable)
    assert denied.first["type"] == "websocket.http.response.start"
    assert denied.first["status"] == 400
    challenge = dict(denied.first["headers"])[b"www-authenticate"]
    assert challenge.startswith(b'Bearer realm="api", error="invalid_request", error_description=')


async def test_websocket_path_scopes_close_with_1008(service: S3AuthService) -> None:
    _, pair = await login(service, scopes=["chat"])
    app = BearerTokenMiddleware(echo_app, service, protected={"/ws/admin*": ["admin"], "/*": []})
    refused = await websocket_session(app, websocket_scope("/ws/admin", bearer(pair.access_token)))
    assert refused.first == {
        "type": "websocket.close",
        "code": 1008,
        "reason": "insufficient_scope",
    }
    allowed = await websocket_session(app, websocket_scope("/ws/chat", bearer(pair.access_token)))
    assert allowed.accepted


# Configuration -----------------------------------------------------------------------


def test_configuration_is_validated(service: S3AuthService) -> None:
    with pytest.raises(ConfigurationError, match="AccessTokenVerifier"):
        BearerTokenMiddleware(echo_app, "secret")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="ASGI application"):
        BearerTokenMiddleware("app", service)
    with pytest.raises(ConfigurationError, match="realm"):
        BearerTokenMiddleware(echo_app, service, realm='a"b')
    with pytest.raises(ConfigurationError, match="cache_size"):
        BearerTokenMiddleware(echo_app, service, cache_size=-1)
    with pytest.raises(ConfigurationError, match="websocket_query_param"):
        BearerTokenMiddleware(echo_app, service, websocket_query_param="a b")
    for bad in (["health"], ["/a*b"], ["/a/../b"], ["//a"], ["/a%2Fb"], "/health"):
        with pytest.raises(ConfigurationError):
            BearerTokenMiddleware(echo_app, service, exclude=bad)
    with pytest.raises(ConfigurationError):
        BearerTokenMiddleware(echo_app, service, methods=["get"])
    with pytest.raises(ConfigurationError):
        BearerTokenMiddleware(echo_app, service, protected={"/admin*": ["two words"]})


async def test_a_token_codec_works_as_well_as_a_service(service: S3AuthService) -> None:
    _, pair = await login(service)
    app = BearerTokenMiddleware(echo_app, service.tokens)
    assert (await call_http(app, http_scope(headers=bearer(pair.access_token)))).status == 200
