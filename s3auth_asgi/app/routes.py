"""The endpoints of the auth app: thin translations between HTTP and S3AuthService."""

from __future__ import annotations

import logging
from functools import partial
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response

from ..auth_methods import PASSWORD, Methods
from ..errors import (
    AuthenticationRequiredError,
    ConflictError,
    EmailTakenError,
    InvalidCredentialsError,
    RefreshTokenReuseError,
    RotatedMeanwhileError,
    S3AuthError,
    StoreUnavailableError,
    UsernameTakenError,
    UserNotFoundError,
)
from ..hooks import registration_of
from ..mfa_challenges import MfaChallenges
from ..models import TokenPair, User
from ..name_index import parse_name
from ..service import S3AuthService
from ..storage import keys
from ..totp_errors import MfaRequiredError
from ..user_records import password_of
from .attempts import Attempt
from .caller import account_gone, usable_account
from .cookies import read_refresh_cookie, set_refresh_cookie
from .devices import Device, DeviceCookies
from .errors import (
    AccountExistsError,
    CurrentPasswordRequiredError,
    EmailNotVerifiedError,
)
from .key_routes import KeyRoutes
from .limits import AuthRateLimits
from .login_notices import LoginNotices
from .operations import Call
from .origins import OriginCheck
from .password_attempts import PasswordAttempts
from .responses import PRIVATE, json_response, problem_response
from .schemas import (
    ChangePasswordRequest,
    LoginRequest,
    RefreshRequest,
    RegisterRequest,
    TokenResponse,
    UpdateProfileRequest,
    fields_set,
)
from .session_routes import SessionRoutes, root_path

logger = logging.getLogger("s3auth_asgi.app")

_NAME_TAKEN = (UsernameTakenError, EmailTakenError)
T = TypeVar("T")


