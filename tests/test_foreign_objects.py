"""Objects in the package's prefixes whose keys none of its own could be (other software's,
with a backslash in the name, or a staging file's `#` and digits) are left out of every
listing, so that the user list, session lists, logging out everywhere and the sweeps of
`s3auth cleanup` go on as if they were not there; reading or writing such a key is still
refused."""

from __future__ import annotations

import io
import logging
import time
from urllib.parse import urlsplit

import anyio
import boto3
import obstore
import pytest
from conftest import SECRET, make_settings
from support import level_with_the_store

from s3auth_asgi import S3AuthService, cli
from s3auth_asgi.cli import cleanup
from s3auth_asgi.events import new_event
from s3auth_asgi.storage import ObjectStore, keys

pytestmark = pytest.mark.anyio
on_three = pytest.mark.parametrize("store_url", ["memory", "file", "s3"], indirect=True)
PASSWORD = "SecurePass123!"
DAY = 86400


async def put_foreign(store: ObjectStore, backend: str, directory: str) -> list[str]:
    """Objects other software wrote under `directory`, straight through obstore (past the
    key rules): a name with a backslash, and where obstore writes one (not on `file://`), a
    staging file's name. Their keys, sorted."""
    names = ["a\\b.json"] if backend == "file" else ["a\\b.json", "x#1"]
    written = sorted(directory + name for name in names)
    for key in written:
        await obstore.put_async(store._inner, key, b"{}")
    return written


def foreign_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "s3auth_asgi.storage" and "left out" in record.getMessage()
    ]


@on_three
async def test_a_listing_leaves_out_keys_no_request_could_name(
    store_url: str, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "s3auth_asgi.storage")
    store = ObjectStore.from_url(store_url)
    await store.create("users/ours.json", {})
    foreign = await put_foreign(store, backend, keys.USERS)
    store.reset_counts()
    for _ in range(2):
        assert [info.key async for info in store.list(keys.USERS)] == ["users/ours.json"]
        page, more = await store.list_page(keys.USERS, None, 1)
        assert [info.key for info in page] == ["users/ours.json"] and not more
    assert dict(store.requests) == {"list": 4}
    # Each key is logged once, however often it is listed.
    warned = foreign_warnings(caplog)
    assert len(warned) == len(foreign)
    for key, message in zip(foreign, sorted(warned), strict=True):
        assert repr(key) in message and store_url not in message
    for key in foreign:
        with pytest.raises(ValueError):
            await store.get(key, dict)
        with pytest.raises(ValueError):
            await store.create(key, {})
        with pytest.raises(ValueError):
            await store.delete(key)
    assert dict(store.requests) == {"list": 4}


