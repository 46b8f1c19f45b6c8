"""S3AUTH_ADMIN_SETS_PASSWORDS=false covers every password an administrator would choose at
the API, the one of a new account too: `POST /admin/users` with a password is refused and
writes nothing; without one it makes an account that no password opens until its owner
chooses one through a reset link (`POST /admin/users/{id}/password-reset`)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from support import Clock, clock_fixture  # noqa: F401 (a fixture)
from test_admin_password_reset import NEW_PASSWORD, checked, reset_links, service_for
from test_app import PASSWORD, assert_problem, bearer, login

from s3auth_asgi import S3AuthService
from s3auth_asgi.mail import FileMailer

pytestmark = pytest.mark.anyio

DAVE = {"username": "dave", "email": "dave@example.com"}


async def _root(service: S3AuthService, client: httpx.AsyncClient) -> dict[str, str]:
    await service.create_user("root", "root@example.com", PASSWORD, is_admin=True)
    return bearer(await login(client, "root"))


async def test_with_the_setting_off_a_new_accounts_chosen_password_is_refused(
    tmp_path: Path, clock: Clock
) -> None:
    service = service_for(tmp_path, clock, admin_sets_passwords=False)
    async with checked(service) as client:
        root = await _root(service, client)
        service.store.reset_counts()
        refused = await client.post(
            "/auth/admin/users", json={**DAVE, "password": NEW_PASSWORD}, headers=root
        )
        assert_problem(refused, 403, "admin_password_set_disabled")
        # The revocations' sync, the caller's record, the refusal's event: no name claimed,
        # no record written, no mail.
        assert dict(service.store.requests) == {"list": 1, "get": 2, "put": 1}
        assert await service.get_user_by_username("dave") is None
        await service.mail.drain()
        assert isinstance(service.mail.mailer, FileMailer)
        assert [m for m in service.mail.mailer.messages(10) if m.to == DAVE["email"]] == []
        # The names are free: the same account, without the password, is made.
        made = await client.post("/auth/admin/users", json=DAVE, headers=root)
        assert made.status_code == 201, made.text
        document = (await client.get("/auth/openapi.json")).json()
        create = document["paths"]["/admin/users"]["post"]
        assert "admin_password_set_disabled" in str(create["responses"]["403"])


@pytest.mark.parametrize("sets", [False, True])
async def test_an_account_made_without_a_password_opens_with_its_owners_reset_link(
    tmp_path: Path, clock: Clock, sets: bool
) -> None:
    service = service_for(tmp_path, clock, admin_sets_passwords=sets)
    async with checked(service) as client:
        root = await _root(service, client)
        made = await client.post(
            "/auth/admin/users", json={**DAVE, "email_verified": True}, headers=root
        )
        assert made.status_code == 201, made.text
        dave = made.json()
        assert "password" not in dave and "hashed_password" not in dave
        # No password opens it, not even an empty one's look-alikes.
        for guess in (NEW_PASSWORD, PASSWORD, " "):
            assert await service.authenticate_user("dave", guess) is None
        wrong = await client.post(
            "/auth/login", data={"grant_type": "password", "username": "dave", "password": "x"}
        )
        assert wrong.status_code == 401
        started = await client.post(f"/auth/admin/users/{dave['id']}/password-reset", headers=root)
        assert started.status_code == 202, started.text
        (link,) = await reset_links(service, DAVE["email"])
        reset = await client.post(
            "/auth/password/reset", json={"token": link, "new_password": NEW_PASSWORD}
        )
        assert reset.status_code == 204, reset.text
        await login(client, "dave", NEW_PASSWORD)


async def test_the_service_makes_an_account_without_a_password_at_no_hash(
    tmp_path: Path, clock: Clock
) -> None:
    """No password is hashed for it: a stored hash of the current parameters that nothing
    matches, so that a login of it costs what any other's does."""
    service = service_for(tmp_path, clock)
    hashed = service.passwords.hash

    async def no_hash(password: str) -> str:
        raise AssertionError("hashed")

    service.passwords.hash = no_hash  # type: ignore[method-assign]
    user = await service.create_user("dave", "dave@example.com", None)
    service.passwords.hash = hashed  # type: ignore[method-assign]
    other = await service.create_user("erin", "erin@example.com", None)
    assert user.hashed_password.startswith("$argon2id$")
    assert user.hashed_password != other.hashed_password
    assert user.hashed_password.split("$")[3] == (await hashed(PASSWORD)).split("$")[3]
    assert await service.authenticate_user("dave", PASSWORD) is None
