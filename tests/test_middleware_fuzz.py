"""Hypothesis: whatever bytes arrive in headers, tokens and paths, the middlewares answer
200, 401 or 403 (a WebSocket: accepted, or closed with 1008) — never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_middleware_support import (
    Clock,
    call_http,
    http_scope,
    make_clocked_service,
    user_record,
    websocket_scope,
    websocket_session,
)

from s3auth_asgi.middleware.bearer import BearerTokenMiddleware
from s3auth_asgi.middleware.blacklist import BlacklistMiddleware

pytestmark = pytest.mark.anyio

SERVICE = make_clocked_service(clock=Clock())
# Tokens issued without touching the store: signed like the real ones.
TOKENS = [
    SERVICE.tokens.issue_access_token(
        user_id=user.id,
        username=user.username,
        session_id=f"{int(SERVICE.clock() * 1000):012x}{i:020x}",
        is_admin=False,
        scopes=scopes,
    )[0]
    for i, (user, scopes) in enumerate(
        [(user_record("alice"), ["items:read"]), (user_record("root"), ["admin"])]
    )
]


async def ok_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


APP = BearerTokenMiddleware(
    BlacklistMiddleware(ok_app, SERVICE),
    SERVICE,
    protected={"/api/*": [], "/admin*": ["admin"], "/ws*": []},
    exclude=("/health", "/docs*"),
)


@st.composite
def mutated_tokens(draw: st.DrawFn) -> bytes:
    token = draw(st.sampled_from(TOKENS)).encode()
    how = draw(st.sampled_from(["as is", "flip", "cut", "insert", "swap", "segments"]))
    if how == "as is":
        return token
    at = draw(st.integers(0, len(token) - 1))
    if how == "flip":
        return token[:at] + bytes([token[at] ^ draw(st.integers(1, 255))]) + token[at + 1 :]
    if how == "cut":
        return token[:at]
    if how == "insert":
        return token[:at] + draw(st.binary(min_size=1, max_size=8)) + token[at:]
    if how == "swap":
        header, payload, signature = token.split(b".")
        return b".".join((payload, header, signature))
    return b".".join(draw(st.lists(st.binary(max_size=40), min_size=1, max_size=5)))


authorization_values = st.one_of(
    st.binary(max_size=300),
    st.builds(
        lambda scheme, token: scheme + token,
        st.sampled_from([b"Bearer ", b"bearer ", b"BEARER  ", b"Basic "]),
        mutated_tokens(),
    ),
    st.builds(
        lambda text: b"Bearer " + text.encode("utf-8", "surrogatepass"), st.text(max_size=100)
    ),
    st.just(b"Bearer " + b"a" * 9000),
)
header_names = st.one_of(
    st.sampled_from(
        [b"authorization", b"host", b"cookie", b"x-forwarded-prefix", b"sec-websocket-protocol"]
    ),
    st.binary(max_size=24),
)
headers = st.lists(
    st.one_of(
        st.tuples(st.just(b"authorization"), authorization_values),
        st.tuples(header_names, st.binary(max_size=100)),
    ),
    max_size=6,
)
paths = st.one_of(
    st.sampled_from(["/api/items", "/admin/users", "/health", "/docs/x", "/public", "/"]),
    st.text(max_size=40),
)
raw_paths = st.one_of(st.none(), st.binary(max_size=40))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    headers=headers, path=paths, raw_path=raw_paths, method=st.sampled_from(["GET", "POST", "x"])
)
async def test_http_answers_are_only_200_401_or_403(
    headers: list[tuple[bytes, bytes]], path: str, raw_path: bytes | None, method: str
) -> None:
    scope = http_scope(path, headers, method=method)
    scope["raw_path"] = raw_path
    response = await call_http(APP, scope)
    assert response.status in (200, 401, 403)
    if response.status != 200:
        assert response.challenge.startswith('Bearer realm="api"')
        assert response.json()["status"] == response.status


@settings(max_examples=150, deadline=None)
@given(
    headers=headers,
    subprotocols=st.lists(
        st.one_of(st.sampled_from(["bearer", *TOKENS]), st.text(max_size=20)), max_size=4
    ),
    query=st.one_of(
        st.binary(max_size=60), st.sampled_from([f"access_token={t}".encode() for t in TOKENS])
    ),
)
async def test_websocket_answers_are_accept_or_1008(
    headers: list[tuple[bytes, bytes]], subprotocols: list[str], query: bytes
) -> None:
    scope = websocket_scope("/ws/x", headers, subprotocols=subprotocols, query_string=query)
    result = await websocket_session(APP, scope)
    first = result.first
    assert first["type"] == "websocket.accept" or (
        first["type"] == "websocket.close" and first["code"] == 1008
    )
