"""AccessClaims against the rules it replaced: joserfc's JWTClaimsRegistry (sub, jti, sid,
exp and iat essential, iss/aud values when configured) behind the whole-seconds and lifetime
checks and the string checks of sub, jti and sid, and one rule the registry lacks: with no
audience configured, a token that carries `aud` at all is refused (RFC 7519 §4.1.3: the
verifier cannot identify itself with any value of it).

The property draws claims sets near every rule's edge (times around now and the leeway,
each claim missing, null, empty, of another type, right or wrong party) and holds the two
side by side: the same tokens accepted, the same refused, and a refusal that is about
expiry alone answered as expired.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwt import JWTClaimsRegistry

from s3auth_asgi import InvalidTokenError, TokenExpiredError
from s3auth_asgi.access_claims import AccessClaims

NOW = 1_800_000_000
LIFETIME = 900
MISSING = object()


def reference(
    claims: dict[str, Any], now: int, leeway: int, issuer: str | None, audience: str | None
) -> str:
    """'ok', 'expired' or 'invalid', as the former checks answered."""
    exp, iat = claims.get("exp"), claims.get("iat")
    if not (type(exp) is int and type(iat) is int) or (
        "nbf" in claims and type(claims["nbf"]) is not int
    ):
        return "invalid"
    if exp - iat > LIFETIME + leeway:
        return "invalid"
    options: dict[str, Any] = {
        name: {"essential": True} for name in ("sub", "jti", "sid", "exp", "iat")
    }
    if issuer:
        options["iss"] = {"essential": True, "value": issuer}
    if audience:
        options["aud"] = {"essential": True, "value": audience}
    registry = JWTClaimsRegistry(now=lambda: now, leeway=leeway, **options)
    try:
        # Every rule but expiry first: joserfc stops at the first refusal in the claims'
        # order, so an expired token is "expired" only if it would otherwise pass.
        registry.validate({**claims, "exp": 2 * now})
    except JoseError:
        return "invalid"
    if not all(isinstance(claims.get(name), str) for name in ("sub", "jti", "sid")):
        return "invalid"
    if not audience and "aud" in claims:
        return "invalid"
    expiry = JWTClaimsRegistry(now=lambda: now, leeway=leeway, exp={"essential": True})
    try:
        expiry.validate({"exp": exp})
    except ExpiredTokenError:
        return "expired"
    return "ok"


def ours(
    claims: dict[str, Any], now: int, leeway: int, issuer: str | None, audience: str | None
) -> str:
    rules = AccessClaims(
        leeway=leeway, max_span=LIFETIME + leeway, issuer=issuer, audience=audience
    )
    try:
        rules.check(claims, now)
    except TokenExpiredError:
        return "expired"
    except InvalidTokenError:
        return "invalid"
    return "ok"


ODD = st.sampled_from([None, "", 0, 7, True, 1.5, "1", [], ["api"], ["api", 5], {}, {"a": 1}])
NAMES = ("sub", "jti", "sid", "iat", "exp", "nbf", "iss", "aud")


@st.composite
def claims_sets(draw: st.DrawFn) -> dict[str, Any]:
    """A claims set that holds most rules, its times within a few seconds of an edge,
    with up to two claims then made odd or dropped."""
    offset = st.integers(-35, 35)
    iat = NOW + draw(st.one_of(offset, st.integers(-LIFETIME - 35, 35)))
    exp = draw(
        st.one_of(
            st.builds(lambda span: iat + span, st.integers(LIFETIME - 35, LIFETIME + 35)),
            st.builds(lambda moment: NOW + moment, offset),
        )
    )
    claims: dict[str, Any] = {"sub": "u1", "jti": "j1", "sid": "s1", "iat": iat, "exp": exp}
    nbf = draw(st.one_of(st.none(), st.just(iat), st.builds(lambda d: NOW + d, offset)))
    if nbf is not None:
        claims["nbf"] = nbf
    for name, choices in (
        ("iss", ["https://issuer.example", "https://elsewhere.example"]),
        ("aud", ["api", "web", ["web", "api"], ["web"], []]),
    ):
        value = draw(st.sampled_from([*choices, MISSING]))
        if value is not MISSING:
            claims[name] = value
    for name in draw(st.lists(st.sampled_from(NAMES), max_size=2, unique=True)):
        value = draw(st.one_of(ODD, st.just(MISSING)))
        claims.pop(name, None)
        if value is not MISSING:
            claims[name] = value
    # joserfc reads claims in their order; ours has one order. Shuffle to cover both.
    names = draw(st.permutations(sorted(claims)))
    return {name: claims[name] for name in names}


@settings(max_examples=600)
@given(
    claims=claims_sets(),
    leeway=st.sampled_from([0, 1, 30]),
    issuer=st.sampled_from([None, "https://issuer.example"]),
    audience=st.sampled_from([None, "api"]),
)
def test_accepts_and_refuses_as_the_registry_did(
    claims: dict[str, Any], leeway: int, issuer: str | None, audience: str | None
) -> None:
    assert ours(claims, NOW, leeway, issuer, audience) == reference(
        claims, NOW, leeway, issuer, audience
    )


def valid(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": "u1",
        "jti": "j1",
        "sid": "s1",
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + LIFETIME,
        "iss": "https://issuer.example",
        "aud": ["web", "api"],
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not MISSING}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, "ok"),
        ({"exp": NOW + 30}, "ok"),  # inside the leeway of 30 s
        ({"exp": NOW - 30, "iat": NOW - LIFETIME}, "expired"),  # exp == now - leeway
        ({"exp": NOW - 30, "iat": NOW - LIFETIME, "sub": ""}, "invalid"),
        ({"iat": NOW + 30}, "ok"),
        ({"iat": NOW + 31}, "invalid"),
        ({"nbf": NOW + 31}, "invalid"),
        ({"nbf": MISSING}, "ok"),
        ({"nbf": None}, "invalid"),
        ({"sid": MISSING}, "invalid"),
        ({"jti": 5}, "invalid"),
        ({"iss": "https://elsewhere.example"}, "invalid"),
        ({"iss": MISSING}, "invalid"),
        ({"aud": "api"}, "ok"),
        ({"aud": ["web"]}, "invalid"),
        ({"aud": MISSING}, "invalid"),
        ({"aud": ["api", 5]}, "invalid"),
        ({"exp": NOW + LIFETIME + 31}, "invalid"),  # lives longer than issued tokens do
    ],
)
def test_edges_with_issuer_audience_and_leeway(changes: dict[str, Any], expected: str) -> None:
    claims = valid(**changes)
    assert ours(claims, NOW, 30, "https://issuer.example", "api") == expected
    assert reference(claims, NOW, 30, "https://issuer.example", "api") == expected


def test_unconfigured_parties_still_need_the_right_types() -> None:
    assert ours(valid(iss=MISSING, aud=MISSING), NOW, 0, None, None) == "ok"
    assert ours(valid(aud=MISSING), NOW, 0, None, None) == "ok"  # any issuer, none required
    assert ours(valid(iss=7, aud=MISSING), NOW, 0, None, None) == "invalid"


@pytest.mark.parametrize("aud", ["api", ["api"], ["web", "api"], [], "", None, {"api": True}])
@pytest.mark.parametrize("audience", [None, ""])
def test_without_an_audience_any_aud_is_refused(aud: Any, audience: str | None) -> None:
    assert ours(valid(aud=aud), NOW, 0, None, audience) == "invalid"
    assert reference(valid(aud=aud), NOW, 0, None, audience) == "invalid"
    # Refused as invalid even once expired: a client told "expired" would refresh.
    old = valid(aud=aud, iat=NOW - LIFETIME - 60, nbf=NOW - LIFETIME - 60, exp=NOW - 60)
    assert ours(old, NOW, 0, None, audience) == "invalid"
