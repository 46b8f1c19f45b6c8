"""The service as a host's own code calls it, without the auth app in front: what the app
checks before a call, a call made directly must not take on trust."""

from __future__ import annotations

import pytest
from conftest import make_service
from test_password_change_faults import RequestLog

from s3auth_asgi import InvalidCredentialsError
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
