"""A key replaced under the kid it had: an issuer (or whoever controls its JWKS) that keeps a
kid and changes the key under it. A JwksVerifier logs it as `key_set_changed` naming the kid
`replaced`, at WARNING, since no rotation of this package does it; it compares the keys by
their RFC 7638 thumbprint, computed once per document taken and never per token; and the
verifications the middleware cached with the key replaced are dropped at the read that
finds it, so no token the old key signed is accepted after it. Against the raw JWKS server
on 127.0.0.1, its requests counted."""

from __future__ import annotations

import gc
import json
import logging
import weakref
from collections.abc import Callable

import pytest
from support import bearer, call_http, http_scope, ok_app
from test_key_events import key_events
from test_keys_remote import KEY, RawHttpServer, jwks_server, with_etags
from test_log_secrets import logged_text

from s3auth_asgi import BearerTokenMiddleware, S3AuthSettings
from s3auth_asgi.keys import material, observed
from s3auth_asgi.keys.algorithms import Key, generate_key
from s3auth_asgi.keys.events import KeyTimes
from s3auth_asgi.keys.keyset import KeyEntry, KeySet
from s3auth_asgi.keys.material import public_jwk
from s3auth_asgi.keys.remote import JwksVerifier
from s3auth_asgi.tokens import TokenCodec

pytestmark = pytest.mark.anyio
__all__ = ["jwks_server"]  # the fixture, used here by name

K2, K3 = generate_key("EdDSA"), generate_key("EdDSA")
SETTINGS = S3AuthSettings(secret_key="Zq7#vL2pXw9!mRt4Kd8@Hs3^Nb6&Yc1*", algorithm="EdDSA")


def jwks(*keys: tuple[str, Key]) -> bytes:
    return json.dumps(KeySet([KeyEntry(k, "EdDSA", m) for k, m in keys]).jwks(0)).encode()


def signed(kid: str, key: Key, user: str = "u") -> str:
    codec = TokenCodec(SETTINGS, keys=KeySet([KeyEntry(kid, "EdDSA", key)]))
    issued, _ = codec.issue_access_token(
        user_id=user, username=user, session_id="s", is_admin=False, scopes=[]
    )
    return issued


async def test_a_key_replaced_under_its_kid_is_logged_as_replaced(
    jwks_server: Callable[..., RawHttpServer], caplog: pytest.LogCaptureFixture
) -> None:
    served = {"document": jwks(("k1", KEY), ("k2", K2)), "etag": '"1"'}
    server = jwks_server(with_etags(served))
    now = [1_900_000_000.0]
    verifier = JwksVerifier(
        server.url, clock=lambda: now[0], min_refresh_seconds=1, refresh_seconds=10
    )
    caplog.set_level(logging.DEBUG, logger="s3auth_asgi")
    await verifier.load()

    async def read(document: bytes, etag: str) -> list[tuple[int, object, object, object]]:
        served.update(document=document, etag=etag)
        now[0] += 1
        caplog.clear()
        await verifier.read_keys_again()
        found = key_events(caplog)
        for _, event in found:
            assert (event.name, event.by, event.at, event.kid) == (
                "key_set_changed",
                "observer",
                now[0],
                None,
            )
        return [(level, e.added, e.removed, e.replaced) for level, e in found]

    # k1 keeps its kid under another key: a warning naming it, no key added or removed.
    assert await read(jwks(("k1", K3), ("k2", K2)), '"2"') == [(logging.WARNING, (), (), ("k1",))]
    message = caplog.records[-1].getMessage()
    assert message == "key event key_set_changed success kid=None by observer replaced=k1"
    # Replaced, added and removed at once; then the same keys again, which log nothing.
    assert await read(jwks(("k1", KEY), ("k3", K2)), '"3"') == [
        (logging.WARNING, (KeyTimes("k3", None, None),), ("k2",), ("k1",))
    ]
    assert await read(jwks(("k1", KEY), ("k3", K2)), '"4"') == []
    assert verifier.fetches == len(server.requests) == 4
    texts = logged_text(caplog.records)
    for key in (KEY, K2, K3):
        assert not any(public_jwk(key, kid="k", algorithm="EdDSA")["x"] in t for t in texts)


