"""The random secrets behind what a client holds are as large as docs/security.md says
(ASVS 7.2.3, 6.4.1), and every refresh token is bound to the secret key (ASVS 7.4.5)."""

from __future__ import annotations

import pytest
from conftest import make_service
from test_app import PASSWORD

from s3auth_asgi.errors import InvalidTokenError
from s3auth_asgi.jose_json import base64url_decode
from s3auth_asgi.models import Session
from s3auth_asgi.settings import new_secret_key
from s3auth_asgi.storage import ObjectStore, keys

pytestmark = pytest.mark.anyio


def octets(text: str) -> int:
    return len(base64url_decode(text.encode()))


async def test_each_secret_a_client_holds_has_its_documented_size() -> None:
    service = make_service()
    user = await service.create_user("alice", "alice@example.com", PASSWORD)
    pairs = [await service.create_token_pair(user) for _ in range(2)]
    claims = [service.decode_token(pair.access_token) for pair in pairs]
    sessions = [
        (await service.store.get(keys.session(user.id, c["sid"]), Session)).value for c in claims
    ]
    mailed = [await service.account_tokens.issue("password-reset", user) for _ in range(2)]
    # A session's secret: 192 bits; the refresh token's MAC over it: 256.
    assert [octets(s.secret) for s in sessions] == [24, 24]
    assert [octets(p.refresh_token.rsplit(".", 1)[1]) for p in pairs] == [32, 32]
    # An access token's jti: 128 bits; a mailed link's secret: 256.
    assert [octets(c["jti"]) for c in claims] == [16, 16]
    assert [octets(token.rsplit(".", 1)[1]) for token in mailed] == [32, 32]
    for drawn in ([s.secret for s in sessions], [c["jti"] for c in claims], mailed):
        assert len(set(drawn)) == 2


async def test_a_new_secret_key_refuses_every_refresh_token() -> None:
    store = ObjectStore.from_url("memory://")
    before = make_service(store=store)
    user = await before.create_user("alice", "alice@example.com", PASSWORD)
    pair = await before.create_token_pair(user)
    after = make_service(store=store, secret_key=new_secret_key())
    store.reset_counts()
    with pytest.raises(InvalidTokenError):
        await after.refresh_access_token(pair.refresh_token)
    # Refused on its MAC, after the session's read; nothing is written or ended.
    assert dict(store.requests) == {"get": 1}
    with pytest.raises(InvalidTokenError):
        after.decode_token(pair.access_token)
    # Under the old key the session is still whole.
    again = await before.refresh_access_token(pair.refresh_token)
    sid = before.decode_token(pair.access_token)["sid"]
    assert before.decode_token(again.access_token)["sid"] == sid
