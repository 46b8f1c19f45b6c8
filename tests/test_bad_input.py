"""Bad input never escapes as anything but an S3AuthError with a stable code, and writes
nothing; corrupt objects in the bucket break only their own user."""

from __future__ import annotations

from typing import Any

import obstore
import pytest
from conftest import make_service
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s3auth_asgi import S3AuthError, S3AuthService, S3ValidationError
from s3auth_asgi.storage import keys

pytestmark = pytest.mark.anyio
PASSWORD = "SecurePass123!"
hostile = st.one_of(
    st.none(),
    st.integers(),
    st.binary(max_size=50),
    st.text(max_size=80),
    st.text(max_size=10).map(lambda t: t + "\ud800"),  # a lone surrogate: invalid UTF-8
    st.just("x" * 100_000),
    st.lists(st.text(max_size=5), max_size=3),
)


@given(username=hostile, email=hostile, password=hostile, full_name=hostile)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
async def test_create_user_refuses_cleanly(
    username: Any, email: Any, password: Any, full_name: Any
) -> None:
    service = make_service()
    try:
        await service.create_user(username, email, password, full_name)
    except S3ValidationError as exc:
        assert exc.status in (409, 422) and exc.code
        assert [i async for i in service.store.list("")] == []


@given(identifier=hostile, password=hostile)
@settings(max_examples=150, deadline=None)
async def test_authenticate_never_raises(identifier: Any, password: Any) -> None:
    service = make_service()
    assert await service.authenticate_user(identifier, password) is None


@given(token=hostile)
@settings(max_examples=150, deadline=None)
async def test_token_calls_raise_only_auth_errors(token: Any) -> None:
    service = make_service()
    for call in (service.refresh_access_token, service.revoke_refresh_token):
        with pytest.raises(S3AuthError) as info:
            await call(token)
        assert info.value.status == 401
    with pytest.raises(S3AuthError):
        service.decode_token(token)


@given(user_id=hostile)
@settings(max_examples=100, deadline=None)
async def test_lookups_by_hostile_ids(user_id: Any) -> None:
    service = make_service()
    assert await service.get_user_by_id(user_id) is None
    assert await service.get_user_by_username(user_id) is None
    assert await service.get_user_by_email(user_id) is None
    assert await service.get_user_active_sessions(str(user_id)[:40]) == []


async def test_corrupt_objects_break_only_their_own_user(
    service: S3AuthService,
) -> None:
    victim = await service.create_user("victim", "victim@example.com", PASSWORD)
    other = await service.create_user("other", "other@example.com", PASSWORD)
    pair = await service.create_token_pair(victim)
    (session_key,) = [i.key async for i in service.store.list(keys.user_sessions(victim.id))]
    # Garbage in the victim's record, wrong shapes in its email index and its session.
    for key, value in (
        (keys.user(victim.id), b"\xff\xfe not json"),
        (keys.email_index("victim@example.com"), b"{}"),
        (session_key, b'{"id": 5}'),
    ):
        # Past the service's check of its writes, straight into its ObjectStore.
        await obstore.put_async(service.store_check.store._inner, key, value)
    assert await service.authenticate_user("victim", PASSWORD) is None
    assert await service.authenticate_user("victim@example.com", PASSWORD) is None
    assert await service.get_user_by_id(victim.id) is None
    with pytest.raises(S3AuthError) as info:
        await service.refresh_access_token(pair.refresh_token)
    assert info.value.status == 401
    found = await service.authenticate_user("other", PASSWORD)
    assert found is not None and found.id == other.id
    users, _ = await service.list_users()
    assert [u.id for u in users] == [other.id]
