"""A `before_register` hook's refusal as `/register` answers it: every answer one the app's
OpenAPI document declares for the operation, a taken name hidden as the registration's own
is under enumeration protection, and nothing written whatever the hook raised."""

from __future__ import annotations

import logging

import pytest
from conftest import make_settings
from test_app import PASSWORD, assert_problem, checked_client

from s3auth_asgi import S3AuthService
from s3auth_asgi.errors import (
    ConfigurationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    S3AuthError,
    S3ValidationError,
    StoreUnavailableError,
    UsernameTakenError,
    WeakPasswordError,
)
from s3auth_asgi.hooks import Hooks, Registration

pytestmark = pytest.mark.anyio


class InvitationRequiredError(S3ValidationError):
    """An application's refusal with a code of its own, which no client was told of."""

    code = "invitation_required"


class InvitationsDownError(StoreUnavailableError):
    code = "invitations_down"


REFUSALS = [
    # What /register declares is answered as it is.
    (S3ValidationError("Registration is by invitation"), True, 422, "validation_error"),
    (WeakPasswordError("The password names the company"), True, 422, "weak_password"),
    (StoreUnavailableError("The invitations cannot be read"), True, 503, "store_unavailable"),
    # A name the application keeps (`admin`) is a taken name, hidden as the service's own.
    (UsernameTakenError("The name is reserved"), True, 409, "account_exists"),
    (UsernameTakenError("The name is reserved"), False, 409, "username_taken"),
    # Refusals of statuses it does not declare keep their words in a 422.
    (PermissionDeniedError("Registration is closed"), True, 422, "validation_error"),
    (NotFoundError("No such invitation"), True, 422, "validation_error"),
    (RateLimitedError("Too many registrations from your network"), True, 422, "validation_error"),
    (ConflictError("The invitation is being used"), True, 422, "validation_error"),
    # Codes of its own are not in the document: the status stays, with the package's code.
    (InvitationRequiredError("Registration is by invitation"), True, 422, "validation_error"),
    (InvitationsDownError("The invitations cannot be read"), True, 503, "store_unavailable"),
    # Not a refusal: a check that could not decide, as any other exception.
    (S3AuthError("The check failed"), True, 503, "hook_failed"),
    (ConfigurationError("No invitation list is set"), True, 503, "hook_failed"),
]


@pytest.mark.parametrize(("raised", "protected", "status", "code"), REFUSALS)
async def test_a_hooks_refusal_is_an_answer_the_document_declares(
    raised: S3AuthError,
    protected: bool,
    status: int,
    code: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hooks = Hooks()
    seen: list[Registration] = []

    @hooks.before_register
    async def refuse(registration: Registration) -> None:
        seen.append(registration)
        raise raised

    service = S3AuthService(make_settings(enumeration_protection=protected), hooks=hooks)
    body = {"username": "alice", "email": "alice@example.com", "password": PASSWORD}
    async with checked_client(service) as client:
        with caplog.at_level(logging.ERROR, logger="s3auth_asgi.hooks"):
            answer = await client.post("/auth/register", json=body)
    problem = assert_problem(answer, status, code)
    if code in ("validation_error", "store_unavailable"):
        assert problem["detail"] == raised.detail
    assert ("before_register hook" in caplog.text) == (code == "hook_failed")
    assert len(seen) == 1
    assert await service.get_user_by_username("alice") is None


async def test_a_check_sees_the_registration_as_it_would_be_stored() -> None:
    """A check comparing names as given let in what it refuses typed another way that is
    stored as the refused name: fullwidth letters, a domain in capitals, spaces around."""
    hooks = Hooks()
    seen: list[Registration] = []

    @hooks.before_register
    def not_these(registration: Registration) -> None:
        seen.append(registration)
        if registration.username == "admin" or registration.email.endswith("@uninvited.example"):
            raise S3ValidationError("Not for registration")

    plans = {"properties": {"plan": {"enum": ["free", "paid"], "default": "free"}}}
    service = S3AuthService(make_settings(), hooks=hooks, profile_fields=plans)
    tries = [
        ("ａｄｍｉｎ", "root@example.com", 422, "validation_error"),
        ("alice", " alice@UNINVITED.Example ", 422, "validation_error"),
        ("bob", "bob@example.com", 201, None),
        ("a b", "carol@example.com", 422, "invalid_username"),  # no check sees what is refused
    ]
    async with checked_client(service) as client:
        for username, email, status, code in tries:
            body = {"username": username, "email": email, "password": PASSWORD}
            answer = await client.post("/auth/register", json=body)
            if code is not None:
                assert_problem(answer, status, code)
            else:
                assert answer.status_code == status, answer.text
    assert [(r.username, r.email, r.profile) for r in seen] == [
        ("admin", "root@example.com", {"plan": "free"}),
        ("alice", "alice@uninvited.example", {"plan": "free"}),
        ("bob", "bob@example.com", {"plan": "free"}),
    ]
    assert await service.get_user_by_username("admin") is None
    assert await service.get_user_by_username("alice") is None
