"""The endpoints of the account lifecycle (password reset, email verification, the audit
trail) and the administrators' account tools, and what runs after every request that
emits an auth event: its record in the audit trail and the application's hooks."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any, Protocol

import msgspec
from starlette.responses import Response

from ..account_tokens import Purpose, purpose_of
from ..audit import owner_view
from ..errors import S3AuthError, UserNotFoundError
from ..events import AuthEvent, log_fields
from ..models import User
from ..privileges import ADMIN_SCOPE, admin_from_input
from ..recovery import Admit
from ..storage import StoreConflict
from ..user_versions import at_versions
from .errors import AdminPasswordSetDisabledError, OwnAccountError
from .lifecycle_schemas import (
    Accepted,
    AdminPasswordReset,
    AdminSessionList,
    AdminSetPassword,
    AdminUserCreate,
    EventPage,
    EventsQuery,
    EverySessionEnded,
    ForgotPasswordRequest,
    OwnerEventPage,
    ResendVerificationRequest,
    ResetPasswordRequest,
    ResetStarted,
    VerifyEmailRequest,
)
from .limits import MAIL_REQUEST
from .operations import Call
from .preconditions import etag_of, if_match
from .responses import PRIVATE, empty_response, json_response
from .routes import AuthRoutes
from .schemas import AdminUserUpdate, SessionsEnded, UserListQuery, UserPage, fields_set

logger = logging.getLogger("s3auth_asgi.app")

RESET_ACCEPTED = "If the name is an account's, a message with a reset link is on its way."
VERIFY_ACCEPTED = (
    "If the name is an account's whose address is not verified yet, a message with a "
    "verification link is on its way."
)
RESET_STARTED = "A message with a reset link is on its way to the account's address."
NO_CHOSEN_PASSWORD = (
    "Make the account without a password, then mail its owner a link to choose one: "
    "`POST /admin/users/{user_id}/password-reset`."
)
OWN_ACCOUNT = (
    "This would end your own administration: another administrator, or the command line "
    "(`s3auth user demote`, `disable`, `delete`), can do it."
)


class RecoveryRequest(Protocol):
    """`S3AuthService.request_password_reset` or `request_email_verification`."""

    async def __call__(self, name: object, *, admit: Admit | None = None) -> None: ...


class LifecycleRoutes:
    """The handlers, sharing the service, the limits and the helpers of `AuthRoutes`."""

    def __init__(self, routes: AuthRoutes) -> None:
        self.routes = routes
        self.service = routes.service
        self.limits = routes.limits

    async def after(self, event: AuthEvent, kept: list[AuthEvent]) -> None:
        """Keep in the trails what `kept` holds (`event`, or for a name that is nobody's the
        same in a trail of nobody's: `events.decoy_of`; and a refusal a spent budget starts:
        `events.spent_of`), and run the hooks with `event`; neither can fail the request,
        whose answer has been sent already."""
        for each in kept:
            try:
                await self.service.audit.record(each)
            except (S3AuthError, StoreConflict) as error:
                # The event in full, at a level every host's logging takes: a success is
                # logged at INFO only, and the trail is where the action was to be told. One
                # for a decoy trail names nobody, as the request's event does.
                shown = msgspec.structs.replace(each, user_id=event.user_id)
                reason = error.code if isinstance(error, S3AuthError) else "conflict"
                logger.warning(
                    "audit event %s %s of user %s by %s not kept: %s",
                    shown.name,
                    shown.outcome,
                    shown.user_id,
                    shown.actor_id,
                    reason,
                    extra=log_fields(shown),
                )
        await self.service.hooks.dispatch(event)

    # Mailed tokens -------------------------------------------------------------------

    async def _accepted(
        self, call: Call, name: str, request: RecoveryRequest, purpose: Purpose, detail: str
    ) -> Response:
        """A mail asked for by name: counted, sent (or not), and the same 202 either way.
        Only the caller's own address is refused (429) and shown in the headers; the
        account's budgets decide quietly whether the mail goes (`AuthRateLimits.mail_admitted`)."""
        scope = call.request.scope
        by_address = tuple((name, None, None) for name in MAIL_REQUEST.counted)
        call.shown.extend(await self.limits.check_named(scope, by_address))

        async def admit(account: str) -> bool:
            return await self.limits.mail_admitted(scope, purpose, account)

        await request(name, admit=admit)
        body = Accepted(detail=detail)
        return json_response(body, status=202)

    async def forgot_password(self, call: Call) -> Response:
        data: ForgotPasswordRequest = call.body
        return await self._accepted(
            call,
            data.username,
            self.service.request_password_reset,
            "password-reset",
            RESET_ACCEPTED,
        )

    async def reset_password(self, call: Call) -> Response:
        data: ResetPasswordRequest = call.body
        user = await self.service.reset_password(data.token, data.new_password)
        call.noted["user_id"] = user.id
        return empty_response(PRIVATE)

    async def verify_email(self, call: Call) -> Response:
        data: VerifyEmailRequest = call.body
        if purpose_of(data.token) == "email-change":  # the link mailed to a new address
            call.noted["event"] = "email_change"
            change = await self.service.confirm_email_change(data.token)
            call.noted.update(user_id=change.user.id, previous_email=change.previous_email)
        else:
            user = await self.service.verify_email(data.token)
            call.noted["user_id"] = user.id
        return empty_response(PRIVATE)

    async def resend_verification(self, call: Call) -> Response:
        data: ResendVerificationRequest = call.body
        return await self._accepted(
            call,
            data.username,
            self.service.request_email_verification,
            "email-verification",
            VERIFY_ACCEPTED,
        )

    # The audit trail -----------------------------------------------------------------

    async def _event_page(self, user_id: str, query: EventsQuery) -> EventPage:
        events, cursor = await self.service.audit.page(
            user_id, after=query.after, limit=query.limit
        )
        return EventPage(events=events, next_cursor=cursor)

    async def my_events(self, call: Call) -> Response:
        page = await self._event_page(call.caller.user_id, call.query)
        shown = OwnerEventPage(
            events=[owner_view(entry) for entry in page.events], next_cursor=page.next_cursor
        )
        return json_response(shown, headers=PRIVATE)

    async def user_events(self, call: Call) -> Response:
        user_id = call.path_ids["user_id"]
        query: EventsQuery = call.query
        page = await self._event_page(user_id, query)
        # A deleted user's trail is still shown; an id with neither trail nor user is a 404.
        # Not after a cursor: it comes from a page of a trail that was there, whose last
        # events the retention sweep may have removed since; the page after it is then
        # the trail's end, an empty one, whether the user is there or not.
        first = query.after is None
        if first and not page.events and await self.service.get_user_by_id(user_id) is None:
            raise UserNotFoundError()
        return json_response(page, headers=PRIVATE)

    # Administration ------------------------------------------------------------------

    async def list_users(self, call: Call) -> Response:
        query: UserListQuery = call.query
        users, cursor = await self.service.list_users(
            after=query.after, limit=query.limit, search=query.search
        )
        page = UserPage(users=[self.service.public_user(u) for u in users], next_cursor=cursor)
        return json_response(page, headers=PRIVATE)

    async def _keep_own_administration(self, call: Call, changes: dict[str, Any]) -> None:
        """Refuse a change of the caller's own account that ends their administration. Not
        a check that some administrator remains, which would need a listing and race: a
        guard against locking oneself out by accident, which leaves the change to another
        administrator or the CLI."""
        if call.path_ids["user_id"] != call.caller.user_id:
            return
        asked = admin_from_input(changes.get("is_admin"), changes.get("scopes"))
        ends = asked is False or changes.get("is_active") is False
        if not ends and asked is None and "scopes" in changes:
            # A record from before the one rule may make an administrator by its scopes
            # alone, which new scopes without `admin` would replace. The dispatcher read it.
            user = call.caller.account
            ends = user is not None and not user.is_admin and ADMIN_SCOPE in user.scopes
        if ends:
            raise OwnAccountError(OWN_ACCOUNT)

    async def update_user(self, call: Call) -> Response:
        data: AdminUserUpdate = call.body
        changes = fields_set(data)
        versions = if_match(call.request)
        await self._keep_own_administration(call, changes)
        if versions is not None:
            changes["require"] = at_versions(versions)
        user = await self.service.update_user(call.path_ids["user_id"], **changes)
        if data.email is not msgspec.UNSET:
            await self.routes.mail_verification_link(user)
        response = self._shown(user)
        # New privileges of one's own account end its sessions, the caller's among them:
        # told by the generation, which has moved since the caller's record was read.
        own = call.caller.account
        if (
            own is not None
            and own.id == user.id
            and own.session_generation != user.session_generation
        ):
            return self.routes.ended_if_own(call, user.id, response)
        return response

    async def delete_user(self, call: Call) -> Response:
        versions = if_match(call.request)
        if call.path_ids["user_id"] == call.caller.user_id:
            raise OwnAccountError(OWN_ACCOUNT)
        require = None if versions is None else at_versions(versions)
        if not await self.service.delete_user(call.path_ids["user_id"], require=require):
            raise UserNotFoundError()
        return empty_response()

    async def revoke_user(self, call: Call) -> Response:
        user_id = call.path_ids["user_id"]
        if await self.service.get_user_by_id(user_id) is None:
            raise UserNotFoundError()
        ended = await self.service.revoke_all_user_tokens(user_id)
        response = json_response(SessionsEnded(sessions_ended=ended), headers=PRIVATE)
        return self.routes.ended_if_own(call, user_id, response)

    async def end_all_sessions(self, call: Call) -> Response:
        not_before = await self.service.end_all_sessions()
        response = json_response(EverySessionEnded(not_before=not_before), headers=PRIVATE)
        # The caller's session is among them.
        return self.routes.ended_if_own(call, call.caller.user_id, response)

    async def _user(self, call: Call) -> User:
        user = await self.service.get_user_by_id(call.path_ids["user_id"])
        if user is None:
            raise UserNotFoundError()
        return user

    async def create_user(self, call: Call) -> Response:
        data: AdminUserCreate = call.body
        chosen = None if data.password is msgspec.UNSET else data.password
        if chosen is not None and not self.routes.settings.admin_sets_passwords:
            raise AdminPasswordSetDisabledError(NO_CHOSEN_PASSWORD)
        user = await self.service.create_user(
            data.username,
            data.email,
            chosen,
            data.full_name,
            is_admin=None if data.is_admin is msgspec.UNSET else data.is_admin,
            scopes=data.scopes,
            email_verified=data.email_verified,
            profile=data.profile,
        )
        call.noted["user_id"] = user.id
        await self.routes.mail_verification_link(user)
        return json_response(self.service.public_user(user), status=201, headers=PRIVATE)

    async def get_user(self, call: Call) -> Response:
        return self._shown(await self._user(call))

    def _shown(self, user: User) -> Response:
        """The account, with the ETag a change conditional on this record names."""
        shown = self.service.public_user(user)
        return json_response(shown, headers=[*PRIVATE, ("ETag", etag_of(user))])

    async def set_password(self, call: Call) -> Response:
        if not self.routes.settings.admin_sets_passwords:
            raise AdminPasswordSetDisabledError()
        data: AdminSetPassword = call.body
        user_id = call.path_ids["user_id"]
        await self.service.set_password(user_id, data.new_password)
        return self.routes.ended_if_own(call, user_id, empty_response())

    async def start_password_reset(self, call: Call) -> Response:
        data: AdminPasswordReset = call.body
        user_id = call.path_ids["user_id"]
        # The owner's inbox budgets of reset mails, which `/password/forgot` spends too.
        admit = partial(self.limits.check_mails, call.request.scope, "password-reset")
        ended = await self.service.send_password_reset(
            user_id, end_sessions=data.end_sessions, admit=admit
        )
        body = ResetStarted(detail=RESET_STARTED, sessions_ended=ended)
        response = json_response(body, status=202, headers=PRIVATE)
        return self.routes.ended_if_own(call, user_id, response) if data.end_sessions else response

    async def user_sessions(self, call: Call) -> Response:
        user = await self._user(call)
        found = await self.service.get_user_active_sessions(user.id)
        return json_response(AdminSessionList(sessions=found), headers=PRIVATE)

    async def end_user_session(self, call: Call) -> Response:
        ids = call.path_ids
        call.noted["session_id"] = ids["session_id"]
        user = await self._user(call)
        return await self.routes.end_one_session(call, user.id, ids["session_id"])
