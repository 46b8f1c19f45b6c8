"""Google Cloud Storage (fake-gcs-server behind gcs_proxy.py) and Azure Blob Storage
(Azurite) as stores: the conditional writes everything rests on, every path that replaces
an object, the requests each operation costs there (as the servers themselves counted
them), and `s3auth check`.

The contract, service and race tests run on both through `on_every_store`; these are what
is particular to them.
"""

from __future__ import annotations

import collections
import io
import re
import time
from typing import Any

import pytest
from azurite_server import Azurite
from conftest import SECRET, make_service
from gcs_server import FakeGCS

from s3auth_asgi import S3AuthService, TokenRevokedError, cli
from s3auth_asgi.identifiers import new_id, normalise_username
from s3auth_asgi.ratelimit import ObjectStoreRateLimitStore, RateLimit, RateLimiter
from s3auth_asgi.storage import ObjectStore, StoreConflict, keys, probe_store
from s3auth_asgi.storage.probes import CONDITIONAL_UPDATE, CREATE_IF_ABSENT, REACHABLE
from s3auth_asgi.storage.versions import never_issued

pytestmark = pytest.mark.anyio
on_both = pytest.mark.parametrize("store_url", ["azure", "gcs"], indirect=True)
PASSWORD = "SecurePass123!"


def served(request: pytest.FixtureRequest, backend: str, store_url: str) -> dict[str, int]:
    """The requests the server itself answered for `store_url`'s bucket or container."""
    name = "azurite" if backend == "azure" else "fake_gcs"
    server: Azurite | FakeGCS = request.getfixturevalue(name)
    return server.requests(store_url)


@on_both
async def test_conditional_writes_are_refused_when_they_must_be(store: ObjectStore) -> None:
    etag = await store.create("t/a.json", {"n": 1})
    with pytest.raises(StoreConflict):  # create-if-absent on an existing key
        await store.create("t/a.json", {"n": 2})
    fresh = await store.replace("t/a.json", {"n": 2}, etag)
    assert fresh != etag
    for stale in (etag, never_issued(etag)):  # a version that is not current
        with pytest.raises(StoreConflict):
            await store.replace("t/a.json", {"n": 3}, stale)
    with pytest.raises(StoreConflict):  # a replace of a key that does not exist
        await store.replace("t/missing.json", {"n": 1}, fresh)
    got = await store.get("t/a.json", dict)
    assert got is not None and got.value == {"n": 2} and got.etag == fresh
    assert dict(store.requests) == {"put": 6, "get": 1}


@on_both
async def test_each_operation_costs_what_the_server_answered(
    request: pytest.FixtureRequest, store_url: str, backend: str
) -> None:
    """Per operation, what `ObjectStore` counted; in all, what the server itself served."""
    service = make_service(store_url)
    store = service.store
    costs: dict[str, dict[str, int]] = {}
    totals: collections.Counter[str] = collections.Counter()

    async def measure(name: str, call: Any) -> Any:
        store.reset_counts()
        result = await call
        costs[name] = dict(store.requests)
        totals.update(store.requests)
        return result

    # The check of the store, as the service's start makes it: the read of the verdict
    # that `s3auth check` left (`store_check`).
    await measure("store check", service.check_store())
    # The first snapshot of revocations, which a host's start loads (`load_at_startup`): a
    # refresh judges its session by revocations within their bound.
    await measure("first sync", service.ensure_fresh())
    user = await measure("register", service.create_user("cost", "cost@example.com", PASSWORD))
    found = await measure("authenticate", service.authenticate_user("cost", PASSWORD))
    pairs = [await measure("login", service.create_token_pair(found)) for _ in range(3)]
    await measure("refresh", service.refresh_access_token(pairs[0].refresh_token))
    await measure("logout", service.revoke_refresh_token(pairs[1].refresh_token))
    await measure("logout everywhere", service.revoke_all_user_tokens(user.id))
    # GCS deletes one key a request: the two sessions left are two DELETEs there.
    ended = 2 if backend == "gcs" else 1
    assert costs == {
        "store check": {"get": 1},
        "first sync": {"list": 1, "get": 1},  # the listing, and the end of every session
        "register": {"put": 4},
        "authenticate": {"get": 2},
        "login": {"put": 1, "get": 1},  # the session, and the user read back
        "refresh": {"get": 1, "list": 1, "put": 1},
        "logout": {"get": 1, "put": 1, "delete": 1},
        # The record's GET and PUT (a new generation) and its marker, then as before.
        "logout everywhere": {"get": 1, "list": 1, "put": 3, "delete": ended},
    }
    # And the verdict the fixture wrote into the new container, as `s3auth check` does.
    assert served(request, backend, store_url) == dict(totals + collections.Counter(put=1))


