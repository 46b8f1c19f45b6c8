"""Stored signing keys on hosts whose clocks disagree by up to S3AUTH_REVOCATION_SKEW_SECONDS,
and whose reads of the keys lag by up to two sync intervals: a key meant to sign at once
signs at once on every host, whichever clock wrote it; a host with no key signing on its
clock refuses a login with 503 before writing a session; a key published ahead signs only
once every JWKS answered without it has expired; and a key replaced at once verifies the
tokens hosts signed with it before they read its successor, until they expire.

Hosts share one memory:// store; each has its own clock, a fixed offset from a common time
that the test moves by hand (`support.SharedTime`). The operator's commands act through
`KeyStore` on a clock of their own.
"""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest
from conftest import make_settings
from support import SharedTime, SkewedClock, skewed_host, stored_user
from test_cli_keys import kid_of
from test_key_sync import PUBLISH, SYNC

from s3auth_asgi import ConfigurationError, S3AuthService
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.keys.remote import KeysUnavailableError
from s3auth_asgi.keys.stored import undo_margin
from s3auth_asgi.models import Session
from s3auth_asgi.storage import ObjectStore
from s3auth_asgi.storage import keys as layout

pytestmark = pytest.mark.anyio

SKEW = 10  # S3AUTH_REVOCATION_SKEW_SECONDS's default
LIFETIME = 1805


FLEET: dict[str, Any] = {
    "algorithm": "ES256",
    "key_sync_seconds": SYNC,
    "key_publish_seconds": PUBLISH,
    "revocation_skew_seconds": SKEW,
    "leeway_seconds": SKEW,  # tokens verify across hosts only within the leeway
}


def host(store: ObjectStore, time: SharedTime, offset: float, **overrides: Any) -> S3AuthService:
    return skewed_host(store, time, offset, **{**FLEET, **overrides})


async def signs_and_verifies(signer: S3AuthService, *verifiers: S3AuthService) -> None:
    """`signer` issues a token now, which every host verifies."""
    token = (await signer.create_token_pair(await stored_user(signer, "alice"))).access_token
    for verifier in (signer, *verifiers):
        assert verifier.verify_access_token(token)["sub"]


async def test_the_first_key_signs_at_once_on_a_host_behind_the_one_that_made_it() -> None:
    time, store = SharedTime(), ObjectStore.from_url("memory://")
    ahead, behind = host(store, time, +SKEW / 2), host(store, time, -SKEW / 2)
    (made,) = (await ahead.published_keys()).entries  # the first start makes the key
    await behind.tokens.ring.sync()  # type: ignore[union-attr]
    assert [e.kid for e in (await behind.published_keys()).entries] == [made.kid]
    await signs_and_verifies(behind, ahead)
    await signs_and_verifies(ahead, behind)


async def test_the_first_key_made_on_a_host_booted_an_hour_ahead_signs_on_every_host() -> None:
    """The first process of a deployment starts on a host whose clock booted an hour ahead,
    and makes the signing key; NTP then sets its clock right. The key signs at once on the
    right clocks too, that host's among them, not an hour later."""
    time, store = SharedTime(), ObjectStore.from_url("memory://")
    booted, exact = host(store, time, 3600.0), host(store, time, 0.0)
    (made,) = (await booted.published_keys()).entries
    assert store.requests["put"] == 2  # the probe timing its clock, and the key set
    booted.clock.offset = 0.0  # type: ignore[attr-defined]
    for service in (booted, exact):
        await service.tokens.ring.sync()  # type: ignore[union-attr]
    for service in (booted, exact):
        assert (await service.tokens.signing_key()).kid == made.kid
        await signs_and_verifies(service, booted, exact)


@pytest.mark.parametrize("operator", [+SKEW / 2, -SKEW / 2], ids=["ahead", "behind"])
async def test_a_leaked_key_is_replaced_at_once_on_every_host(operator: float) -> None:
    """`rotate --now`, then `retire OLD --now`, from an operator's clock up to the skew off
    the hosts': the new key signs on each host at once, and the leaked one nowhere."""
    time, store = SharedTime(), ObjectStore.from_url("memory://")
    hosts = [host(store, time, offset) for offset in (0.0, +SKEW / 2, -SKEW / 2)]
    leaked = (await hosts[0].published_keys()).entries[0].kid
    time.advance(3 * PUBLISH)  # the first key has signed a while
    # The commands' key store, as they make it from the settings on the operator's host.
    admin = host(store, time, operator).tokens.ring.stored  # type: ignore[union-attr]
    assert admin is not None
    now = SkewedClock(time, operator)
    new = await admin.rotate("ES256", now(), 0)
    await admin.retire(leaked, now(), after=LIFETIME, immediately=True, undo_margin=3 * SYNC)
    for service in hosts:
        await service.tokens.ring.sync()  # type: ignore[union-attr]
    for service in hosts:
        assert (await service.tokens.signing_key()).kid == new.kid
        await signs_and_verifies(service, *hosts)


