"""The endpoints of the second factor (`totp_factor`): turning it on and off, and the
second step of a login whose account has it on."""

from __future__ import annotations

from starlette.responses import Response

from ..auth_methods import PASSWORD_AND_CODE
from ..code_uses import code_use
from ..errors import ConflictError, UserNotFoundError
from ..models import User
from ..name_index import owner_account
from ..totp_errors import InvalidMfaTokenError, WrongTotpCodeError
from ..totp_factor import TotpEnrolment
from ..user_records import password_of
from .caller import usable_account
from .events import note_code_use
from .operations import Call
from .responses import PRIVATE, json_response
from .routes import AuthRoutes
from .totp_schemas import (
    RecoveryCodes,
    TotpConfirmRequest,
    TotpDisableRequest,
    TotpLoginRequest,
    TotpStartRequest,
)

DEFAULT_ISSUER = "s3auth"
"""The issuer an authenticator app lists the account under, where S3AUTH_ISSUER is unset."""


class TotpRoutes:
    """The handlers, sharing the service, the limits and the helpers of `AuthRoutes`."""

    def __init__(self, routes: AuthRoutes) -> None:
        self.routes = routes
        self.service = routes.service
        self.limits = routes.limits

    async def login(self, call: Call) -> Response:
        """The second step: the challenge read without a request (against the cut-offs of
        sessions known here: the revocation snapshot, within its bound), its device shown
        again, the account's budgets read (as for a password), the record read; a wrong
        code charged as a wrong password is, a right one spent (`accept_totp_code`) on a
        record the challenge still holds on, and how it was given noted for the event."""
        data: TotpLoginRequest = call.body
        request = call.request
        challenges = self.routes.challenges
        # Its session would be younger than an ending of every session it predates.
        await self.service.blacklist.ensure_fresh()
        challenge = challenges.read(data.mfa_token, request.headers.get("user-agent"))
        device = None
        if challenge.device_id:
            device = self.routes.devices.presented(request, challenge.name)
            if device is None or (device.user_id, device.device_id) != (
                challenge.user_id,
                challenge.device_id,
            ):
                raise InvalidMfaTokenError()
        call.noted["user_id"] = challenge.user_id
        attempts = self.limits.attempts
        key = device.key if device is not None else None
        attempt = await attempts.begin(request.scope, owner_account(challenge.user_id), key)
        user: User | None = None
        try:
            found = await self.service.totp_login_record(challenge.user_id)
            if found is None or not challenges.holds(challenge, found.value):
                raise InvalidMfaTokenError()
            user = found.value
            if device is not None and not self.routes.devices.current(device, user):
                raise InvalidMfaTokenError()
            self.routes.refuse_unverified(user)

            def still_holds(stored: User) -> None:
                # The record the spend is written over: a change that landed after the read
                # above (a new password, a disabling, this token spent by another code) ends
                # the token as it would have there.
                if not challenges.holds(challenge, stored):
                    raise InvalidMfaTokenError()
                self.routes.refuse_unverified(stored)

            try:
                user = await self.service.accept_totp_code(found, data.code, require=still_holds)
                note_code_use(call.noted, code_use(data.code, user))
            except WrongTotpCodeError:
                charged = await attempts.failed(attempt)
                raise WrongTotpCodeError(headers=self.limits.headers(charged)) from None
            except (UserNotFoundError, ConflictError):
                # Deleted, or changed at every attempt: the login starts again.
                raise InvalidMfaTokenError() from None
        finally:
            attempts.end(attempt)
            self.routes.spent(call, attempt, user=user)
        return await self.routes.opened(call, user, device, attempt, PASSWORD_AND_CODE)

    async def start(self, call: Call) -> Response:
        data: TotpStartRequest = call.body
        issuer = self.routes.settings.issuer or DEFAULT_ISSUER

        async def start(user: User) -> TotpEnrolment:
            await self.service.confirm_password(user, data.current_password)
            return await self.service.start_totp(
                user.id, issuer=issuer, expect=password_of(user), require=usable_account
            )

        enrolment = await self.routes.password_attempt(call, start)
        return json_response(enrolment, headers=PRIVATE)

    async def confirm(self, call: Call) -> Response:
        data: TotpConfirmRequest = call.body
        user = await self.routes.password_attempt(
            call, lambda user: self.service.confirm_totp(user.id, data.code, require=usable_account)
        )
        return json_response(self.service.public_user(user), headers=PRIVATE)

    async def recovery_codes(self, call: Call) -> Response:
        data: TotpStartRequest = call.body

        async def make(user: User) -> list[str]:
            await self.service.confirm_password(user, data.current_password)
            return await self.service.new_recovery_codes(
                user.id, expect=password_of(user), require=usable_account
            )

        codes = await self.routes.password_attempt(call, make)
        return json_response(RecoveryCodes(codes=codes), headers=PRIVATE)

    async def disable(self, call: Call) -> Response:
        data: TotpDisableRequest = call.body

        async def disable(user: User) -> User:
            await self.service.confirm_password(user, data.current_password)
            return await self.service.disable_totp(
                user.id, data.code, expect=password_of(user), require=usable_account
            )

        user = await self.routes.password_attempt(call, disable)
        return json_response(self.service.public_user(user), headers=PRIVATE)

    async def admin_disable(self, call: Call) -> Response:
        """An administrator's, for a user who lost the device: no code."""
        user = await self.service.disable_totp(call.path_ids["user_id"], checked=False)
        return json_response(self.service.public_user(user), headers=PRIVATE)
