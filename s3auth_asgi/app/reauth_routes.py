"""`POST /reauthenticate`: a new access token of the caller's session, authenticated now
(`reauthentication`), for a host's operations that ask for a recent authentication
(`step_up`). Its row of the auth app's table (`table`) and its handler."""

from __future__ import annotations

from typing import ClassVar

import msgspec
from starlette.responses import Response

from ..errors import HashingBusyError, TokenRevokedError, TokenTooLargeError
from ..hidden_fields import HidesSecrets
from ..keys.remote import KeysUnavailableError
from ..refusal_codes import Raised
from ..totp_errors import WrongTotpCodeError
from .errors import WrongCurrentPasswordError
from .events import note_code_use
from .limits import password_attempt
from .operations import Call, Operation
from .responses import json_response
from .routes import AuthRoutes
from .schemas import TokenResponse
from .totp_schemas import Code

RAISES: Raised = (
    WrongCurrentPasswordError,
    WrongTotpCodeError,
    HashingBusyError,
    TokenRevokedError,
    TokenTooLargeError,
    KeysUnavailableError,
)
"""A wrong password or code, no room to hash now, the session ended, scopes past what a
token carries, no key to sign with."""


class ReauthenticateRequest(HidesSecrets, msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    secret_fields: ClassVar[frozenset[str]] = frozenset(("current_password", "code"))

    current_password: str
    code: Code | None = None


class ReauthRoutes:
    """The handler, sharing the service, the limits and the attempts of `AuthRoutes`."""

    def __init__(self, routes: AuthRoutes) -> None:
        self.routes = routes

    async def reauthenticate(self, call: Call) -> Response:
        data: ReauthenticateRequest = call.body
        session_id = call.caller.session_id
        grant = await self.routes.password_attempt(
            call,
            lambda user: self.routes.service.reauthenticate(
                user, session_id, data.current_password, data.code
            ),
        )
        call.noted["session_id"] = session_id
        if grant.code_use is not None:
            note_code_use(call.noted, grant.code_use)
        return json_response(
            TokenResponse(
                access_token=grant.access_token,
                token_type=grant.token_type,
                expires_in=grant.expires_in,
                refresh_expires_in=grant.refresh_expires_in,
            )
        )


def reauth_operations(routes: AuthRoutes) -> list[Operation]:
    return [
        Operation(
            method="POST",
            path="/reauthenticate",
            handler=ReauthRoutes(routes).reauthenticate,
            operation_id="reauthenticate",
            event="reauthenticate",
            summary="Authenticate again: a new access token of this session",
            tag="tokens",
            access="bearer",
            reads_account=False,  # the attempt reads the record, and judges it the same
            request=ReauthenticateRequest,
            response=TokenResponse,
            token_response=True,
            handler_limits=password_attempt(403, devices=False),
            raises=RAISES,
            forbidden="A wrong current password, code `wrong_password`, or code, "
            "`wrong_totp_code`; or an account given more scopes than an access token can "
            "carry, code `token_too_large`",
            description="The current password again, and where the account's second "
            "factor is on, a code of it (or a recovery code; without one, 422 before the "
            "password is checked). Answers a new access token of the caller's session, "
            "whose `auth_time` is now and whose `amr` says how (`pwd`, and `otp`): for the "
            "operations of your app that ask for a recent authentication (401 "
            "`reauthentication_required`). The session keeps that time, so its refreshes "
            "carry it; the refresh token and the session's other access tokens are the "
            "same as before (no `refresh_token` in the answer). A wrong password or code "
            "counts against the account's and the address's login limits, as a wrong "
            "password at `/login` does. 401 `token_revoked` when the session has ended.",
        ),
    ]
