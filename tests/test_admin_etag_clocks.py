"""The `ETag` of an account names its stored record alone: two instances over one store
whose clocks differ give the same tag for the same record, even while one of them still
shows the address a user asked for and the other, past its link's expiry by its clock,
no longer does; and any change of the stored record gives a new tag."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from declared_answers import DeclaredAnswers
from starlette.applications import Starlette
from starlette.routing import Mount
from support import SharedTime, skewed_host, user_record
from test_app import PASSWORD, bearer, client_for, login

from s3auth_asgi import S3AuthService, User
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.storage import ObjectStore
from s3auth_asgi.user_versions import version_of

pytestmark = pytest.mark.anyio

HOURS = 1
"""The lifetime of the link to a new address."""


def _app(service: S3AuthService) -> Any:
    app = create_auth_app(service, rate_limit=False)
    return client_for(Starlette(routes=[Mount("/auth", app=app)]), declared=DeclaredAnswers.of(app))


async def test_two_instances_clocks_apart_give_one_tag_for_one_record(tmp_path: Path) -> None:
    store = ObjectStore.from_url("memory://")
    time = SharedTime()
    mail = {"mail_outbox": str(tmp_path), "mail_from": "auth@example.com"}
    settings = {**mail, "email_verification_hours": HOURS}
    ahead = 8  # within the clock-skew allowance, S3AUTH_REVOCATION_SKEW_SECONDS
    ann = skewed_host(store, time, 0, **settings)
    ben = skewed_host(store, time, ahead, **settings)
    await ann.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    carol = await ann.create_user("carol", "carol@example.com", PASSWORD)
    await ann.request_email_change(carol.id, "carol@example.net")
    # On to the moment the link's expiry lies between the two clocks: ben, ahead, no
    # longer shows the address waiting, ann still does.
    time.advance(HOURS * 3600 - 60)
    stored = await ann.get_user_by_id(carol.id)
    assert stored is not None
    for _ in range(100):
        if ben.public_user(stored).pending_email is None:
            break
        time.advance(ahead / 2)
    assert ann.public_user(stored).pending_email == "carol@example.net"
    assert ben.public_user(stored).pending_email is None
    async with _app(ann) as on_ann, _app(ben) as on_ben:
        ann_auth = bearer(await login(on_ann, "root"))
        ben_auth = bearer(await login(on_ben, "root"))
        path = f"/auth/admin/users/{carol.id}"
        read_on_ann = await on_ann.get(path, headers=ann_auth)
        read_on_ben = await on_ben.get(path, headers=ben_auth)
        assert read_on_ann.json()["pending_email"] == "carol@example.net"
        assert read_on_ben.json()["pending_email"] is None
        assert read_on_ann.headers["etag"] == read_on_ben.headers["etag"]
        # An edit read on one instance lands through the other: no spurious 412.
        edited = await on_ben.patch(
            path,
            json={"full_name": "Carol"},
            headers={**ben_auth, "If-Match": read_on_ann.headers["etag"]},
        )
        assert edited.status_code == 200, edited.text
        again = await on_ann.get(path, headers=ann_auth)
        assert edited.headers["etag"] == again.headers["etag"] != read_on_ann.headers["etag"]


def _other(field: str, value: Any) -> Any:
    """A value the record's `field` may hold, other than `value`."""
    if value is None:
        return {"x": 1} if field == "profile" else "x"
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, list):
        return [*value, "x"]
    return {**value, "x": 1}


def test_any_change_of_the_stored_record_is_a_new_tag() -> None:
    user = user_record("carol", scopes=["read"])
    tag = version_of(user)
    # The same record as any instance reads it back from the store.
    read_back = msgspec.json.decode(msgspec.json.encode(user), type=User)
    assert version_of(read_back) == tag
    for field in User.__struct_fields__:
        changed = msgspec.structs.replace(user, **{field: _other(field, getattr(user, field))})
        assert version_of(changed) != tag, field