@on_three
async def test_accounts_sessions_and_sweeps_go_on_past_foreign_objects(
    store_url: str, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [time.time()]
    service = S3AuthService(make_settings(store_url), clock=lambda: now[0])
    store = service.store_check.store  # the ObjectStore, under the check of its writes
    alice = await service.create_user("alice", "alice@example.com", PASSWORD)
    await service.create_token_pair(alice)
    foreign = [
        key
        for directory in (
            keys.USERS,
            keys.user_sessions(alice.id),
            keys.user_audit(alice.id),
            keys.account_token("password-reset", ""),
            f"{keys.RATELIMIT}login.account/",
        )
        for key in await put_foreign(store, backend, directory)
    ]
    store.reset_counts()
    users, cursor = await service.list_users()
    assert [user.id for user in users] == [alice.id] and cursor is None
    assert dict(store.requests) == {"list": 1, "get": 1}
    assert len(await service.get_user_active_sessions(alice.id)) == 1
    assert await service.audit.page(alice.id) == ([], None)
    store.reset_counts()
    assert await service.revoke_all_user_tokens(alice.id) == 1
    # The record's GET and PUT and the new generation's marker, then the LIST, the
    # revocation naming the one session, the batch DELETE of it.
    assert dict(store.requests) == {"get": 1, "list": 1, "put": 3, "delete": 1}
    await service.create_token_pair(alice)

    # `s3auth cleanup` runs its own event loop: in a thread of its own, on this store, a
    # year on, when all of ours has expired.
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    monkeypatch.setattr(cleanup, "CLOCK", lambda: now[0] + 365 * DAY)
    monkeypatch.setattr(cleanup, "clock_lead", level_with_the_store)
    out, err = io.StringIO(), io.StringIO()
    code = await anyio.to_thread.run_sync(
        lambda: cli.main(["cleanup"], stdout=out, stderr=err, open_store=lambda _: store)
    )
    assert code == 0, err.getvalue()
    # The session, the revocation and the marker of the generation the logout wrote.
    assert out.getvalue().startswith("deleted 3 expired object(s)")
    assert [info.key async for info in store.list(keys.SESSIONS)] == []
    assert await service.delete_user(alice.id) is True
    # Other software's objects are left as they were.
    for key in foreign:
        assert bytes(await (await obstore.get_async(store._inner, key)).bytes_async()) == b"{}"


@pytest.mark.parametrize("store_url", ["s3"], indirect=True)
async def test_a_folder_marker_is_listed_neither_as_its_prefix_nor_twice(
    store_url: str, moto_endpoint: str
) -> None:
    """A tool that shows a bucket as folders (a console's "Create folder", a FUSE mount's
    mkdir) leaves an empty object named after the folder, `users/`; obstore reads that name
    without its final "/", as `users`: a key outside the prefix listed, and one that a
    listing after it lists again, so a page of one user or one event began with it for
    ever, a LIST after another."""
    service = S3AuthService(make_settings(store_url))
    store = service.store_check.store
    alice = await service.create_user("alice", "alice@example.com", PASSWORD)
    await service.audit.record(new_event("register", "success", user_id=alice.id, clock=time.time))
    parts = urlsplit(store_url)
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    for folder in (keys.USERS, f"{keys.USERS}old/", keys.user_audit(alice.id)):
        s3.put_object(Bucket=parts.hostname, Key=f"{parts.path.strip('/')}/{folder}", Body=b"")
    store.reset_counts()
    listed = [info.key async for info in store.list(keys.USERS)]
    assert listed == [keys.user(alice.id), f"{keys.USERS}old"]
    assert [info.key async for info in store.list(keys.USERS, listed[-1])] == []
    assert dict(store.requests) == {"list": 2}
    store.reset_counts()
    with anyio.fail_after(2):
        users, cursor = await service.list_users(limit=1)
        assert [user.id for user in users] == [alice.id] and cursor == alice.id
        assert await service.list_users(after=cursor, limit=1) == ([], None)
        events, after = await service.audit.page(alice.id, limit=1)
    assert [entry.event.name for entry in events] == ["register"] and after is None
    assert dict(store.requests) == {"list": 3, "get": 2}


@pytest.mark.parametrize("store_url", ["memory", "file"], indirect=True)
async def test_a_key_of_other_digits_stops_no_sweep(store_url: str) -> None:
    # `str.isdigit` takes superscripts and other scripts' digits, which `int` refuses or
    # reads as a number: neither is a time this package wrote.
    now = [time.time()]
    service = S3AuthService(make_settings(store_url), clock=lambda: now[0])
    alice = await service.create_user("alice", "alice@example.com", PASSWORD)
    await service.audit.record(new_event("register", "success", user_id=alice.id, clock=time.time))
    odd = [keys.user_audit(alice.id) + "²³.x", keys.user_audit(alice.id) + "١٢.x"]
    for key in odd:
        await service.store.create(key, {})
    now[0] += 365 * DAY
    assert await service.audit.cleanup() == 1  # ours, past the retention
    assert [info.key async for info in service.store.list(keys.AUDIT)] == sorted(odd)
    for age in ("²³", "١٢"):
        assert keys.audit_written_ms(f"audit/x/{age}.x") is None
        assert keys.parse_revocation(f"revocations/1/{age}.jti.{age}.abc") is None