async def test_the_thumbprints_are_computed_per_document_taken_never_per_token(
    jwks_server: Callable[..., RawHttpServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[str] = []

    def counted(key: Key) -> str:
        made.append(material.thumbprint(key))
        return made[-1]

    monkeypatch.setattr(observed, "thumbprint", counted, raising=False)
    served = {"document": jwks(("k1", KEY), ("k2", K2)), "etag": '"1"'}
    server = jwks_server(with_etags(served))
    elapsed = [0.0]
    verifier = JwksVerifier(server.url, monotonic=lambda: elapsed[0], min_refresh_seconds=1)
    app = BearerTokenMiddleware(ok_app, verifier, cache_size=0)  # every request verified
    tokens = [signed("k1", KEY, f"u{n}") for n in range(20)]
    for token in tokens:
        assert (await call_http(app, http_scope(headers=bearer(token)))).status == 200
    assert made == [material.thumbprint(KEY), material.thumbprint(K2)]  # the first read
    elapsed[0] += 2
    await verifier.read_keys_again()  # a 304: no document, nothing computed
    assert len(made) == 2
    served.update(document=jwks(("k1", K3)), etag='"2"')
    elapsed[0] += 2
    await verifier.read_keys_again()
    assert made[2:] == [material.thumbprint(K3)]
    assert len(server.requests) == 3


async def test_a_verification_cached_with_a_key_since_replaced_is_not_honoured(
    jwks_server: Callable[..., RawHttpServer],
) -> None:
    """The old key's tokens stop at the read that finds the key replaced, cached or not; the
    new key's verify at once. A key only added leaves the cache as it was."""
    served = {"document": jwks(("k1", KEY)), "etag": '"1"'}
    server = jwks_server(with_etags(served))
    elapsed = [0.0]
    verifier = JwksVerifier(server.url, monotonic=lambda: elapsed[0], min_refresh_seconds=1)
    app = BearerTokenMiddleware(ok_app, verifier)
    old, new = signed("k1", KEY), signed("k1", K2)

    async def status(token: str) -> int:
        return (await call_http(app, http_scope(headers=bearer(token)))).status

    assert await status(old) == 200
    assert old.encode() in app.cache
    served.update(document=jwks(("k1", KEY), ("k2", K3)), etag='"2"')  # a key added
    elapsed[0] += 2
    assert await verifier.read_keys_again()
    assert old.encode() in app.cache
    served.update(document=jwks(("k1", K2), ("k2", K3)), etag='"3"')  # k1 replaced
    elapsed[0] += 2
    assert await verifier.read_keys_again()
    assert [await status(old), await status(new), await status(old)] == [401, 200, 401]
    assert len(app.cache) == 1
    assert len(server.requests) == 3


def test_the_verifier_keeps_no_middleware_s_cache_alive() -> None:
    verifier = JwksVerifier("https://issuer.example/jwks.json")
    cache = weakref.ref(BearerTokenMiddleware(ok_app, verifier).cache)
    gc.collect()
    assert cache() is None


def test_the_service_s_observer_compares_the_keys_under_their_kids_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The observer of a stored set is the same code, its keys' times compared as well: a
    kid kept with another key under it (which opening a stored set refuses: its kid is its
    thumbprint) would be named, beside a retirement found at the same read."""
    observer = observed.KeyObserver()
    caplog.set_level(logging.INFO, logger="s3auth_asgi")
    assert observer.read(KeySet([KeyEntry("k1", "EdDSA", KEY, activates_at=5)]), 10)
    assert not observer.read(KeySet([KeyEntry("k1", "EdDSA", KEY, activates_at=5)]), 11)
    assert observer.read(KeySet([KeyEntry("k1", "EdDSA", K2, activates_at=5, retires_at=20)]), 12)
    assert [(level, e.retiring, e.replaced) for level, e in key_events(caplog)] == [
        (logging.WARNING, (KeyTimes("k1", 5, 20),), ("k1",))
    ]
    assert observer.replaced == ("k1",)
    assert not observer.read(
        KeySet([KeyEntry("k1", "EdDSA", K2, activates_at=5, retires_at=20)]), 13
    )
    assert observer.replaced == ()
