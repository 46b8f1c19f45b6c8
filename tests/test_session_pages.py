"""A user's sessions are the `sessions/{user}/{session_id}.json` objects alone: another
tool's objects beside them (a backup of a session, a copy in a folder, notes) are never
listed, never counted against the cap, never ended, and the sweep leaves them."""

from __future__ import annotations

import time

import obstore
import pytest
from conftest import make_settings

from s3auth_asgi import S3AuthService
from s3auth_asgi.storage import ObjectStore, keys

pytestmark = pytest.mark.anyio
on_three = pytest.mark.parametrize("store_url", ["memory", "file", "s3"], indirect=True)
PASSWORD = "SecurePass123!"
YEAR = 365 * 86400


async def copy_object(store: ObjectStore, source: str, target: str) -> None:
    """What an operator's tool does: a byte-for-byte copy of an object, past the package."""
    data = await (await obstore.get_async(store._inner, source)).bytes_async()
    await obstore.put_async(store._inner, target, bytes(data))


@on_three
async def test_other_objects_beside_sessions_are_no_sessions(store_url: str) -> None:
    now = [time.time()]
    service = S3AuthService(make_settings(store_url, max_sessions_per_user=2), clock=lambda: now[0])
    store = service.store_check.store
    alice = await service.create_user("alice", "alice@example.com", PASSWORD)
    older = await service.create_token_pair(alice)
    now[0] += 1
    await service.create_token_pair(alice)
    prefix = keys.user_sessions(alice.id)
    sessions = [info.key async for info in store.list(prefix)]
    assert len(sessions) == 2
    foreign = [sessions[0] + ".bak", f"{prefix}archive/{sessions[0].rsplit('/', 1)[1]}"]
    for key in foreign:
        await copy_object(store, sessions[0], key)
    foreign.append(prefix + "notes.txt")
    await obstore.put_async(store._inner, foreign[-1], b"{}")

    listed = await service.get_user_active_sessions(alice.id)
    assert sorted(session.id for session in listed) == sorted(
        keys.id_from_key(key) for key in sessions
    )
    # Within the cap of two: the older session still refreshes.
    now[0] += 1
    await service.refresh_access_token(older.refresh_token)
    assert len(await service.get_user_active_sessions(alice.id)) == 2
    assert await service.revoke_all_user_tokens(alice.id) == 2
    now[0] += YEAR
    await service.cleanup_expired_tokens()
    left = sorted([info.key async for info in store.list(prefix)])
    assert [key for key in left if not keys.is_session_marker(key)] == sorted(foreign)