@on_both
async def test_another_process_sees_a_revocation_from_a_listing(
    store_url: str, backend: str
) -> None:
    """The revocation sync lists from an offset (GCS: `start-after`; Azure, which takes
    none: the shard directories, then the one the offset lies in), and a logout
    everywhere's entry is read back for the sessions it names."""
    writer, reader = make_service(store_url), make_service(store_url)
    user = await writer.create_user("synced", "synced@example.com", PASSWORD)
    kept, ended = await writer.create_token_pair(user), await writer.create_token_pair(user)
    await reader.blacklist.sync()
    for pair in (kept, ended):
        reader.decode_token(pair.access_token)  # not revoked yet
    await writer.revoke_refresh_token(kept.refresh_token)
    await writer.revoke_all_user_tokens(user.id)
    reader.store.reset_counts()
    assert await reader.blacklist.sync() == 2
    # On Azure: the directories, and each one holding entries (the two writes may straddle
    # a ten-second shard's end).
    shards = {info.key.split("/")[1] async for info in writer.store.list(keys.REVOCATIONS)}
    lists = 1 + len(shards) if backend == "azure" else 1
    # The `user` entry's GET, and that of the cut-off of every session.
    assert dict(reader.store.requests) == {"list": lists, "get": 2}
    for pair in (kept, ended):
        with pytest.raises(TokenRevokedError):
            reader.decode_token(pair.access_token)


@on_both
async def test_a_name_left_by_an_unfinished_registration_is_taken_over(store_url: str) -> None:
    now = [time.time()]
    service = S3AuthService(make_service(store_url).settings, clock=lambda: now[0])
    # What a registration that crashed after its first write leaves: an index entry for a
    # user that was never written.
    await service.store.create(
        keys.username_index(normalise_username("held")), {"user_id": new_id()}
    )
    now[0] += service.settings.name_reservation_seconds + 1
    service.store.reset_counts()
    taken_over = await service.create_user("held", "held@example.com", PASSWORD)
    # The create that lost, the entry and its user read, the If-Match replace, the user
    # read again (its claim may have written it meanwhile); then the skeleton, the email
    # and the user.
    assert dict(service.store.requests) == {"put": 5, "get": 3}
    found = await service.authenticate_user("held", PASSWORD)
    assert found is not None and found.id == taken_over.id


@on_both
async def test_shared_rate_limits_replace_their_state(store_url: str) -> None:
    """Two limiters, as two processes would be, on one store: every check after the first
    is a GET and an If-Match replace, and together they admit no more than the limit."""
    stores = [ObjectStore.from_url(store_url) for _ in range(2)]
    limit = {"login": RateLimit(max_requests=3, window_seconds=60)}
    limiters = [RateLimiter(limits=limit, store=ObjectStoreRateLimitStore(s)) for s in stores]
    scope: dict[str, Any] = {"type": "http", "method": "POST", "path": "/login", "headers": []}
    scope["client"] = ("203.0.113.5", 1)
    answers = [(await limiters[i % 2].is_rate_limited(scope, "login"))[0] for i in range(6)]
    assert answers == [False, False, False, True, True, True]
    # The first: a create, a replace, a refusal (which writes nothing). The second: a
    # replace, a refusal, then the same refusal from memory.
    assert dict(stores[0].requests) == {"get": 3, "put": 2}
    assert dict(stores[1].requests) == {"get": 2, "put": 1}


@on_both
async def test_the_store_probes_pass(store: ObjectStore) -> None:
    probes = await probe_store(store)
    names = [REACHABLE, CREATE_IF_ABSENT, CONDITIONAL_UPDATE]
    assert [(probe.name, probe.passed) for probe in probes] == [(name, True) for name in names]
    assert probes[2].message == "an update with a stale ETag was refused"
    assert dict(store.requests) == {"list": 1, "get": 2, "put": 5, "delete": 1}
    assert [info async for info in store.list(keys.PROBES)] == []


@on_both
def test_s3auth_check_passes(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command as an operator runs it, its settings from the environment (the store's
    own variables are set while the emulator runs)."""
    monkeypatch.setenv("S3AUTH_STORE_URL", store_url)
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["check"], stdout=out, stderr=err) == 0, out.getvalue() + err.getvalue()
    for probe in ("reachable", "create-if-absent", r"conditional update \(If-Match\)"):
        assert re.search(rf"\[ok\]\s+{probe}", out.getvalue()), out.getvalue()
    assert "[FAIL]" not in out.getvalue() and "All checks passed." in out.getvalue()
