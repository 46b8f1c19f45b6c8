"""The service as a host's own code calls it, without the auth app in front: what the app
checks before a call, a call made directly must not take on trust."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import make_service
from test_password_change_faults import RequestLog

from s3auth_asgi import InvalidCredentialsError, S3ValidationError
from s3auth_asgi.storage import ObjectStore, keys

pytestmark = pytest.mark.anyio
PASSWORD = "SecurePass123!"


async def test_no_session_is_opened_for_a_disabled_account() -> None:
    """A login of the host's own that finds its user otherwise than by a password (a link
    it mailed, a single sign-on) and passes a disabled account's record is refused as
    `authenticate_user` refuses it: no token, nothing written, not even a request."""
    log = RequestLog(ObjectStore.from_url("memory://"))
    service = make_service(store=log)
    user = await service.create_user("alice", "alice@example.com", PASSWORD)
    await service.update_user(user.id, is_active=False)
    found = await service.get_user_by_email("alice@example.com")
    assert found is not None and not found.is_active
    log.log.clear()
    for given in (found, service.public_user(found)):
        with pytest.raises(InvalidCredentialsError):
            await service.create_token_pair(given, amr=())
    assert log.log == []
    listed = [info.key async for info in log.list(keys.user_sessions(user.id))]
    assert [key for key in listed if not keys.is_session_marker(key)] == []


async def test_a_login_that_found_no_user_gets_no_tokens() -> None:
    """`authenticate_user` answers None for a wrong password: passed on unchecked, it is
    refused as a wrong password, and anything else but a user is named for what it is."""
    service = make_service()
    user = await service.create_user("alice", "alice@example.com", PASSWORD)
    found = await service.authenticate_user("alice", "Wrong-Password1")
    with pytest.raises(InvalidCredentialsError):
        await service.create_token_pair(found)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not str"):
        await service.create_token_pair(user.id)  # type: ignore[arg-type]
    listed = [info.key async for info in service.store.list(keys.user_sessions(user.id))]
    assert listed == []


@pytest.mark.parametrize("amr", [None, 5, "pwd", b"pwd", ["pwd", "pwd"], ["password"]])
async def test_methods_that_are_not_a_list_of_registered_values_are_refused(amr: Any) -> None:
    service = make_service()
    user = await service.create_user("alice", "alice@example.com", PASSWORD)
    with pytest.raises(S3ValidationError, match="amr"):
        await service.create_token_pair(user, amr=amr)
    assert [info async for info in service.store.list(keys.user_sessions(user.id))] == []


@pytest.mark.parametrize("limit", [None, "50", 2.5, True, 0, 1001])
async def test_a_page_size_that_is_no_whole_number_in_range_is_refused(limit: Any) -> None:
    service = make_service()
    with pytest.raises(S3ValidationError, match="limit"):
        await service.list_users(limit=limit)


@pytest.mark.parametrize("jti", [None, 5, b"jti"])
async def test_a_jti_that_is_no_string_is_not_revoked(jti: Any) -> None:
    """As the guide's `is_blacklisted(payload.get("jti"))` may ask: what `revoked_error`
    answers for claims with such a `jti`."""
    service = make_service()
    assert await service.blacklist.is_blacklisted(jti) is False
    assert service.revoked_error({"jti": jti}) is None


@pytest.mark.parametrize("limit", [None, "50", 2.5, True])
async def test_a_trail_page_size_that_is_no_whole_number_is_refused(limit: Any) -> None:
    service = make_service()
    user = await service.create_user("alice", "alice@example.com", PASSWORD)
    with pytest.raises(S3ValidationError, match="limit"):
        await service.audit.page(user.id, limit=limit)
