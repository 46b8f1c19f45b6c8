"""The endpoints of the auth app: thin translations between HTTP and S3AuthService."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from ..errors import (
    AuthenticationRequiredError,
    ConflictError,
    EmailTakenError,
    InvalidCredentialsError,
    InvalidTokenError,
    S3AuthError,
    SessionNotFoundError,
    UsernameTakenError,
    UserNotFoundError,
)
from ..models import PublicUser, TokenPair
from ..service import S3AuthService, is_id
from .body import BodyReader, parse_query
from .caller import authenticate, authenticate_admin
from .cookies import clear_refresh_cookie, read_refresh_cookie, set_refresh_cookie
from .errors import (
    AccountExistsError,
    UnsupportedGrantTypeError,
    WrongCurrentPasswordError,
)
from .limits import AuthRateLimits
from .operations import Operation
from .responses import empty_response, json_response, problem_response
from .schemas import (
    AdminUserUpdate,
    ChangePasswordRequest,
    JsonWebKeySet,
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
    RegisterRequest,
    SessionList,
    SessionsEnded,
    TokenResponse,
    UpdateProfileRequest,
    UserListQuery,
    UserPage,
)

_NAME_TAKEN = (UsernameTakenError, EmailTakenError)

PRIVATE = [("Cache-Control", "no-store")]
"""For answers about an account: no cache keeps them."""
NO_STORE = [*PRIVATE, ("Pragma", "no-cache")]
"""For token responses, as RFC 6749 §5.1 asks."""


def _account_gone() -> InvalidTokenError:
    """A valid token whose user has gone (a deletion cut short): it can do nothing, so it
    is as good as invalid, and the client's answer to that, logging in again, is right."""
    return InvalidTokenError("The account of this token no longer exists")


def _root_path(request: Request) -> str:
    return request.scope.get("root_path") or ""


def _path_id(request: Request, name: str, missing: type[S3AuthError]) -> str:
    value = request.path_params.get(name)
    # An id of the wrong shape cannot exist: a 404 before the body is read.
    if not is_id(value):
        raise missing()
    return value


def _changes(update: msgspec.Struct) -> dict[str, Any]:
    """The fields a PATCH body sets (msgspec leaves the others UNSET)."""
    return {
        name: value
        for name in update.__struct_fields__
        if (value := getattr(update, name)) is not msgspec.UNSET
    }


