"""The application's hooks misbehaving: claims that together are more than a token can
carry, a registration check that answers rather than raises, hooks that are plain
functions; and which registrations the check sees."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pytest
from conftest import make_settings
from test_app import PASSWORD, assert_problem, bearer, checked_client, login, register
from test_app_lifecycle import admin_tokens

from s3auth_asgi import S3AuthService, S3ValidationError
from s3auth_asgi.events import AuthEvent
from s3auth_asgi.hooks import MAX_CLAIMS_BYTES, Hooks, Registration
from s3auth_asgi.models import User
from s3auth_asgi.verifier import MAX_TOKEN_BYTES

pytestmark = pytest.mark.anyio


async def test_claims_of_several_hooks_are_bounded_together(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each hook's claims under the bound, four of them beyond what a token can carry: the
    login answered tokens that every check then refused as too large."""
    hooks = Hooks()
    each = MAX_CLAIMS_BYTES - 48

    def adding(name: str) -> None:
        @hooks.token_claims
        async def claims(user: User) -> Mapping[str, Any]:
            return {name: "x" * each}

    for name in ("a", "b", "c", "d"):
        adding(name)
    service = S3AuthService(make_settings(), hooks=hooks)
    async with checked_client(service) as client:
        await register(client, "alice")
        with caplog.at_level(logging.ERROR, logger="s3auth_asgi.hooks"):
            tokens = await login(client, "alice")
        me = await client.get("/auth/me", headers=bearer(tokens))
        assert me.status_code == 200, me.text
        assert len(tokens["access_token"]) < MAX_TOKEN_BYTES // 2
        refreshed = await client.post(
            "/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refreshed.status_code == 200, refreshed.text
    for token in (tokens["access_token"], refreshed.json()["access_token"]):
        claims = service.decode_token(token)
        # The first hook's claims fit; each later one's would take them past the bound.
        assert claims["a"] == "x" * each
        assert not {"b", "c", "d"} & set(claims)
    assert caplog.text.count("claims left out") == 3


async def test_a_registration_check_that_answers_instead_of_raising_refuses(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A check written to return whether the registration may go (False to refuse) let
    everybody in, its answer thrown away: a registration check that says anything but
    None has not said yes."""
    hooks = Hooks()
    invited = {"bob@example.com"}
    seen: list[str] = []

    @hooks.before_register
    async def invited_only(registration: Registration) -> Any:
        seen.append(registration.username)
        return registration.email in invited

    service = S3AuthService(make_settings(), hooks=hooks)
    async with checked_client(service) as client:
        with caplog.at_level(logging.ERROR, logger="s3auth_asgi.hooks"):
            for name in ("alice", "bob"):
                body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
                answer = await client.post("/auth/register", json=body)
                assert_problem(answer, 503, "hook_failed")
    assert seen == ["alice", "bob"]
    assert caplog.text.count("returned False, not None") == 1
    assert caplog.text.count("returned True, not None") == 1
    assert [info async for info in service.store.list("")] == []


async def test_hooks_written_as_plain_functions_run_as_they_say(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A plain `def` hook was called and its answer awaited: the event hook that had done
    its work was logged as failed at every event, the check that admitted refused every
    registration (503), and the claims were left out of every token."""
    hooks = Hooks()
    registered: list[str | None] = []

    @hooks.on("after_register")
    def welcome(event: AuthEvent) -> None:
        registered.append(event.user_id)

    @hooks.before_register
    def invited_only(registration: Registration) -> None:
        if registration.email != "alice@example.com":
            raise S3ValidationError("Registration is by invitation")

    @hooks.token_claims
    def tenant(user: User) -> Mapping[str, Any]:
        return {"tenant": f"t-{user.username}"}

    service = S3AuthService(make_settings(), hooks=hooks)
    async with checked_client(service) as client:
        with caplog.at_level(logging.ERROR, logger="s3auth_asgi.hooks"):
            alice = await register(client, "alice")
            refused = await client.post(
                "/auth/register",
                json={"username": "eve", "email": "eve@example.com", "password": PASSWORD},
            )
            tokens = await login(client, "alice")
    assert_problem(refused, 422, "validation_error")
    assert registered == [alice["id"]]
    assert service.decode_token(tokens["access_token"])["tenant"] == "t-alice"
    # Nothing of the hooks is logged as failed (the app's own warnings aside).
    assert [r.getMessage() for r in caplog.records if r.name == "s3auth_asgi.hooks"] == []


async def test_an_administrators_account_is_not_the_registration_checks_to_refuse() -> None:
    hooks = Hooks()
    created: list[str | None] = []

    @hooks.before_register
    async def closed(registration: Registration) -> None:
        raise S3ValidationError("Registration is closed")

    @hooks.on("after_register")
    async def welcome(event: AuthEvent) -> None:
        created.append(event.user_id)

    service = S3AuthService(make_settings(), hooks=hooks)
    async with checked_client(service) as client:
        root = await admin_tokens(service, client)
        body = {"username": "bob", "email": "bob@example.com", "password": PASSWORD}
        made = await client.post("/auth/admin/users", json=body, headers=bearer(root))
        assert made.status_code == 201, made.text
        refused = await client.post("/auth/register", json={**body, "username": "eve"})
    assert_problem(refused, 422, "validation_error")
    assert created == [made.json()["id"]]
