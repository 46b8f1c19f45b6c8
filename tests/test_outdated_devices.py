"""A device cookie from before the account's sessions were last ended (a logout everywhere, a
new password) gets no device treatment: its attempt counts as one without a cookie. The
cookie carries the counter of the session generation it was issued under, and each process
remembers, per account, the newest counter a login of it has read; a cookie below it is
outdated for sure and counts as none before anything is read. So while the shared
password-hashing places are full, such a login is refused as a login without a cookie is,
reading nothing from the store, however often it is sent: otherwise anyone could keep a
cookie of an account of their own, log out everywhere, and have each login of a flood read
the store where the flood's own are refused for free."""

from __future__ import annotations

import threading

import anyio
import httpx
import pytest
from conftest import make_service
from test_app import PASSWORD, assert_problem, client_for, mounted, register
from test_hash_queue import GatedHasher, wait_until

from s3auth_asgi.app.devices import (
    DEVICE_COOKIE,
    DEVICE_HEADER,
    Device,
    DeviceCookies,
    NewestGenerations,
)
from s3auth_asgi.storage import ObjectStore
from s3auth_asgi.tokens import derive_key, mac_text

pytestmark = pytest.mark.anyio

WRONG = "Wrong123!"


async def post_login(
    client: httpx.AsyncClient, name: str, password: str, device: str | None = None
) -> httpx.Response:
    headers = {DEVICE_HEADER: device} if device else {}
    data = {"username": name, "password": password}
    return await client.post("/auth/login", data=data, headers=headers)


async def device_of(client: httpx.AsyncClient, name: str) -> str:
    """The device cookie a successful login of `name` sets."""
    client.cookies.clear()
    response = await post_login(client, name, PASSWORD)
    assert response.status_code == 200, response.text
    value = response.cookies.get(DEVICE_COOKIE)
    client.cookies.clear()
    assert value
    return value


async def test_an_outdated_cookie_is_refused_during_a_flood_without_a_read() -> None:
    service = make_service(hash_concurrency=1, hash_queue=1, hash_device_queue=2)
    hasher = service.passwords = GatedHasher.from_settings(service.settings)
    assert isinstance(hasher, GatedHasher)
    async with client_for(mounted(service), base_url="https://testserver") as client:
        mallory = await register(client, "mallory")
        stale = await device_of(client, "mallory")
        await service.revoke_all_user_tokens(mallory["id"])
        # Its first use is read, and found outdated: counted as a login without it.
        first = await post_login(client, "mallory", WRONG, stale)
        assert_problem(first, 401, "invalid_credentials")
        hasher.gate = gate = threading.Event()
        answers: list[httpx.Response] = []

        async def flooding(i: int) -> None:
            answers.append(await post_login(client, f"flood{i}", WRONG))

        async with anyio.create_task_group() as tg:
            try:
                for i in range(2):  # the flood takes the shared places
                    tg.start_soon(flooding, i)
                await wait_until(lambda: hasher.asking == 2, "the flood")
                service.store.reset_counts()
                for _ in range(10):
                    refused = await post_login(client, "mallory", PASSWORD, stale)
                    assert_problem(refused, 503, "server_busy")
                assert dict(service.store.requests) == {}  # as for a login without a cookie
                assert hasher.kept.remembered == 0  # and no kept place was taken or charged
            finally:
                gate.set()
    assert [answer.status_code for answer in answers] == [401, 401]


async def test_a_cookie_of_a_newer_generation_than_a_process_has_read_keeps_its_device() -> None:
    # Two instances on one store: what one has read of an account never makes a cookie
    # that the other issued after a later change count as none.
    store = ObjectStore.from_url("memory://")
    here, there = make_service(store=store), make_service(store=store)
    async with (
        client_for(mounted(here, rate_limit=True), base_url="https://testserver") as near,
        client_for(mounted(there, rate_limit=True), base_url="https://testserver") as far,
    ):
        alice = await register(near, "alice")
        outdated = await device_of(near, "alice")
        await here.revoke_all_user_tokens(alice["id"])
        assert_problem(await post_login(near, "alice", WRONG, outdated), 401, "invalid_credentials")
        await there.revoke_all_user_tokens(alice["id"])
        newer = await device_of(far, "alice")
        response = await post_login(near, "alice", WRONG, newer)
        assert_problem(response, 401, "invalid_credentials")
        assert response.headers["ratelimit-policy"] == '"login_device";q=5;w=900'
        # The outdated one is counted against the account and the address, as none is.
        response = await post_login(near, "alice", WRONG, outdated)
        assert '"login_device"' not in response.headers["ratelimit-policy"]


async def test_a_value_of_the_earlier_form_is_judged_once_the_record_is_read() -> None:
    # `d3`, issued before the counter was added: still a device while current, and once
    # outdated counted as none, as before.
    service = make_service(store=ObjectStore.from_url("memory://"))
    async with client_for(mounted(service, rate_limit=True), base_url="https://testserver") as c:
        alice = await register(c, "alice")
        value = await device_of(c, "alice")
        cookies = DeviceCookies(service.settings.secret_keys)
        _, user_id, device_id, expires, name, email, _, generation, _ = value.split(".")
        signed = f"d3.{user_id}.{device_id}.{expires}.{name}.{email}.{generation}"
        key = derive_key(service.settings.secret_key, "device-cookie")
        earlier = f"{signed}.{mac_text(key, signed)}"  # signed as the earlier form was
        assert cookies.verify(earlier, "username:alice") == Device(user_id, device_id, generation)
        response = await post_login(c, "alice", WRONG, earlier)
        assert response.headers["ratelimit-policy"] == '"login_device";q=5;w=900'
        await service.revoke_all_user_tokens(alice["id"])
        for _ in range(2):
            response = await post_login(c, "alice", WRONG, earlier)
            assert '"login_device"' not in response.headers["ratelimit-policy"]
        # Forged forms: a `d4` without the counter, a `d3` with one.
        assert cookies.verify(f"d4.{earlier[3:]}", "username:alice") is None
        assert cookies.verify(value.replace("d4.", "d3.", 1), "username:alice") is None


def test_the_accounts_remembered_are_bounded() -> None:
    newest = NewestGenerations(max_accounts=3)
    for i in range(5):
        newest.saw(f"user{i}", 2)
    assert len(newest) == 3
    newest.saw("user2", 1)  # never lowered, and now the latest seen
    newest.saw("user5", 2)
    assert newest.outdates(Device("user2", "d", counter=1))
    assert not newest.outdates(Device("user2", "d", counter=2))
    assert not newest.outdates(Device("user3", "d", counter=0))  # forgotten: read again
    assert not newest.outdates(Device("user4", "d"))  # no counter: judged once read
