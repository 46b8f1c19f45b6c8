"""Header members of any JSON type: a token is refused with `invalid_token`, never a 500.

RFC 7515 §4.1.1 makes `alg` a string (and `kid`, `typ`, `cty`, `jku`, `x5u` are strings,
`crit` a list, `jwk` an object); a token whose header holds another type is malformed, and
no value of any member may raise anything but InvalidTokenError: not from `verify_compact`,
not through BearerTokenMiddleware, not through JwksVerifier, not from the auth app.

Tokens of the fuzz are forged with a good HMAC over the exact header bytes, so that a
value that passes the early checks reaches joserfc's own reading of the header too.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import make_service, make_settings
from forged_tokens import b64url, claims, forge
from hypothesis import given, settings
from hypothesis import strategies as st
from support import Clock, asgi_client, bearer, call_http, http_scope, make_clocked_service, ok_app

from s3auth_asgi import InvalidTokenError, JwksVerifier, S3AuthService
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.keys.algorithms import generate_key
from s3auth_asgi.keys.jws import verify_compact
from s3auth_asgi.keys.keyset import KeySet, entry_for
from s3auth_asgi.keys.ring import hmac_entry
from s3auth_asgi.middleware.bearer import BearerTokenMiddleware

SETTINGS = make_settings()
KID = hmac_entry(SETTINGS).kid
HMAC_KEYS = KeySet([hmac_entry(SETTINGS)])
NOT_STRINGS: list[Any] = [["ES256"], {"a": 1}, 1, 1.5, True, None]


def forge_over(header: dict[str, Any]) -> str:
    """An HS256 token over exactly this header, a valid access-token payload and a good MAC."""
    return forge(header, claims(scope="", preferred_username="alice", adm=False))


def unsigned(kid: str, alg: Any) -> str:
    """A token for an asymmetric key: refused at its header, so its signature is never read."""
    header = b64url(json.dumps({"alg": alg, "kid": kid, "typ": "at+jwt"}).encode())
    return f"{header}.{b64url(b'{}')}.{b64url(bytes(64))}"


def es256_service(clock: Clock) -> S3AuthService:
    return make_clocked_service(clock=clock, algorithm="ES256")


@pytest.mark.parametrize("alg", NOT_STRINGS)
def test_an_alg_that_is_not_a_string_is_an_invalid_token(alg: Any) -> None:
    entry = entry_for("ES256", generate_key("ES256"))
    with pytest.raises(InvalidTokenError, match="algorithm"):
        verify_compact(unsigned(entry.kid, alg), KeySet([entry]), time.time())
    with pytest.raises(InvalidTokenError, match="algorithm"):
        verify_compact(
            forge_over({"alg": alg, "kid": KID, "typ": "at+jwt"}), HMAC_KEYS, time.time()
        )


@pytest.mark.anyio
@pytest.mark.parametrize("alg", [["ES256"], {"a": 1}])
async def test_the_middleware_answers_401_to_an_alg_that_is_not_a_string(alg: Any) -> None:
    service = es256_service(Clock())
    kid = (await service.published_keys()).entries[0].kid
    response = await call_http(
        BearerTokenMiddleware(ok_app, service), http_scope(headers=bearer(unsigned(kid, alg)))
    )
    assert response.status == 401


@pytest.mark.anyio
@pytest.mark.parametrize("alg", [["ES256"], {"a": 1}])
async def test_a_jwks_verifier_answers_401_to_an_alg_that_is_not_a_string(
    alg: Any, tmp_path: Path
) -> None:
    clock = Clock()
    keys = await es256_service(clock).published_keys()
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(keys.jwks(clock())))
    verifier = JwksVerifier(path, clock=clock)
    await verifier.load()
    token = unsigned(keys.entries[0].kid, alg)
    response = await call_http(
        BearerTokenMiddleware(ok_app, verifier), http_scope(headers=bearer(token))
    )
    assert response.status == 401


@pytest.mark.anyio
async def test_the_auth_app_answers_401_to_an_alg_that_is_not_a_string() -> None:
    service = es256_service(Clock())
    kid = (await service.published_keys()).entries[0].kid
    async with asgi_client(create_auth_app(service)) as client:
        answer = await client.get(
            "/me", headers={"Authorization": "Bearer " + unsigned(kid, ["ES256"])}
        )
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "invalid_token"


# Any JSON value in any member ----------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from(["HS256", "ES256", "none", "at+jwt", KID, "sig", "JWT"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
MEMBERS = (
    "alg", "kid", "typ", "cty", "crit", "b64", "jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256",
    "zip", "enc", "epk", "url", "nonce", "ppt", "iss",
)  # fmt: skip
headers = st.fixed_dictionaries(
    {"alg": st.just("HS256"), "kid": st.just(KID), "typ": st.just("at+jwt")}
).flatmap(
    lambda base: st.dictionaries(
        st.sampled_from(MEMBERS) | st.text(max_size=4), json_values, min_size=1, max_size=3
    ).map(lambda changes: {**base, **changes})
)
SERVICE = make_service()
AUTH_APP = create_auth_app(SERVICE)
MIDDLEWARE = BearerTokenMiddleware(ok_app, SERVICE)


def outcome(token: str) -> bool:
    """Whether the token verifies; any exception but InvalidTokenError fails the test."""
    try:
        verify_compact(token, HMAC_KEYS, time.time())
        SERVICE.verify_access_token(token)
    except InvalidTokenError:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(header=headers)
def test_any_json_value_in_any_header_member_is_valid_or_an_invalid_token(
    header: dict[str, Any],
) -> None:
    token = forge_over(header)
    valid = outcome(token)
    response = anyio.run(call_http, MIDDLEWARE, http_scope(headers=bearer(token)))
    assert response.status == (200 if valid else 401), (header, response.status)
    if not valid:
        answer = anyio.run(auth_app_me, token)
        assert answer[0] == 401, (header, answer)
        assert answer[1] == "invalid_token", (header, answer)


async def auth_app_me(token: str) -> tuple[int, str | None]:
    async with asgi_client(AUTH_APP) as client:
        answer = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert answer.headers["content-type"] == "application/problem+json"
    return answer.status_code, answer.json().get("code")
