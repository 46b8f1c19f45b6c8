"""Hypothesis: whatever bytes arrive in headers, tokens and paths, the middlewares answer
200, 401 or 403 (a WebSocket: accepted, or closed with 1008) — never a 500; and a valid
token with any of its bytes changed is refused, never accepted."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from support import (
    Clock,
    call_http,
    http_scope,
    make_clocked_service,
    ok_app,
    user_record,
    websocket_scope,
    websocket_session,
)

from s3auth_asgi.middleware.bearer import BearerTokenMiddleware
from s3auth_asgi.middleware.blacklist import BlacklistMiddleware
from s3auth_asgi.middleware.credentials import authorization_token

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


APP = BearerTokenMiddleware(
    BlacklistMiddleware(ok_app, SERVICE),
    SERVICE,
    protected={"/api/*": [], "/admin*": ["admin"], "/ws*": []},
    exclude=("/health", "/docs", "/docs/*"),
    websocket_query_param="access_token",  # every way in, for the fuzzer
)


MUTATIONS = ("flip", "cut", "insert", "swap", "segments")


@st.composite
def mutations(draw: st.DrawFn, hows: Sequence[str] = MUTATIONS) -> tuple[bytes, bytes]:
    """(a valid token, that token mutated)."""
    token = draw(st.sampled_from(TOKENS)).encode()
    how = draw(st.sampled_from(hows))
    if how == "as is":
        return token, token
    if how == "flip":  # one byte XOR a non-zero mask: always a different byte
        at = draw(st.integers(0, len(token) - 1))
        mask = draw(st.integers(1, 255))
        return token, token[:at] + bytes([token[at] ^ mask]) + token[at + 1 :]
    if how == "cut":  # a proper prefix, down to nothing
        return token, token[: draw(st.integers(0, len(token) - 1))]
    if how == "insert":  # 1 to 8 bytes anywhere, both ends included
        at = draw(st.integers(0, len(token)))
        return token, token[:at] + draw(st.binary(min_size=1, max_size=8)) + token[at:]
    if how == "swap":
        header, payload, signature = token.split(b".")
        return token, b".".join((payload, header, signature))
    return token, b".".join(draw(st.lists(st.binary(max_size=40), min_size=1, max_size=5)))


mutated_tokens = mutations(("as is", *MUTATIONS)).map(lambda pair: pair[1])


authorization_values = st.one_of(
    st.binary(max_size=300),
    st.builds(
        lambda scheme, token: scheme + token,
        st.sampled_from([b"Bearer ", b"bearer ", b"BEARER  ", b"Basic "]),
        mutated_tokens,
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
async def test_http_answers_are_only_200_400_401_or_403(
    headers: list[tuple[bytes, bytes]], path: str, raw_path: bytes | None, method: str
) -> None:
    scope = http_scope(path, headers, method=method)
    scope["raw_path"] = raw_path
    response = await call_http(APP, scope)
    assert response.status in (200, 400, 401, 403)
    # 400 only for what RFC 6750 §3.1 calls a malformed request: the header sent twice.
    repeated = sum(name == b"authorization" for name, _ in headers) > 1
    assert response.status != 400 or (repeated and response.json()["code"] == "invalid_request")
    if response.status != 200:
        assert response.challenge.startswith('Bearer realm="api"')
        assert response.json()["status"] == response.status


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair=mutations(), scheme=st.sampled_from([b"Bearer ", b"bearer ", b"BEARER "]))
async def test_a_mutated_token_is_never_accepted(pair: tuple[bytes, bytes], scheme: bytes) -> None:
    token, mutated = pair
    assume(mutated != token)  # `segments` drew the token itself: nothing was changed
    issued = await call_http(APP, http_scope("/api/items", [(b"authorization", scheme + token)]))
    assert issued.status == 200  # the control: the same request with the token as issued
    scope = http_scope("/api/items", [(b"authorization", scheme + mutated)])
    response = await call_http(APP, scope)
    if response.status == 200:
        # The one mutation that leaves the token itself unchanged: ASCII whitespace added
        # before or after it, which the Authorization parser strips (RFC 9110 puts 1*SP
        # between scheme and credentials; servers strip the field's surrounding OWS).
        # JWTs contain no whitespace, and joserfc's base64url decoding is strict (no
        # padding, no non-zero trailing bits), so no other change reads as the same token.
        # Accepted only if the credential the middleware reads is the issued token, byte
        # for byte:
        assert mutated.strip() == token, mutated
        assert authorization_token(scope) == token
        return
    assert response.status in (400, 401), (mutated, response.status)
    error = "invalid_token" if response.status == 401 else "invalid_request"
    assert response.challenge.startswith(f'Bearer realm="api", error="{error}"')
    assert response.json()["status"] == response.status


B64URL = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def lenient_b64decode(segment: bytes) -> bytes:
    """Python's decoder: it ignores the unused low bits of the last character."""
    return base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))


def respellings(segment: bytes) -> list[bytes]:
    """`segment` with its last character swapped for each other one that differs only in
    the bits a segment of this length leaves unused (4 of them after 2 characters of a
    group, 2 after 3, none after 4): the same bytes to a lenient decoder."""
    unused = {2: 4, 3: 2}.get(len(segment) % 4, 0)
    at = B64URL.index(segment[-1])
    first = at >> unused << unused
    return [
        segment[:-1] + B64URL[i : i + 1] for i in range(first, first + (1 << unused)) if i != at
    ]


async def test_a_token_spelt_with_other_unused_bits_is_refused() -> None:
    """Not excluded as "the same token": a signed JWT is its exact characters (the HMAC is
    over them), so the padding bits that a lenient base64url decoder ignores are a
    mutation like any other and must be refused, not read as the original bytes."""
    refused = 0
    for token in (t.encode() for t in TOKENS):
        parts = token.split(b".")
        for i, part in enumerate(parts):
            for respelt in respellings(part):
                assert respelt != part
                assert lenient_b64decode(respelt) == lenient_b64decode(part)  # same bytes
                mutated = b".".join([*parts[:i], respelt, *parts[i + 1 :]])
                response = await call_http(APP, http_scope("/api/items", bearer_header(mutated)))
                assert response.status == 401, (i, respelt)
                refused += 1
    # The HS256 signature is 32 bytes, 43 characters: 3 respellings per token at least.
    assert refused >= 3 * len(TOKENS)


def bearer_header(token: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", b"Bearer " + token)]


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