class AuthRoutes:
    """The handlers, bound to one service, and the table of operations."""

    def __init__(self, service: S3AuthService, limits: AuthRateLimits) -> None:
        self.service = service
        self.settings = service.settings
        self.limits = limits
        self.body = BodyReader(self.settings.max_body_bytes)
        self.browser_mode = self.settings.refresh_cookie

    # Helpers -------------------------------------------------------------------------

    def _session_origin(self, request: Request) -> dict[str, str | None]:
        return {
            "device_info": request.headers.get("user-agent"),
            "ip_address": self.limits.client_ip(request.scope),
        }

    def _tokens(
        self, request: Request, pair: TokenPair, extra: list[tuple[str, str]] | None = None
    ) -> Response:
        body = TokenResponse(
            access_token=pair.access_token,
            token_type=pair.token_type,
            expires_in=pair.expires_in,
            refresh_expires_in=pair.refresh_expires_in,
        )
        if not self.browser_mode:
            body.refresh_token = pair.refresh_token
        response = json_response(body, headers=[*NO_STORE, *(extra or [])])
        if self.browser_mode:
            set_refresh_cookie(
                response, pair.refresh_token, pair.refresh_expires_in, _root_path(request)
            )
        return response

    def _ended(self, request: Request, response: Response) -> Response:
        """A response that ends the caller's session: the browser drops its cookie too."""
        if self.browser_mode:
            clear_refresh_cookie(response, _root_path(request))
        return response

    def _hide_which_exists(self, error: ConflictError) -> S3AuthError:
        if self.settings.enumeration_protection:
            return AccountExistsError()
        return error

    # Accounts and tokens -------------------------------------------------------------

    async def register(self, request: Request) -> Response:
        data = await self.body.parse(request, RegisterRequest)
        infos = await self.limits.check(request.scope, "register", data.username)
        try:
            user = await self.service.create_user(
                data.username, data.email, data.password, data.full_name
            )
        except _NAME_TAKEN as error:
            raise self._hide_which_exists(error) from None
        return json_response(user.public(), status=201, headers=self.limits.headers(infos))

    async def login(self, request: Request) -> Response:
        data = await self.body.parse(request, LoginRequest, form=True)
        if data.grant_type not in (None, "password"):
            raise UnsupportedGrantTypeError('Use grant_type "password" here')
        infos = await self.limits.check(request.scope, "login", data.username)
        user = await self.service.authenticate_user(data.username, data.password)
        if user is None:
            raise InvalidCredentialsError()
        pair = await self.service.create_token_pair(user, **self._session_origin(request))
        return self._tokens(request, pair, self.limits.headers(infos))

    async def refresh(self, request: Request) -> Response:
        data = await self.body.parse(request, RefreshRequest, form=True, optional=True)
        if data.grant_type not in (None, "refresh_token"):
            raise UnsupportedGrantTypeError('Use grant_type "refresh_token" here')
        token = data.refresh_token or (read_refresh_cookie(request) if self.browser_mode else None)
        if not token:
            raise AuthenticationRequiredError("No refresh token was given")
        try:
            pair = await self.service.refresh_access_token(token)
        except S3AuthError as error:
            if not (self.browser_mode and error.status == 401):
                raise
            # This cookie will never work again: have the browser forget it.
            return self._ended(request, problem_response(error))
        return self._tokens(request, pair)

    async def logout(self, request: Request) -> Response:
        data = await self.body.parse(request, LogoutRequest, form=True, optional=True)
        if data.refresh_token:
            await self.service.revoke_refresh_token(data.refresh_token)
        else:
            caller = await authenticate(request, self.service)
            await self.service.revoke_session(caller.user_id, caller.session_id)
        return self._ended(request, empty_response())

    async def logout_all(self, request: Request) -> Response:
        caller = await authenticate(request, self.service)
        ended = await self.service.revoke_all_user_tokens(caller.user_id)
        return self._ended(request, json_response(SessionsEnded(sessions_ended=ended)))

    async def sessions(self, request: Request) -> Response:
        caller = await authenticate(request, self.service)
        found = await self.service.get_user_active_sessions(caller.user_id, caller.session_id)
        return json_response(SessionList(sessions=found), headers=PRIVATE)

    async def end_session(self, request: Request) -> Response:
        caller = await authenticate(request, self.service)
        session_id = _path_id(request, "session_id", SessionNotFoundError)
        if not await self.service.revoke_session(caller.user_id, session_id):
            raise SessionNotFoundError()
        return empty_response()

    async def me(self, request: Request) -> Response:
        caller = await authenticate(request, self.service)
        user = await self.service.get_user_by_id(caller.user_id)
        if user is None:
            raise _account_gone()
        return json_response(user.public(), headers=PRIVATE)

    async def update_me(self, request: Request) -> Response:
        caller = await authenticate(request, self.service)
        data = await self.body.parse(request, UpdateProfileRequest)
        try:
            user = await self.service.update_user(caller.user_id, **_changes(data))
        except _NAME_TAKEN as error:
            raise self._hide_which_exists(error) from None
        except UserNotFoundError:
            raise _account_gone() from None
        return json_response(user.public(), headers=PRIVATE)

    async def change_password(self, request: Request) -> Response:
        caller = await authenticate(request, self.service)
        data = await self.body.parse(request, ChangePasswordRequest)
        infos = await self.limits.check(request.scope, "password", caller.user_id)
        try:
            pair = await self.service.change_password(
                caller.user_id,
                data.current_password,
                data.new_password,
                **self._session_origin(request),
            )
        except InvalidCredentialsError:
            raise WrongCurrentPasswordError() from None
        except UserNotFoundError:
            raise _account_gone() from None
        return self._tokens(request, pair, self.limits.headers(infos))

    # Administration ------------------------------------------------------------------

    async def list_users(self, request: Request) -> Response:
        await authenticate_admin(request, self.service)
        query = parse_query(request, UserListQuery)
        users, cursor = await self.service.list_users(after=query.after, limit=query.limit)
        page = UserPage(users=[u.public() for u in users], next_cursor=cursor)
        return json_response(page, headers=PRIVATE)

    async def update_user(self, request: Request) -> Response:
        await authenticate_admin(request, self.service)
        user_id = _path_id(request, "user_id", UserNotFoundError)
        data = await self.body.parse(request, AdminUserUpdate)
        user = await self.service.update_user(user_id, **_changes(data))
        return json_response(user.public(), headers=PRIVATE)

    async def delete_user(self, request: Request) -> Response:
        await authenticate_admin(request, self.service)
        user_id = _path_id(request, "user_id", UserNotFoundError)
        if not await self.service.delete_user(user_id):
            raise UserNotFoundError()
        return empty_response()

    async def revoke_user(self, request: Request) -> Response:
        await authenticate_admin(request, self.service)
        user_id = _path_id(request, "user_id", UserNotFoundError)
        if await self.service.get_user_by_id(user_id) is None:
            raise UserNotFoundError()
        ended = await self.service.revoke_all_user_tokens(user_id)
        return json_response(SessionsEnded(sessions_ended=ended))

    # Keys ----------------------------------------------------------------------------

    async def jwks(self, request: Request) -> Response:
        keys = JsonWebKeySet(keys=self.service.tokens.keys.jwks()["keys"])
        return json_response(keys, headers=[("Cache-Control", "public, max-age=300")])

    # The table -----------------------------------------------------------------------

    def operations(self) -> list[Operation]:
        return [
            Operation(
                method="POST",
                path="/register",
                handler=self.register,
                operation_id="register",
                summary="Create an account",
                tag="account",
                request=RegisterRequest,
                response=PublicUser,
                status=201,
                errors=(409, 429),
                description="Duplicate usernames and emails get one 409 that does not say "
                "which exists (unless enumeration protection is off). Rate-limited per IP "
                "and per IP + username.",
            ),
            Operation(
                method="POST",
                path="/login",
                handler=self.login,
                operation_id="login",
                summary="Log in (OAuth2 password grant)",
                tag="tokens",
                request=LoginRequest,
                form=True,
                response=TokenResponse,
                token_response=True,
                errors=(401, 429),
                description="An OAuth2 password-grant form (what Swagger UI's Authorize "
                "button and OAuth2PasswordBearer send) or the same fields as JSON. Unknown "
                "user and wrong password get the same 401. Rate-limited per IP and per IP + "
                "account.",
            ),
            Operation(
                method="POST",
                path="/refresh",
                handler=self.refresh,
                operation_id="refresh",
                summary="Exchange a refresh token",
                tag="tokens",
                request=RefreshRequest,
                form=True,
                body_optional=True,
                response=TokenResponse,
                token_response=True,
                errors=(401,),
                description="Rotates: the refresh token sent is spent, a new one comes back. "
                "Presenting a spent one again ends the session (reuse detection).",
            ),
            Operation(
                method="POST",
                path="/logout",
                handler=self.logout,
                operation_id="logout",
                summary="End this session",
                tag="tokens",
                access="bearer_or_refresh_token",
                request=LogoutRequest,
                form=True,
                body_optional=True,
                description="Ends the session of the refresh token in the body, or else of "
                "the bearer token; its access tokens stop working too.",
            ),
            Operation(
                method="POST",
                path="/logout-all",
                handler=self.logout_all,
                operation_id="logout_all",
                summary="End every session",
                tag="tokens",
                access="bearer",
                response=SessionsEnded,
                description="Every session of the caller, and every access token issued "
                "before now.",
            ),
            Operation(
                method="GET",
                path="/sessions",
                handler=self.sessions,
                operation_id="list_sessions",
                summary="The caller's sessions",
                tag="sessions",
                access="bearer",
                response=SessionList,
            ),
            Operation(
                method="DELETE",
                path="/sessions/{session_id}",
                handler=self.end_session,
                operation_id="end_session",
                summary="End one of the caller's sessions",
                tag="sessions",
                access="bearer",
            ),
            Operation(
                method="GET",
                path="/me",
                handler=self.me,
                operation_id="get_me",
                summary="The caller's profile",
                tag="account",
                access="bearer",
                response=PublicUser,
            ),
            Operation(
                method="PATCH",
                path="/me",
                handler=self.update_me,
                operation_id="update_me",
                summary="Change the caller's profile",
                tag="account",
                access="bearer",
                request=UpdateProfileRequest,
                response=PublicUser,
                errors=(409,),
            ),
            Operation(
                method="POST",
                path="/password",
                handler=self.change_password,
                operation_id="change_password",
                summary="Change the caller's password",
                tag="account",
                access="bearer",
                request=ChangePasswordRequest,
                response=TokenResponse,
                token_response=True,
                errors=(403, 429),
                description="Ends every session (the caller's too) and returns a new token "
                "pair for the caller. A wrong current password is a 403.",
            ),
            Operation(
                method="GET",
                path="/admin/users",
                handler=self.list_users,
                operation_id="list_users",
                summary="List users, a page at a time",
                tag="admin",
                access="admin",
                query=UserListQuery,
                response=UserPage,
            ),
            Operation(
                method="PATCH",
                path="/admin/users/{user_id}",
                handler=self.update_user,
                operation_id="update_user",
                summary="Change an account (enable, disable, admin flag)",
                tag="admin",
                access="admin",
                request=AdminUserUpdate,
                response=PublicUser,
                errors=(409,),
            ),
            Operation(
                method="DELETE",
                path="/admin/users/{user_id}",
                handler=self.delete_user,
                operation_id="delete_user",
                summary="Delete an account and its sessions",
                tag="admin",
                access="admin",
            ),
            Operation(
                method="POST",
                path="/admin/users/{user_id}/revoke",
                handler=self.revoke_user,
                operation_id="revoke_user",
                summary="End every session of an account",
                tag="admin",
                access="admin",
                response=SessionsEnded,
            ),
            Operation(
                method="GET",
                path="/.well-known/jwks.json",
                handler=self.jwks,
                operation_id="jwks",
                summary="Public keys for verifying access tokens",
                tag="keys",
                response=JsonWebKeySet,
                uses_store=False,
                description="RFC 7517. Empty with HS256, whose key must stay secret.",
            ),
        ]
