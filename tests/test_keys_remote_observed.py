"""A JwksVerifier logs what it finds changed in the issuer's JWKS, as a service process
logs the stored set changing: one `key_set_changed` `by observer` per change, naming the
kids added and removed, from the reads it makes anyway. Its first read, a 304 and a
document with the same keys log nothing; a document with no usable key is a read that
failed, warned of once per answer, and the keys held stay, so the set that follows is
compared with those. Against the raw JWKS server on 127.0.0.1, its requests counted."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest
from test_key_events import key_events
from test_keys_remote import KEY, RawHttpServer, jwks_server, with_etags
from test_log_secrets import logged_text

from s3auth_asgi.keys.algorithms import Key, generate_key
from s3auth_asgi.keys.events import KeyTimes
from s3auth_asgi.keys.keyset import KeyEntry, KeySet
from s3auth_asgi.keys.material import public_jwk
from s3auth_asgi.keys.remote import JwksVerifier

pytestmark = pytest.mark.anyio
__all__ = ["jwks_server"]  # the fixture, used here by name

K2, K3 = generate_key("EdDSA"), generate_key("EdDSA")


def jwks(*keys: tuple[str, Key]) -> bytes:
    return json.dumps(KeySet([KeyEntry(k, "EdDSA", m) for k, m in keys]).jwks(0)).encode()


ENCRYPTION_ONLY = json.dumps(
    {"keys": [{**public_jwk(K2, kid="enc", algorithm="EdDSA"), "alg": "ECDH-ES"}]}
).encode()


async def test_each_change_of_the_jwks_is_logged_once_and_no_read_more(
    jwks_server: Callable[..., RawHttpServer], caplog: pytest.LogCaptureFixture
) -> None:
    served = {"document": jwks(("k1", KEY)), "etag": '"1"'}

    server = jwks_server(with_etags(served))
    now = [1_900_000_000.0]
    verifier = JwksVerifier(
        server.url, clock=lambda: now[0], min_refresh_seconds=1, refresh_seconds=10
    )
    caplog.set_level(logging.DEBUG, logger="s3auth_asgi")
    records: list[logging.LogRecord] = []

    def serve(document: bytes, etag: str) -> None:
        served.update(document=document, etag=etag)

    async def read() -> list[tuple[int, str, tuple[KeyTimes, ...], tuple[str, ...]]]:
        """Read the JWKS again, a second later: the key events it logged."""
        now[0] += 1
        records.extend(caplog.records)
        caplog.clear()
        await verifier.read_keys_again()
        found = key_events(caplog)
        for _, event in found:
            assert (event.by, event.outcome, event.at, event.kid) == (
                "observer",
                "success",
                now[0],
                None,
            )
            assert (event.activates_at, event.retires_at, event.retiring) == (None, None, ())
        return [(level, e.name, e.added, e.removed) for level, e in found]

    await verifier.load()  # the first read: where it starts from
    assert key_events(caplog) == []
    assert await read() == []  # 304
    serve(jwks(("k1", KEY)), '"1b"')  # the same keys, another ETag: a whole document
    assert await read() == []
    serve(jwks(("k1", KEY), ("k2", K2)), '"2"')
    assert await read() == [(logging.INFO, "key_set_changed", (KeyTimes("k2", None, None),), ())]
    assert await read() == []  # 304
    serve(jwks(("k2", K2)), '"3"')
    assert await read() == [(logging.INFO, "key_set_changed", (), ("k1",))]

    # No usable key: a failed read, warned of at each answer; the keys held stay.
    serve(ENCRYPTION_ONLY, '"4"')
    for _ in range(2):
        assert await read() == []
        warned = [(r.levelno, r.getMessage()) for r in caplog.records]
        assert warned == [(logging.WARNING, "reading the JWKS failed: UnusableKeyError: " + repr(
            "the JWKS has no key this package can verify with"
        ))]  # fmt: skip
        assert [e.kid for e in verifier.key_set().entries] == ["k2"]
    serve(jwks(("k2", K2)), '"5"')  # the set held before it: no change
    assert await read() == []
    serve(jwks(("k3", K3)), '"6"')
    assert await read() == [
        (logging.INFO, "key_set_changed", (KeyTimes("k3", None, None),), ("k2",))
    ]
    # One request per read, none for the events; no key material in any record.
    assert verifier.fetches == len(server.requests) == 10
    texts = logged_text([*records, *caplog.records])
    assert len(texts) > 10
    for key in (KEY, K2, K3):
        assert not any(public_jwk(key, kid="k", algorithm="EdDSA")["x"] in text for text in texts)
