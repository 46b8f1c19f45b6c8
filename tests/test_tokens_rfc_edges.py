"""The edges of RFC 7515, 7519, 8725 and 9068 that the other token tests leave out.

- `typ`: `at+jwt` or `application/at+jwt`, in any case (RFC 9068 §4; RFC 7515 §4.1.9:
  media types compare without regard to case, and `application/` may be left out); any
  other value, or none, is refused (RFC 8725 §3.11);
- a header or a claims set that is JSON but no object (RFC 7515 §5.2, RFC 7519 §7.2);
- any serialization but the compact one, and a compact one with whitespace or padding in
  a segment;
- a nested JWT (`cty: JWT`, in any case, `application/` or not), whose claims are another
  token, or plain claims said to be one, and a compressed payload (`zip`, RFC 8725 §3.6);
- times far out of range: beyond 64 bits, negative;
- every other kind of token this package hands out, a refresh token and each mailed link,
  and an ID token signed with the very key (`typ: JWT`), at the middleware in front of the
  issuing service and in front of a verify-only JwksVerifier (RFC 8725 §2.8, §3.12).

Each is refused with `invalid_token`: a 401 problem through the middleware, which caches
nothing and calls no app.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings
from forged_tokens import claims, forge
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jws
from support import Clock, bearer, call_http, http_scope, login, make_clocked_service

from s3auth_asgi import InvalidTokenError, JwksVerifier, S3AuthService, TokenExpiredError
from s3auth_asgi.keys.algorithms import generate_key
from s3auth_asgi.keys.low_s import low_s_compact
from s3auth_asgi.keys.ring import hmac_entry
from s3auth_asgi.middleware.bearer import BearerTokenMiddleware
from s3auth_asgi.tokens import TokenCodec

SETTINGS = make_settings()
KID = hmac_entry(SETTINGS).kid
CODEC = TokenCodec(SETTINGS)


def header(**changes: Any) -> dict[str, Any]:
    return {"alg": "HS256", "typ": "at+jwt", "kid": KID, **changes}


def refusal(token: str | bytes, verify: Any = CODEC.verify_access_token) -> InvalidTokenError:
    with pytest.raises(InvalidTokenError) as caught:
        verify(token)
    assert caught.value.code == "invalid_token" and caught.value.status == 401
    return caught.value


# typ ----------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    typ=st.sampled_from(["at+jwt", "application/at+jwt"]).flatmap(
        lambda typ: st.tuples(*(st.sampled_from([c.lower(), c.upper()]) for c in typ))
    )
)
def test_typ_is_at_jwt_in_any_case_with_or_without_application(typ: tuple[str, ...]) -> None:
    assert CODEC.verify_access_token(forge(header(typ="".join(typ)), claims()))["sub"]


@pytest.mark.parametrize(
    "typ",
    [
        "JWT",
        "jwt",
        "application/jwt",
        "rt+jwt",
        "logout+jwt",
        "at+jwt ",
        " at+jwt",
        "at+jwt; charset=utf-8",
        "application/at+jwt+json",
        "application//at+jwt",
        "text/at+jwt",
        "",
    ],
)
def test_any_other_typ_is_refused(typ: str) -> None:
    assert "not an access token" in str(refusal(forge(header(typ=typ), claims())))


def test_no_typ_is_refused() -> None:
    untyped = {name: value for name, value in header().items() if name != "typ"}
    assert "not an access token" in str(refusal(forge(untyped, claims())))


# JSON that is no object; serializations -----------------------------------------------------


@pytest.mark.parametrize("where", ["header", "claims"])
@pytest.mark.parametrize("text", [b"null", b"[]", b'"{}"', b"1", b"true", b"[{}]"])
def test_json_that_is_no_object_is_refused(where: str, text: bytes) -> None:
    good = (json.dumps(header()).encode(), json.dumps(claims()).encode())
    octets = (text, good[1]) if where == "header" else (good[0], text)
    assert "not a JSON object" in str(refusal(forge(*octets, raw=True)))


def serializations() -> dict[str, str]:
    token = forge(header(), claims())
    segments = token.split(".")
    head, payload, signature = segments
    flattened = {"protected": head, "payload": payload, "signature": signature}
    return {
        "JSON, flattened": json.dumps(flattened, separators=(",", ":")),
        "JSON, general": json.dumps(
            {"payload": payload, "signatures": [{"protected": head, "signature": signature}]}
        ),
        "two segments": f"{head}.{payload}",
        "four segments": f"{token}.",
        "five segments, as a JWE": f"{head}..{payload}.{signature}.{signature}",
        "no signature": f"{head}.{payload}.",
        "unencoded payload": f"{head}.{json.dumps(claims())}.{signature}",
        **{
            f"{name} in segment {at}": ".".join(
                part + extra if i == at else part for i, part in enumerate(segments)
            )
            for at in range(3)
            for name, extra in (("padding", "=="), ("a newline", "\n"), ("a space", " "))
        },
        "a tab inside the payload": f"{head}.{payload[:5]}\t{payload[5:]}.{signature}",
    }


@pytest.mark.parametrize("name", sorted(serializations()))
def test_only_the_compact_serialization_is_read(name: str) -> None:
    refusal(serializations()[name])


def test_a_nested_jwt_and_a_compressed_payload_are_refused() -> None:
    inner = forge(header(), claims())
    refusal(forge(json.dumps(header(cty="JWT")).encode(), inner.encode(), raw=True))
    refusal(forge(header(zip="DEF"), claims()))


@pytest.mark.parametrize("cty", ["JWT", "jwt", "Jwt", "application/jwt", "Application/JWT"])
def test_cty_jwt_over_a_plain_claims_set_is_refused(cty: str) -> None:
    """`cty: JWT` says the payload is another JWT (RFC 7519 §7.2 step 8), which we never
    unwrap: over plain claims too, the token says one thing and is read as another.
    Media types compare without regard to case, and `application/` may be left out
    (RFC 7515 §4.1.10)."""
    assert "'cty'" in str(refusal(forge(header(cty=cty), claims())))


# Times ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"exp": 2**64}, "lives"),
        ({"exp": 10**30, "iat": 10**30 - 60, "nbf": 10**30 - 60}, "future"),
        ({"iat": -(2**63)}, "lives"),
        ({"nbf": 2**64}, "not yet valid"),
    ],
)
def test_times_beyond_64_bits_are_refused_as_invalid(changes: dict[str, Any], reason: str) -> None:
    assert reason in str(refusal(forge(header(), claims(**changes))))


def test_negative_times_make_an_expired_token() -> None:
    with pytest.raises(TokenExpiredError):
        CODEC.verify_access_token(forge(header(), claims(iat=-120, nbf=-120, exp=-60)))


# Other kinds of token, at the middleware ------------------------------------------------------


async def other_tokens(service: S3AuthService) -> tuple[str, dict[str, str]]:
    """A genuine access token of `service`, and every other kind of token it hands out, with
    an ID token signed by its own key beside them (the access token's header and claims,
    `typ: JWT`, as an OpenID provider would write one) and the access token with `cty: JWT`
    added, signed by that key too."""
    user, pair = await login(service)
    mailed = {
        f"mailed link: {purpose}": await service.account_tokens.issue(purpose, user)
        for purpose in ("password-reset", "email-verification", "email-change")
    }
    head, payload, _ = pair.access_token.split(".")
    access_header = json.loads(base64.urlsafe_b64decode(head + "=="))
    key = service.tokens.key_set().signing_key(service.clock())
    id_token = jws.serialize_compact(
        {**access_header, "typ": "JWT"},
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)),
        key.key,
        algorithms=[key.algorithm],
    )
    nested = jws.serialize_compact(
        {**access_header, "cty": "JWT"},
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)),
        key.key,
        algorithms=[key.algorithm],
    )
    others = {
        "refresh token": pair.refresh_token,
        "ID token": low_s_compact(id_token),
        "access token said to be nested (cty: JWT)": low_s_compact(nested),
        **mailed,
    }
    return pair.access_token, others


class Counting:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def answers(verifier: Any, access_token: str, others: dict[str, str]) -> None:
    app = Counting()
    middleware = BearerTokenMiddleware(app, verifier)
    assert (await call_http(middleware, http_scope(headers=bearer(access_token)))).status == 200
    for name, token in others.items():
        refusal(token, verifier.verify_access_token)
        answer = await call_http(middleware, http_scope(headers=bearer(token)))
        assert answer.status == 401, name
        assert answer.headers[b"content-type"] == b"application/problem+json", name
        assert answer.json()["code"] == "invalid_token", name
    assert app.calls == 1 and len(middleware.cache) == 1


@pytest.mark.anyio
async def test_no_other_token_passes_for_an_access_token_at_the_issuing_service() -> None:
    service = make_clocked_service(clock=Clock())
    await answers(service, *await other_tokens(service))


@pytest.mark.anyio
async def test_no_other_token_passes_for_an_access_token_at_a_jwks_verifier(
    tmp_path: Path,
) -> None:
    """The issuer signs ES256 with a key pair; the verifier has its JWKS alone."""
    clock = Clock()
    pem = generate_key("ES256").as_pem(private=True).decode()
    service = make_clocked_service(clock=clock, algorithm="ES256", signing_key=pem)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps((await service.published_keys()).jwks(clock())))
    verifier = JwksVerifier(jwks, clock=clock)
    await verifier.load()
    await answers(verifier, *await other_tokens(service))
