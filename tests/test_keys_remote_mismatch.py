"""A token that names a key a JwksVerifier holds and does not verify with it: its issuer may
have put another key under that kid since the JWKS was read, or published one just after.
Such a token spends the budget of reads a token naming an unknown kid spends (at most one
fetch per `min_refresh_seconds`, however many arrive) and is verified once more only when
that read found another key under its kid. A valid token costs what it cost before.
Against the raw JWKS server on 127.0.0.1, its requests counted."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from support import bearer, call_http, http_scope, ok_app
from test_keys_remote import KEY, RawHttpServer, jwks_server, with_etags

from s3auth_asgi import BearerTokenMiddleware, S3AuthSettings
from s3auth_asgi.keys.algorithms import Key, generate_key
from s3auth_asgi.keys.keyset import KeyEntry, KeySet
from s3auth_asgi.keys.remote import JwksVerifier, PossiblyReplacedKeyError
from s3auth_asgi.tokens import TokenCodec
from s3auth_asgi.verifier import TokenJudge

pytestmark = pytest.mark.anyio
__all__ = ["jwks_server"]  # the fixture, used here by name

K2, K3 = generate_key("EdDSA"), generate_key("EdDSA")
SECRET = "Zq7#vL2pXw9!mRt4Kd8@Hs3^Nb6&Yc1*"


def jwks(*keys: tuple[str, str, Key]) -> bytes:
    return json.dumps(KeySet([KeyEntry(k, a, m) for k, a, m in keys]).jwks(0)).encode()


def signed(kid: str, key: Key, user: str = "u", algorithm: str = "EdDSA") -> str:
    settings = S3AuthSettings(secret_key=SECRET, algorithm=algorithm)
    codec = TokenCodec(settings, keys=KeySet([KeyEntry(kid, algorithm, key)]))
    issued, _ = codec.issue_access_token(
        user_id=user, username=user, session_id="s", is_admin=False, scopes=[]
    )
    return issued


def verifications(verifier: JwksVerifier, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each outcome of `verifier.verify_access_token` from now on, in order: the middleware
    takes the method when it is made, so call this before."""
    seen: list[str] = []
    verify = verifier.verify_access_token

    def counted(token: str | bytes) -> dict[str, Any]:
        try:
            claims = verify(token)
        except Exception as error:
            seen.append(type(error).__name__)
            raise
        seen.append("ok")
        return claims

    monkeypatch.setattr(verifier, "verify_access_token", counted)
    return seen


async def status(app: Any, token: str) -> int:
    answer = await call_http(app, http_scope(headers=bearer(token)))
    if answer.status == 401:
        assert answer.json()["code"] == "invalid_token"
    return answer.status


