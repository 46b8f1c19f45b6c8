"""`DELETE /admin/users/{user_id}` honours `If-Match` (RFC 9110 §13.1.1), as the account's
`PATCH` does: an administrator who decided to delete an account as read is refused (412)
once another administrator has changed it, and nothing is deleted, however close to the
deletion's write the change lands."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from conftest import make_service
from declared_answers import listed_codes
from test_admin_if_match import (  # noqa: F401 (a fixture)
    Fleet,
    _patch,
    _problem_schema,
    _read,
    change_landing_meanwhile,
    fleet_fixture,
)
from test_app import PASSWORD, assert_problem

from s3auth_asgi import PreconditionFailedError, User
from s3auth_asgi.app import create_auth_app
from s3auth_asgi.storage import ObjectStore, keys
from s3auth_asgi.user_versions import at_versions, version_of

pytestmark = pytest.mark.anyio


async def _delete(fleet: Fleet, **headers: str) -> int:
    answer = await fleet.ben.client.delete(
        f"/auth/admin/users/{fleet.user}", headers={**fleet.ben_auth, **headers}
    )
    if answer.status_code >= 400:
        code = answer.json()["code"]
        assert_problem(answer, answer.status_code, code)
    return answer.status_code


async def test_a_delete_decided_on_a_version_another_admin_changed_is_refused(
    fleet: Fleet,
) -> None:
    # Ben reads the account and decides to delete it; meanwhile Ann, on the other
    # instance, gives it a scope it needs kept.
    seen = await _read(fleet.ben, fleet.ben_auth, fleet.user)
    changed = await _patch(fleet.ann, fleet.ann_auth, fleet.user, {"scopes": ["keep"]})
    assert changed.status_code == 200, changed.text
    fleet.reset()
    assert await _delete(fleet, **{"If-Match": seen.headers.get("etag", '"none"')}) == 412
    # The caller's record, the account's, the refusal's event: no closing marker, no
    # write of the record, no session or name touched.
    assert fleet.store.seen == ["get users", "get users", "create audit"]
    assert fleet.requests() == {"get": 2, "put": 1}
    assert await fleet.scopes() == ["keep"]
    # Read again, the deletion is made.
    fresh = await _read(fleet.ben, fleet.ben_auth, fleet.user)
    assert await _delete(fleet, **{"If-Match": fresh.headers["etag"]}) == 204
    assert await fleet.ann.service.get_user_by_id(fleet.user) is None


@pytest.mark.parametrize(
    ("if_match", "status"),
    [
        (None, 204),
        ("*", 204),
        ('"other", {etag}', 204),
        ("W/{etag}", 412),  # a weak tag never matches strongly
        ('"other"', 412),
        ("{bare}", 400),
    ],
)
async def test_if_match_forms_of_a_delete(fleet: Fleet, if_match: str | None, status: int) -> None:
    etag = (await _read(fleet.ann, fleet.ann_auth, fleet.user)).headers.get("etag", '"none"')
    headers = {} if if_match is None else {"If-Match": if_match.format(etag=etag, bare=etag[1:-1])}
    assert await _delete(fleet, **headers) == status
    gone = await fleet.ann.service.get_user_by_id(fleet.user) is None
    assert gone is (status == 204)


async def test_an_unknown_account_is_a_404_whatever_if_match_says(fleet: Fleet) -> None:
    for if_match in ("*", '"x"'):
        answer = await fleet.ben.client.delete(
            f"/auth/admin/users/{'0' * 32}", headers={**fleet.ben_auth, "If-Match": if_match}
        )
        assert_problem(answer, 404, "user_not_found")


async def test_a_change_landing_between_the_check_and_the_close_is_not_deleted_over() -> None:
    """The deletion's check passes on the record it read; another instance's change lands
    before the conditional write that closes it; the retry reads that change, and refuses."""
    async with change_landing_meanwhile([], ["keep"]) as edit:
        late = await edit.client.delete(f"/auth/admin/users/{edit.user_id}", headers=edit.headers)
        assert edit.raced.meanwhile is None, "the change did not land between"
        assert_problem(late, 412, "precondition_failed")
    found = await edit.other.get_user_by_id(edit.user_id)
    assert found is not None and found.scopes == ["keep"] and not found.deleting
    assert await edit.other.authenticate_user("carol", PASSWORD) is not None


def test_the_document_declares_if_match_and_the_412_of_a_delete() -> None:
    app = create_auth_app(make_service(), rate_limit=False)
    assert app.openapi is not None
    delete = app.openapi.for_mount("/auth")["paths"]["/admin/users/{user_id}"]["delete"]
    (header,) = [p for p in delete["parameters"] if p["in"] == "header"]
    assert header["name"] == "If-Match" and header["required"] is False
    assert listed_codes(_problem_schema(delete, "412")) == ["precondition_failed"]
    assert "malformed_if_match" in (listed_codes(_problem_schema(delete, "400")) or [])


async def test_a_tag_never_matches_a_deletion_cut_short_which_star_finishes(
    fleet: Fleet,
) -> None:
    """A closed record (a deletion cut short) is gone to every reader, so no GET gave a tag
    of it: a tag is refused, `*` finishes the deletion as no header does."""
    etag = (await _read(fleet.ann, fleet.ann_auth, fleet.user)).headers["etag"]
    key = keys.user(fleet.user)
    found = await fleet.store.get(key, User)
    assert found is not None
    await fleet.store.replace(key, msgspec.structs.replace(found.value, deleting=True), found.etag)
    assert await _delete(fleet, **{"If-Match": etag}) == 412
    assert await fleet.store.get(key, User) is not None
    assert await _delete(fleet, **{"If-Match": "*"}) == 204
    assert await fleet.store.get(key, User) is None


async def test_a_record_that_cannot_be_read_is_at_no_version(tmp_path: Path) -> None:
    """No `GET` shows a torn record, so no tag names it: a deletion that requires one is
    refused and leaves it for one that does not (`s3auth doctor` reports it)."""
    root = tmp_path / "store"
    service = make_service(store=ObjectStore.from_url(f"file://{root}"))
    bob = await service.create_user("bob", "bob@example.com", PASSWORD)
    tag = version_of(bob)
    (root / keys.user(bob.id)).write_bytes(b"")
    with pytest.raises(PreconditionFailedError):
        await service.delete_user(bob.id, require=at_versions({tag}))
    assert (root / keys.user(bob.id)).exists()
    assert await service.delete_user(bob.id)
    assert not (root / keys.user(bob.id)).exists()
