"""A conditional write that lands and loses its answer (a 503 from a load balancer, a
dropped connection) is resent by obstore on its own, and the resend is refused by the
condition the first attempt made true. That refusal is of the write's own landed bytes,
not of another writer's: the store reports the write as made, and every operation built on
conditional writes does what it would have done had the answer arrived.

The answers are lost by a proxy in front of moto and SeaweedFS (`lossy_proxy`). Last, a
refusal that reaches the auth app all the same is a 503 to retry, never a 500.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from conftest import checked, make_bucket, make_service
from lossy_proxy import LossyProxy
from seaweedfs_server import SeaweedFS
from support import StoreWrapper
from test_app import PASSWORD, assert_problem, client_for, login, mounted

from s3auth_asgi import (
    EmailTakenError,
    S3AuthService,
    TokenRevokedError,
    User,
)
from s3auth_asgi.keys.stored import KeyStore
from s3auth_asgi.models import IndexEntry
from s3auth_asgi.ratelimit.policy import RateLimit
from s3auth_asgi.ratelimit.stores import ObjectStoreRateLimitStore
from s3auth_asgi.storage import ObjectStore, StoreConflict, keys

pytestmark = pytest.mark.anyio

NEW_PASSWORD = "Brand-new-pass-7"


@dataclass
class Lossy:
    """A fresh bucket on an S3 server, reached through a proxy that loses answers."""

    proxy: LossyProxy
    url: str

    def store(self) -> ObjectStore:
        return self.proxy.store(self.url)

    def service(self) -> S3AuthService:
        return make_service(self.url, store=self.store())


@pytest.fixture(params=["s3", "seaweedfs"])
def lossy(request: pytest.FixtureRequest) -> Iterator[Lossy]:
    if request.param == "seaweedfs":
        server: SeaweedFS = request.getfixturevalue("seaweedfs")
        upstream, url = server.endpoint, server.fresh_url()
    else:
        upstream = request.getfixturevalue("moto_endpoint")
        url = f"s3://{make_bucket(upstream)}/auth"
    with LossyProxy(upstream) as proxy:
        yield Lossy(proxy, checked(url))


# The store -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["503", "drop"])
async def test_a_create_whose_answer_is_lost_is_made(lossy: Lossy, mode: str) -> None:
    lossy.proxy.mode = mode
    store = lossy.store()
    lossy.proxy.lose_next("PUT", "/t/a.json")
    etag = await store.create("t/a.json", {"n": 1})
    # The first attempt landed and its answer was lost; obstore's resend was refused.
    assert [(seen.status, seen.lost) for seen in lossy.proxy.puts("/t/a.json")] == [
        (200, True),
        (412, False),
    ]
    # One PUT as the caller made it, and the GET that found the write's own bytes there.
    assert dict(store.requests) == {"put": 1, "get": 1}
    got = await store.get("t/a.json", dict)
    assert got is not None and got.value == {"n": 1} and got.etag == etag
    assert await store.replace("t/a.json", {"n": 2}, etag)


async def test_a_replace_whose_answer_is_lost_is_made(lossy: Lossy) -> None:
    store = lossy.store()
    first = await store.create("t/a.json", {"n": 1})
    store.reset_counts()
    lossy.proxy.lose_next("PUT", "/t/a.json")
    etag = await store.replace("t/a.json", {"n": 2}, first)
    assert [seen.status for seen in lossy.proxy.puts("/t/a.json")][1:] == [200, 412]
    assert dict(store.requests) == {"put": 1, "get": 1}
    got = await store.get("t/a.json", dict)
    assert got is not None and got.value == {"n": 2} and got.etag == etag
    with pytest.raises(StoreConflict):  # the version it replaced is gone
        await store.replace("t/a.json", {"n": 3}, first)
    assert await store.replace("t/a.json", {"n": 3}, etag)


async def test_a_write_refused_at_its_first_attempt_costs_no_read(lossy: Lossy) -> None:
    store = lossy.store()
    etag = await store.create("t/a.json", {"n": 1})
    store.reset_counts()
    with pytest.raises(StoreConflict):
        await store.create("t/a.json", {"n": 1})  # the same bytes: another writer's all the same
    with pytest.raises(StoreConflict):
        await store.replace("t/a.json", {"n": 2}, '"s3auth-never-issued"')
    assert dict(store.requests) == {"put": 2}
    got = await store.get("t/a.json", dict)
    assert got is not None and got.value == {"n": 1} and got.etag == etag


async def test_a_resend_refused_by_another_writer_is_a_conflict(lossy: Lossy) -> None:
    """The first attempt fails before it reaches the store, and another writer's create
    lands before the resend."""
    store = lossy.store()
    other = ObjectStore.from_url(lossy.url)

    def other_writer() -> None:
        asyncio.run(other.create("t/a.json", {"n": 2}))

    lossy.proxy.lose_next("PUT", "/t/a.json", landed=False, meanwhile=other_writer)
    with pytest.raises(StoreConflict):
        await store.create("t/a.json", {"n": 1})
    assert [(seen.status, seen.lost) for seen in lossy.proxy.puts("/t/a.json")] == [
        (0, True),
        (412, False),
    ]
    assert dict(store.requests) == {"put": 1, "get": 1}
    got = await store.get("t/a.json", dict)
    assert got is not None and got.value == {"n": 2}


# Account changes -----------------------------------------------------------------------


async def _disable(service: S3AuthService, user: User) -> object:
    return await service.update_user(user.id, is_active=False)


async def _demote(service: S3AuthService, user: User) -> object:
    return await service.update_user(user.id, is_admin=False)


async def _change_password(service: S3AuthService, user: User) -> object:
    return await service.change_password(user.id, PASSWORD, NEW_PASSWORD)


async def _set_password(service: S3AuthService, user: User) -> object:
    return await service.set_password(user.id, NEW_PASSWORD)


@pytest.mark.parametrize(
    ("change", "admin"),
    [(_disable, False), (_demote, True), (_change_password, False), (_set_password, False)],
    ids=["disable", "demote", "change password", "set password"],
)
async def test_a_change_whose_answer_is_lost_ends_the_sessions(
    lossy: Lossy, change: Callable[[S3AuthService, User], Awaitable[object]], admin: bool
) -> None:
    service = lossy.service()
    user = await service.create_user("victim", "victim@example.com", PASSWORD, is_admin=admin)
    thief = await service.create_token_pair(user)
    lossy.proxy.lose_next("PUT", "/users/")
    await change(service, user)  # reported as made, and made
    assert len(lossy.proxy.lost()) == 1
    stored = await service.get_user_by_id(user.id)
    assert stored is not None and stored.session_generation != user.session_generation
    markers = [
        info.key
        async for info in service.store.list(keys.user_sessions(user.id))
        if keys.marker_generation(info.key) is not None
    ]
    assert markers == [keys.generation_marker(user.id, stored.session_generation)]
    with pytest.raises(TokenRevokedError):
        await service.refresh_access_token(thief.refresh_token)


async def test_a_change_of_address_whose_answer_is_lost_keeps_the_new_address(
    lossy: Lossy,
) -> None:
    service = lossy.service()
    alice = await service.create_user("alice", "alice@example.com", PASSWORD)
    lossy.proxy.lose_next("PUT", "/users/")
    changed = await service.update_user(alice.id, email="new@example.com")
    assert changed.email == "new@example.com"
    assert len(lossy.proxy.lost()) == 1
    entry = await service.store.get(keys.email_index("new@example.com"), IndexEntry)
    assert entry is not None and entry.value.user_id == alice.id and not entry.value.released
    with pytest.raises(EmailTakenError):
        await service.create_user("mallory", "new@example.com", PASSWORD)
    owner = await service.get_user_by_email("new@example.com")
    assert owner is not None and owner.id == alice.id
    # The old address is free again, as after any change of address.
    assert await service.create_user("other", "alice@example.com", PASSWORD)


# Registration and login ----------------------------------------------------------------


@pytest.mark.parametrize("part", ["/index/username/", "/index/email/", "/users/"])
async def test_a_registration_whose_answer_is_lost_registers(lossy: Lossy, part: str) -> None:
    service = lossy.service()
    lossy.proxy.lose_next("PUT", part)
    user = await service.create_user("alice", "alice@example.com", PASSWORD)
    assert len(lossy.proxy.lost()) == 1
    found = await service.authenticate_user("alice", PASSWORD)
    assert found is not None and found.id == user.id


async def test_a_login_whose_answer_is_lost_opens_one_session(lossy: Lossy) -> None:
    service = lossy.service()
    user = await service.create_user("bob", "bob@example.com", PASSWORD)
    lossy.proxy.lose_next("PUT", "/sessions/")
    pair = await service.create_token_pair(user)
    assert len(lossy.proxy.lost()) == 1
    stored = [info.key async for info in service.store.list(keys.user_sessions(user.id))]
    assert len(stored) == 1
    assert [session.id for session in await service.get_user_active_sessions(user.id)] == [
        service.decode_token(pair.access_token)["sid"]
    ]
    assert await service.refresh_access_token(pair.refresh_token)


async def test_a_login_through_the_app_whose_answer_is_lost_is_answered(lossy: Lossy) -> None:
    service = lossy.service()
    await service.create_user("carol", "carol@example.com", PASSWORD)
    lossy.proxy.lose_next("PUT", "/sessions/")
    async with client_for(mounted(service)) as client:
        await login(client, "carol")
    assert len(lossy.proxy.lost()) == 1


# Keys and rate limits ------------------------------------------------------------------


async def test_a_key_rotation_whose_answer_is_lost_adds_one_key(lossy: Lossy) -> None:
    stored = KeyStore(lossy.store())
    await stored.read_or_create("ES256", time.time())
    lossy.proxy.lose_next("PUT", "/keys/")
    await stored.rotate("ES256", time.time(), 0)
    assert len(lossy.proxy.lost()) == 1
    found = await stored.read()
    assert found is not None and len(found[0].keys) == 2


async def test_an_admission_whose_answer_is_lost_is_counted_once(lossy: Lossy) -> None:
    limits = ObjectStoreRateLimitStore(lossy.store())
    limit = RateLimit(max_requests=5, window_seconds=3600)
    admitted = []
    for attempt in range(8):
        if attempt == 1:
            lossy.proxy.lose_next("PUT", "/ratelimit/")
        admitted.append((await limits.acquire("login", "k", limit, 1)).allowed)
    assert len(lossy.proxy.lost()) == 1
    assert admitted == [True] * 5 + [False] * 3


async def test_an_admission_resent_into_another_processes_equal_state_is_counted_too(
    lossy: Lossy,
) -> None:
    """Two processes that read the same state compute the same next one, whatever their
    clocks say (while admissions are queued, the next theoretical arrival time is the last
    one plus the interval): here on one clock. The first one's PUT fails before it reaches
    the store and the other's lands meanwhile, so obstore's resend is refused by a state
    equal to its own. It must not count as this one's admission."""
    now = time.time()
    ours = ObjectStoreRateLimitStore(lossy.store(), clock=lambda: now)
    theirs = ObjectStoreRateLimitStore(ObjectStore.from_url(lossy.url), clock=lambda: now)
    limit = RateLimit(max_requests=5, window_seconds=3600)
    assert (await ours.acquire("login", "k", limit, 1)).allowed
    admitted: list[bool] = []

    def other_process() -> None:
        admitted.append(asyncio.run(theirs.acquire("login", "k", limit, 1)).allowed)

    lossy.proxy.lose_next("PUT", "/ratelimit/", landed=False, meanwhile=other_process)
    assert (await ours.acquire("login", "k", limit, 1)).allowed
    assert admitted == [True] and len(lossy.proxy.lost()) == 1
    while (await ours.acquire("login", "k", limit, 1)).allowed:
        admitted.append(True)
    assert len(admitted) + 2 == 5


# A refusal that escapes ----------------------------------------------------------------


class Refused(StoreWrapper):
    """Every create under `prefix` is refused, as if another writer held the key."""

    def __init__(self, inner: ObjectStore, prefix: str) -> None:
        super().__init__(inner)
        self.prefix = prefix

    async def create(self, key: str, value: Any) -> str:
        if key.startswith(self.prefix):
            raise StoreConflict(key)
        return await super().create(key, value)


async def _login_refused(prefix: str) -> httpx.Response:
    inner = ObjectStore.from_url("memory://")
    await make_service(store=inner).create_user("dave", "dave@example.com", PASSWORD)
    service = make_service(store=Refused(inner, prefix))
    async with client_for(mounted(service)) as client:
        return await client.post("/auth/login", data={"username": "dave", "password": PASSWORD})


async def test_a_refused_write_that_escapes_is_a_503_not_a_500() -> None:
    answer = await _login_refused(keys.SESSIONS)
    assert_problem(answer, 503, "store_unavailable")
    assert answer.headers["retry-after"]
    assert "sessions/" not in answer.text


async def test_a_refused_audit_event_leaves_the_answer_as_it_was() -> None:
    answer = await _login_refused(keys.AUDIT)
    assert answer.status_code == 200, answer.text