async def test_a_host_for_which_no_key_signs_yet_refuses_a_login_with_503_and_writes_nothing() -> (
    None
):
    """A host whose clock is further behind the key's writer than the allowance (or a set
    written by hand whose keys all activate later) has no key to sign with: a login is
    answered as when the keys cannot be read, 503 `keys_unavailable`, never a 500, and
    leaves no session behind."""
    time, store = SharedTime(), ObjectStore.from_url("memory://")
    exact = host(store, time, 0.0)
    await exact.published_keys()  # the first start makes the key
    behind = host(store, time, -3 * SKEW)
    pair = await exact.create_token_pair(await stored_user(exact, "carol"))
    bob = await behind.create_user("bob", "bob@example.com", "Secret123!")
    app = create_auth_app(behind, rate_limit=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        login = await c.post("/login", data={"username": "bob", "password": "Secret123!"})
    assert login.status_code == 503, login.text
    assert login.json()["code"] == "keys_unavailable"
    assert login.headers["retry-after"]
    assert await behind.get_user_active_sessions(bob.id) == []
    # A refresh is refused before it rotates the session: a rotation the client never
    # hears of would make its next try, once the grace has passed, a reuse.
    with pytest.raises(KeysUnavailableError):
        await behind.refresh_access_token(pair.refresh_token)
    token = exact.tokens.parse_refresh_token(pair.refresh_token)
    found = await store.get(layout.session(token.user_id, token.session_id), Session)
    assert found is not None and found.value.generation == token.generation


def least_publish_delay(**settings: Any) -> int:
    """The shortest S3AUTH_KEY_PUBLISH_SECONDS the settings accept next to `settings`."""
    for delay in itertools.count(1):
        try:
            make_settings(**{**FLEET, **settings, "key_publish_seconds": delay})
        except ConfigurationError:
            continue
        return delay
    raise AssertionError  # pragma: no cover - count() never ends


async def test_a_new_key_signs_only_once_every_jwks_answered_without_it_has_expired() -> None:
    """The least publish delay the settings accept, the operator's clock behind and a
    host's ahead (each by half the allowance): the JWKS a host answers from keys it read
    just before the rotation, which a verifier keeps for its max-age, has expired before
    that host's clock lets it sign with the new key (or the verifier refuses its tokens)."""
    timing = {"key_sync_seconds": SYNC, "jwks_max_age_seconds": 300}
    delay = least_publish_delay(**timing)
    time, store = SharedTime(), ObjectStore.from_url("memory://")
    serving = host(store, time, 0.0, key_publish_seconds=delay, **timing)
    ahead = host(store, time, +SKEW / 2, key_publish_seconds=delay, **timing)
    operator = host(store, time, -SKEW / 2, key_publish_seconds=delay, **timing)
    await serving.published_keys()  # read just before the rotation
    admin = operator.tokens.ring.stored  # type: ignore[union-attr]
    assert admin is not None
    new = await admin.rotate("ES256", operator.clock(), delay)
    time.advance(2 * SYNC - 1)  # keys read this long ago are answered while read again
    transport = httpx.ASGITransport(app=create_auth_app(serving, rate_limit=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.get("/.well-known/jwks.json")
    assert new.kid not in {key["kid"] for key in answer.json()["keys"]}
    max_age = int(answer.headers["cache-control"].rsplit("max-age=", 1)[1])
    kept_until = time.now + max_age
    time.now = new.activates_at - SKEW / 2  # the host ahead reaches the activation
    assert (await ahead.tokens.signing_key()).kid == new.kid
    assert time.now >= kept_until, f"signs {kept_until - time.now} s before the JWKS expires"


async def test_a_key_replaced_at_once_verifies_every_token_a_host_signed_before_reading_that() -> (
    None
):
    """After `rotate --now`, a host that read the keys just before it signs with the old key
    until it reads them again (up to twice the sync interval); `retire OLD` without `--now`
    keeps the old key until the last of those tokens has expired."""
    time, store = SharedTime(), ObjectStore.from_url("memory://")
    lagging, reader = host(store, time, 0.0), host(store, time, 0.0)
    old = (await lagging.published_keys()).entries[0].kid
    await reader.published_keys()
    time.advance(1)
    admin = reader.tokens.ring.stored  # type: ignore[union-attr]
    assert admin is not None
    await admin.rotate("ES256", time.now, 0)
    time.advance(2 * SYNC - 2)  # stale: it signs with what it has, and reads meanwhile
    token = (await lagging.create_token_pair(await stored_user(lagging, "alice"))).access_token
    assert kid_of(token) == old  # signed before the read it started had landed
    settings = reader.settings
    when = await admin.retire(
        old,
        time.now,
        after=settings.access_token_seconds + settings.leeway_seconds,
        immediately=False,
        undo_margin=undo_margin(settings.key_sync_seconds, settings.revocation_skew_seconds),
    )
    expires = reader.verify_access_token(token)["exp"]
    assert when >= expires + settings.leeway_seconds
    time.now = expires - 1
    await reader.tokens.ring.sync()  # type: ignore[union-attr]
    assert reader.verify_access_token(token)["sub"]
