"""The endpoints that end sessions or list them: logout, logout everywhere, the caller's
sessions and the end of one of them.

In browser mode the browser holds the refresh token of its session in a cookie only the
refresh endpoint receives. An answer that ends that session tells the browser to drop the
cookie (`ended`): the token in it will never work again, and a cookie kept would only make
the next page load try it and fail. An answer that ends another session leaves it. Which
session an ending by id is the caller's own is decided in one place (`end_one_session`),
whichever path named it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..errors import SessionNotFoundError, UserNotFoundError
from ..service import S3AuthService
from .caller import account_gone
from .cookies import clear_refresh_cookie, mount_as_sent
from .operations import Call
from .responses import PRIVATE, empty_response, json_response
from .schemas import LogoutRequest, SessionList, SessionsEnded


def root_path(request: Request) -> str:
    """Where the app is mounted, as the browser sent it: the Path of its cookies begins
    with it."""
    return mount_as_sent(request.scope)


class SessionRoutes:
    """The session handlers of `AuthRoutes`, which holds the service and the mode."""

    service: S3AuthService
    browser_mode: bool

    def _ended(self, request: Request, response: Response) -> Response:
        """A response that ends the caller's session: the browser drops its cookie too."""
        if self.browser_mode:
            clear_refresh_cookie(response, root_path(request))
        return response

    def ended_if_own(self, call: Call, user_id: str, response: Response) -> Response:
        """`response` to a request that ended every session of `user_id`: when the account
        is the caller's, the caller's session is among them, and the browser drops its
        cookie as at `/logout-all`."""
        if user_id == call.caller.user_id:
            return self._ended(call.request, response)
        return response

    async def logout(self, call: Call) -> Response:
        data: LogoutRequest = call.body
        if data.refresh_token:
            # Named only once its session has checked it: a token of a session already
            # ended proves nothing, and must not write into the trail of the id it shows.
            if await self.service.revoke_refresh_token(data.refresh_token):
                names = self.service.tokens.parse_refresh_token(data.refresh_token)
                call.noted.update(user_id=names.user_id, session_id=names.session_id)
        else:
            await self.service.revoke_own_session(call.caller.user_id, call.caller.session_id)
        return self._ended(call.request, empty_response())

    async def logout_all(self, call: Call) -> Response:
        try:
            ended = await self.service.revoke_all_user_tokens(call.caller.user_id)
        except UserNotFoundError:  # deleted since its caller's record was read
            raise account_gone() from None
        response = json_response(SessionsEnded(sessions_ended=ended), headers=PRIVATE)
        return self._ended(call.request, response)

    async def sessions(self, call: Call) -> Response:
        caller = call.caller
        found = await self.service.get_user_active_sessions(caller.user_id, caller.session_id)
        return json_response(SessionList(sessions=found), headers=PRIVATE)

    async def end_session(self, call: Call) -> Response:
        return await self.end_one_session(call, call.caller.user_id, call.path_ids["session_id"])

    async def end_one_session(self, call: Call, user_id: str, session_id: str) -> Response:
        """End one session by its ids, by whichever path names it (the caller's sessions,
        an administrator's): the caller's own is a logout by another name, which ends the
        browser's cookie too; any other is ended as the sessions page ends it. Its event
        names the session ended, not the caller's: that is the one the `session_revoked`
        hooks are told of."""
        call.noted["session_id"] = session_id
        caller = call.caller
        if (user_id, session_id) == (caller.user_id, caller.session_id):
            await self.service.revoke_own_session(user_id, session_id)
            return self._ended(call.request, empty_response())
        if not await self.service.revoke_session(user_id, session_id):
            raise SessionNotFoundError()
        return empty_response()
