"""A new address that is the account's only once folded (`straße@` and `strasse@`, `ﬁ` and
`fi`, `ǅ` and `dž`, a letter's case before the @) keeps the account's index entry, so nobody
else can hold it, but may well be another mailbox: a user's own waits for the link mailed
to it, an administrator's or a host's applies unverified, and the address the account had
is told either way. Only the address as the account stores it is the address it has."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_service
from support import held_index_keys
from test_app import PASSWORD, assert_problem, bearer, client_for, login, mounted
from test_app_lifecycle import NEW_PASSWORD, mailed_token, service_with
from test_email_change import index_key, mail_to

from s3auth_asgi.errors import EmailChangeUnavailableError
from s3auth_asgi.storage import keys

pytestmark = pytest.mark.anyio

FOLD_EQUAL = [
    ("straße@example.com", "strasse@example.com"),
    ("ﬁx@example.com", "fix@example.com"),
    ("ǅemal@example.com", "džemal@example.com"),
    ("Hans@example.com", "hans@example.com"),
]


@pytest.mark.parametrize(("owned", "other"), FOLD_EQUAL)
async def test_a_users_own_fold_equal_address_waits_for_the_link_mailed_to_it(
    tmp_path: Path, owned: str, other: str
) -> None:
    service = service_with(tmp_path)
    async with client_for(mounted(service)) as client:
        body = {"username": "hans", "email": owned, "password": PASSWORD}
        assert (await client.post("/auth/register", json=body)).status_code == 201
        token = await mailed_token(service, "email_verification", owned)
        assert (await client.post("/auth/email/verify", json={"token": token})).status_code == 204
        tokens = await login(client, "hans")
        asked = await client.patch(
            "/auth/me", json={"email": other, "current_password": PASSWORD}, headers=bearer(tokens)
        )
        assert asked.status_code == 200, asked.text
        shown = asked.json()
        assert (shown["email"], shown["email_verified"], shown["pending_email"]) == (
            owned,
            True,
            other,
        )
        told = [kind for kind, _ in await mail_to(service, owned)]
        assert told == ["email_change_notice", "email_verification"]
        await client.post("/auth/password/forgot", json={"username": "hans"})
        reset = await mailed_token(service, "password_reset", owned)
        link = await mailed_token(service, "email_change", other)

        service.store.reset_counts()
        change = await service.confirm_email_change(link)
        # The token GET, the record GET and PUT, the token DELETE: the index entry is the
        # account's already, and stays.
        assert dict(service.store.requests) == {"get": 2, "put": 1, "delete": 1}
        assert change.completed and change.previous_email == owned
        user = change.user
        assert (user.email, user.email_verified, user.pending_email) == (other, True, "")
        assert await held_index_keys(service.store, keys.EMAIL_INDEX) == [index_key(other)]
        # Maybe another mailbox: the one the account had hears that it has moved.
        told = [kind for kind, _ in await mail_to(service, owned)]
        assert told[0] == "email_change_confirmed_notice", told
        for name in (owned, other, "hans"):
            assert await service.authenticate_user(name, PASSWORD) is not None
        # What was mailed to the address the account had works no more.
        late = await client.post(
            "/auth/password/reset", json={"token": reset, "new_password": NEW_PASSWORD}
        )
        assert_problem(late, 400, "invalid_account_token")


async def test_without_a_mailer_a_fold_equal_address_applies_unverified(tmp_path: Path) -> None:
    owned, other = FOLD_EQUAL[0]
    service = make_service()
    hans = await service.create_user("hans", owned, PASSWORD, email_verified=True)
    # The address it has, as it stores it (email-validator lowers a domain's case).
    same = await service.request_email_change(hans.id, owned.replace("example", "EXAMPLE"))
    assert (same.user.email, same.user.email_verified, same.completed) == (owned, True, False)
    moved = await service.request_email_change(hans.id, other)
    assert (moved.user.email, moved.user.email_verified, moved.completed) == (other, False, True)
    strict = make_service(require_verified_email=True)
    hans = await strict.create_user("hans", owned, PASSWORD, email_verified=True)
    with pytest.raises(EmailChangeUnavailableError):
        await strict.request_email_change(hans.id, other)
    kept = await strict.request_email_change(hans.id, owned)
    assert (kept.user.email, kept.user.email_verified) == (owned, True)


@pytest.mark.parametrize(("owned", "other"), FOLD_EQUAL)
async def test_an_administrators_fold_equal_address_applies_unverified_and_is_told(
    tmp_path: Path, owned: str, other: str
) -> None:
    service = service_with(tmp_path)
    hans = await service.create_user("hans", owned, PASSWORD, email_verified=True)
    service.store.reset_counts()
    moved = await service.update_user(hans.id, email=other)
    assert dict(service.store.requests) == {"get": 1, "put": 1}  # the index entry stays
    assert (moved.email, moved.email_verified) == (other, False)
    assert await held_index_keys(service.store, keys.EMAIL_INDEX) == [index_key(owned)]
    told = await mail_to(service, owned)
    assert [kind for kind, _ in told] == ["email_changed_notice"] and other in told[0][1]
    # Verified when said so; and the address it has changes nothing and tells nobody.
    back = await service.update_user(hans.id, email=owned, email_verified=True)
    assert (back.email, back.email_verified) == (owned, True)
    again = await service.update_user(hans.id, email=owned)
    assert (again.email, again.email_verified) == (owned, True)
    assert [kind for kind, _ in await mail_to(service, other)] == ["email_changed_notice"]
    assert len(await mail_to(service, owned)) == 1