async def test_a_token_of_a_key_replaced_under_its_kid_verifies_at_once(
    jwks_server: Callable[..., RawHttpServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issuer replaces the key under `k1` and signs with the new one at once: its first
    token makes the verifier read the JWKS (not `refresh_seconds` later), and is verified
    once more; that read drops the cached verifications of the old key's tokens. The
    hosts' checks (`TokenJudge`) do the same."""
    served = {"document": jwks(("k1", "EdDSA", KEY)), "etag": '"1"'}
    server = jwks_server(with_etags(served))
    elapsed = [0.0]
    verifier = JwksVerifier(server.url, monotonic=lambda: elapsed[0], min_refresh_seconds=1)
    beside = JwksVerifier(server.url, monotonic=lambda: elapsed[0], min_refresh_seconds=1)
    seen = verifications(verifier, monkeypatch)
    app = BearerTokenMiddleware(ok_app, verifier)
    old, new = signed("k1", KEY), signed("k1", K2)
    assert await status(app, old) == 200
    await beside.load()
    served.update(document=jwks(("k1", "EdDSA", K2)), etag='"2"')
    elapsed[0] += 2  # past min_refresh_seconds, far from refresh_seconds (300)
    seen.clear()
    assert await status(app, new) == 200
    assert seen == [PossiblyReplacedKeyError.__name__, "ok"]
    assert (verifier.fetches, len(server.requests)) == (2, 3)
    assert [await status(app, old), await status(app, new)] == [401, 200]
    assert verifier.fetches == 2  # the old key's token is refused from the copy read
    claims = await TokenJudge(beside, beside.verify_access_token).judge(new.encode())
    assert claims["sub"] == "u" and beside.fetches == 2 and len(server.requests) == 4


async def test_a_key_replaced_with_one_of_another_algorithm_is_learnt_the_same_way(
    jwks_server: Callable[..., RawHttpServer],
) -> None:
    """The token's `alg` is not the one its key was pinned to: refused before its signature
    is checked, and as much a sign of another key under the kid."""
    served = {"document": jwks(("k1", "EdDSA", KEY)), "etag": '"1"'}
    server = jwks_server(with_etags(served))
    elapsed = [0.0]
    verifier = JwksVerifier(server.url, monotonic=lambda: elapsed[0], min_refresh_seconds=1)
    app = BearerTokenMiddleware(ok_app, verifier)
    await verifier.load()
    ecdsa = generate_key("ES256")
    served.update(document=jwks(("k1", "ES256", ecdsa)), etag='"2"')
    elapsed[0] += 2
    assert await status(app, signed("k1", ecdsa, algorithm="ES256")) == 200
    assert [await status(app, signed("k1", KEY)), verifier.fetches] == [401, 2]


def unsigned(header: dict[str, str], token: str) -> str:
    """`token` with `header` for its own, its claims and signature kept."""
    _, claims, signature = token.split(".")
    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return f"{encoded}.{claims}.{signature}"


async def test_what_no_key_of_a_jwks_could_verify_reads_no_jwks(
    jwks_server: Callable[..., RawHttpServer],
) -> None:
    """A JWKS holds no HMAC key, and no key accepts `none`: a token of either, naming the
    kid held or another, is refused from its header alone, with no read of the JWKS, past
    `min_refresh_seconds` or with the copy overdue; one an EdDSA key could have signed
    still reads it."""
    served = {"document": jwks(("k1", "EdDSA", KEY)), "etag": '"1"'}
    server = jwks_server(with_etags(served))
    elapsed = [0.0]
    verifier = JwksVerifier(server.url, monotonic=lambda: elapsed[0], min_refresh_seconds=1)
    app = BearerTokenMiddleware(ok_app, verifier)
    await verifier.load()
    token = signed("k1", KEY)
    refused = [
        unsigned({"alg": alg, "typ": "at+jwt", "kid": kid}, token)
        for alg in ("none", "HS256")
        for kid in ("k1", "k9")
    ]
    for overdue in (False, True):
        elapsed[0] += 2 * verifier.refresh_seconds if overdue else 2
        assert [await status(app, each) for each in refused] == [401] * 4
        assert verifier.fetches == 1
    unknown = unsigned({"alg": "EdDSA", "typ": "at+jwt", "kid": "k9"}, token)
    assert [await status(app, unknown), verifier.fetches] == [401, 2]


async def fetches_for_a_flood(server: RawHttpServer, forged: list[str]) -> int:
    """What a flood of 50 refused tokens costs a verifier over `server`: one every quarter
    second for 7.5 s, then a burst of 20 at one moment, one second later."""
    elapsed = [0.0]
    verifier = JwksVerifier(server.url, monotonic=lambda: elapsed[0], min_refresh_seconds=1)
    app = BearerTokenMiddleware(ok_app, verifier)
    await verifier.load()
    for token in forged[:30]:
        elapsed[0] += 0.25
        assert await status(app, token) == 401
    elapsed[0] += 1
    statuses: list[int] = []

    async def send(token: str) -> None:
        statuses.append(await status(app, token))

    async with anyio.create_task_group() as group:
        for token in forged[30:]:
            group.start_soon(send, token)
    assert statuses == [401] * 20
    assert verifier.fetches == len(server.requests)
    return verifier.fetches


async def test_forged_signatures_on_a_known_kid_cost_the_fetches_random_kids_cost(
    jwks_server: Callable[..., RawHttpServer],
) -> None:
    """Tokens naming `k1` signed with another key: one fetch per `min_refresh_seconds` (1),
    as many as the same flood of tokens naming random kids costs, and no more."""
    floods = {
        "known kid": [signed("k1", K3, f"u{n}") for n in range(50)],
        "random kids": [signed(f"kid{n}", K3, f"u{n}") for n in range(50)],
    }
    fetched = {}
    for name, forged in floods.items():
        served = {"document": jwks(("k1", "EdDSA", KEY)), "etag": '"1"'}
        fetched[name] = await fetches_for_a_flood(jwks_server(with_etags(served)), forged)
    # The first read, one a second from 1 s to 7 s, one for the burst.
    assert fetched == {"known kid": 9, "random kids": 9}


async def test_a_refused_token_is_verified_again_only_when_its_kid_got_another_key(
    jwks_server: Callable[..., RawHttpServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read that brings other keys, but the same one under the token's kid, leaves the
    refusal as it is: no second verification. Within `min_refresh_seconds` nothing is
    read. A valid token is verified once and fetches nothing, then comes from the cache."""
    served = {"document": jwks(("k1", "EdDSA", KEY)), "etag": '"1"'}
    server = jwks_server(with_etags(served))
    elapsed = [0.0]
    verifier = JwksVerifier(server.url, monotonic=lambda: elapsed[0], min_refresh_seconds=1)
    seen = verifications(verifier, monkeypatch)
    app = BearerTokenMiddleware(ok_app, verifier, cache_size=0)
    await verifier.load()
    forged = signed("k1", K3)
    refused = PossiblyReplacedKeyError.__name__
    steps = [
        (2.0, jwks(("k1", "EdDSA", KEY), ("k2", "EdDSA", K2)), [refused]),  # k2 added
        (0.5, None, [refused]),  # within the interval: no read
        (1.0, jwks(("k1", "EdDSA", K2), ("k2", "EdDSA", K2)), [refused, refused]),  # replaced
        (1.0, None, [refused]),  # a 304
    ]
    fetches = []
    for seconds, document, expected in steps:
        if document is not None:
            served.update(document=document, etag=f'"{len(server.requests) + 1}"')
        elapsed[0] += seconds
        seen.clear()
        assert await status(app, forged) == 401
        assert seen == expected
        fetches.append(verifier.fetches)
    assert fetches == [2, 2, 3, 4] and len(server.requests) == 4
    valid = signed("k1", K2)
    cached = BearerTokenMiddleware(ok_app, verifier)
    seen.clear()
    assert [await status(cached, valid), await status(cached, valid)] == [200, 200]
    assert seen == ["ok"] and verifier.fetches == 4