class AuthRoutes(SessionRoutes, KeyRoutes, PasswordAttempts):
    """The handlers, bound to one service, and the table of operations (those of sessions:
    `session_routes`, of keys: `key_routes`; password attempts: `password_attempts`)."""

    def __init__(self, service: S3AuthService, limits: AuthRateLimits) -> None:
        self.service = service
        self.settings = service.settings
        self.limits = limits
        self.browser_mode = self.settings.refresh_cookie
        # A device cookie selects the device's failure budget, where one exists, and the
        # hash places kept for known devices, which always exist.
        self.devices = DeviceCookies(self.settings.secret_keys, clock=service.clock)
        self.origins = OriginCheck(self.settings)
        self.notices = LoginNotices(service, limits)
        self.challenges = MfaChallenges(self.settings.secret_keys, service.clock, service.blacklist)

    # Helpers -------------------------------------------------------------------------

    def refuse_unverified(self, user: User) -> None:
        """A login's refusal of an unverified address, where the settings require one: at
        the first step, and at the second on the record it writes over (an administrator's
        new address, or the mark cleared, may land between the two)."""
        if self.settings.require_verified_email and not user.email_verified:
            raise EmailNotVerifiedError()

    def _session_origin(self, request: Request) -> dict[str, str | None]:
        return {
            "device_info": request.headers.get("user-agent"),
            "ip_address": self.limits.client_ip(request.scope),
        }

    def _tokens(self, request: Request, pair: TokenPair) -> Response:
        body = TokenResponse(
            access_token=pair.access_token,
            token_type=pair.token_type,
            expires_in=pair.expires_in,
            refresh_expires_in=pair.refresh_expires_in,
        )
        if not self.browser_mode:
            body.refresh_token = pair.refresh_token
        response = json_response(body)
        if self.browser_mode:
            set_refresh_cookie(
                response, pair.refresh_token, pair.refresh_expires_in, root_path(request)
            )
        return response

    def _note_session(self, call: Call, pair: TokenPair) -> None:
        """Name the account and the session a pair belongs to in the request's event: the
        refresh token names both, read without a second verification of what was just
        signed."""
        names = self.service.tokens.parse_refresh_token(pair.refresh_token)
        call.noted.update(user_id=names.user_id, session_id=names.session_id)

    def _hide_which_exists(self, error: ConflictError) -> S3AuthError:
        if self.settings.enumeration_protection:
            return AccountExistsError()
        return error

    async def mail_verification_link(self, user: User) -> None:
        """Mail a link to the address a change has just given `user`. The change is
        committed, so a store failure here costs the link, not the answer: an error would
        tell the client that a change which landed had not (its retry then refused as a
        conflict). The user can ask for another link (`/email/verify/resend`)."""
        try:
            await self.service.send_email_verification(user)
        except StoreUnavailableError as error:
            logger.warning("no verification link for user %s: %s", user.id, error.code)

    # Accounts and tokens -------------------------------------------------------------

    async def register(self, call: Call) -> Response:
        data: RegisterRequest = call.body
        call.shown.extend(await self.limits.check_registration(call.request.scope, data.username))
        client = self.limits.client_ip(call.request.scope)
        # Shown to the hooks as it would be stored, and so stored.
        registration = registration_of(
            data.username,
            data.email,
            data.full_name,
            data.profile,
            profile_fields=self.service.profile_fields,
            client=client,
        )
        try:
            # A hook's taken name (one the application keeps) is hidden as the service's.
            await self.service.hooks.check_registration(registration)
            user = await self.service.create_user(
                registration.username,
                registration.email,
                data.password,
                registration.full_name,
                profile=registration.profile,
            )
        except _NAME_TAKEN as error:
            raise self._hide_which_exists(error) from None
        call.noted["user_id"] = user.id
        await self.mail_verification_link(user)
        return json_response(self.service.public_user(user), status=201, headers=PRIVATE)

    async def login(self, call: Call) -> Response:
        data: LoginRequest = call.body
        request = call.request
        attempts = self.limits.attempts
        name = parse_name(data.username)
        device = self.devices.presented(request, name.account_key)
        # A login takes its place in the hash queue before it reads anything: one that
        # could not hash now is refused at once, however many arrive together.
        owner = device.user_id if device else None
        with self.service.passwords.place(device_owner=owner):
            # Whose the account is decides which budget a failure is charged to: every budget
            # it would be charged to is read before the password is hashed.
            login = await self.service.resolve_login(name)
            if device is not None and device.user_id != login.user_id:
                # The name has changed hands since the cookie was set: no device of its owner.
                device = None
            account = login.owner_key
            attempt = await attempts.begin(
                request.scope, account, device.key if device is not None else None
            )
            try:
                check = await self.service.check_login(
                    login,
                    data.password,
                    device_owner=device.user_id if device else None,
                    device_current=partial(self.devices.current, device) if device else None,
                )
                if check.stale_device:
                    # Issued before the account's sessions were last ended (a new password):
                    # counted as an attempt without it, the password not checked yet.
                    device = None
                    attempts.end(attempt)
                    attempt = await attempts.begin(request.scope, account, None)
                    check = await self.service.check_login(login, data.password)
                # For the audit trail, not the log: the account of the name typed, or for a name
                # that is nobody's a decoy trail, so that a failure costs the same either way.
                call.noted["account_id"] = login.user_id or keys.id_from_key(login.decoy_user_key)
                call.noted["decoy"] = "" if login.user_id else "yes"
                if check.user is None:
                    charged = await attempts.failed(attempt)
                    raise InvalidCredentialsError(headers=self.limits.headers(charged))
            finally:
                attempts.end(attempt)
                self.spent(call, attempt, login=login)
        self.refuse_unverified(check.user)
        if check.user.totp_secret:
            # The password was right: the tokens wait for a code (`POST /login/totp`).
            raise MfaRequiredError(
                mfa_token=self.challenges.issue(
                    check.user,
                    device_id=device.device_id if device is not None else "",
                    name=name.account_key,
                    user_agent=request.headers.get("user-agent"),
                )
            )
        return await self.opened(call, check.user, device, attempt)

    async def opened(
        self,
        call: Call,
        user: User,
        device: Device | None,
        attempt: Attempt,
        amr: Methods = PASSWORD,
    ) -> Response:
        """The answer to a login found right (by a password, or its second step's code,
        `amr`): a session opened from the record `user` as read, its pair, the device cookie."""
        request = call.request
        attempts = self.limits.attempts
        try:
            origin = self._session_origin(request)
            pair = await self.service.create_token_pair(user, **origin, amr=amr)
        except InvalidCredentialsError:
            # The account was disabled, deleted or given another password as the login ran:
            # answered, and charged, as the login after that change is (`session_opening`).
            charged = await attempts.failed(attempt)
            raise InvalidCredentialsError(headers=self.limits.headers(charged)) from None
        self._note_session(call, pair)
        call.shown.extend(attempts.shown(attempt.readings))
        if device is None:
            self.notices.new_device(request.scope, user)
        response = self._tokens(request, pair)
        if self.origins.refusal(request.scope) is None:  # another site's page: see `origins`
            self.devices.issue(response, user, device, root_path(request))
        return response

    async def refresh(self, call: Call) -> Response:
        data: RefreshRequest = call.body
        request = call.request
        token = data.refresh_token or (read_refresh_cookie(request) if self.browser_mode else None)
        if not token:
            raise AuthenticationRequiredError("No refresh token was given")
        try:
            pair = await self.service.refresh_access_token(token)
        except S3AuthError as error:
            if isinstance(error, RefreshTokenReuseError):  # its MAC matched its session
                names = self.service.tokens.parse_refresh_token(token)
                call.noted.update(user_id=names.user_id, session_id=names.session_id)
            # The cookie refused will never work again: have the browser forget it. Not
            # when it lost to the client's other refreshes, whose answers have replaced it
            # with the session's newest token; nor when the token came in the body.
            lost = isinstance(error, RotatedMeanwhileError)
            if not self.browser_mode or error.status != 401 or lost or data.refresh_token:
                raise
            call.noted["reason"] = error.code  # answered, not raised: the event's reason
            return self._ended(request, problem_response(error, token_endpoint=True))
        self._note_session(call, pair)
        return self._tokens(request, pair)

    async def me(self, call: Call) -> Response:
        return json_response(self.service.public_user(call.account), headers=PRIVATE)

    async def update_me(self, call: Call) -> Response:
        data: UpdateProfileRequest = call.body
        changes = fields_set(data)
        current_password = changes.pop("current_password", None)
        user_id = call.caller.user_id
        if "email" in changes:
            call.noted["event"] = "email_change_request"
            # Whoever holds a stolen access token must not be able to move the account's
            # mail, and with it every reset, to an address of theirs. The password is
            # checked before the new address is tried, so a wrong one learns nothing of it.
            if current_password is None:
                raise CurrentPasswordRequiredError()
            checked = await self.password_attempt(
                call, lambda user: self.service.confirm_password(user, current_password)
            )
            changes["expect"] = password_of(checked)
        try:
            if "email" in changes:  # it waits for the link mailed to it (`email_changes`)
                change = await self.service.request_email_change(
                    user_id,
                    **changes,
                    require=usable_account,
                    admit=partial(self.limits.check_mails, call.request.scope, "email-change"),
                )
                user = change.user
                call.noted["previous_email"] = change.previous_email
                if change.completed:  # no mailer: applied at once
                    call.noted["event"] = "email_change"
            else:
                user = await self.service.update_user(user_id, **changes, require=usable_account)
        except _NAME_TAKEN as error:
            raise self._hide_which_exists(error) from None
        except UserNotFoundError:
            raise account_gone() from None
        return json_response(self.service.public_user(user), headers=PRIVATE)

    async def change_password(self, call: Call) -> Response:
        data: ChangePasswordRequest = call.body
        origin = self._session_origin(call.request)
        pair = await self.password_attempt(
            call,
            lambda user: self.service.change_password(
                user.id,
                data.current_password,
                data.new_password,
                require=usable_account,
                admit=partial(self.limits.check_mails, call.request.scope, "password-changed"),
                device_info=origin["device_info"],
                ip_address=origin["ip_address"],
            ),
        )
        return self._tokens(call.request, pair)
