"""Refusals: how a middleware turns an error into its answer, rendered by `problems`.

An HTTP request gets the problem response (401 and 403 with their `WWW-Authenticate`
challenge); a WebSocket handshake gets the same response where the server can send one,
else a close 1008 before accept (`refuse_websocket`). The answer to a missing token, the
most common refusal, is rendered once. A refusal comes before the host's app has read the
request's body: where the request declared one, the answer ends the connection
(`connection_close.refusal_closes`), decided here, where a refusal is sent, so that a
request let through pays nothing for it.
"""

from __future__ import annotations

from ..connection_close import refusal_closes
from ..errors import AuthenticationRequiredError, S3AuthError
from ..problems import check_realm, refuse_websocket, render, send_problem
from ..types import Scope, Send


class Refusals:
    """Sends refusals for one realm."""

    def __init__(self, realm: str) -> None:
        self.realm = check_realm(realm)
        self._missing = render(AuthenticationRequiredError(), self.realm)

    async def refuse(self, scope: Scope, send: Send, error: S3AuthError) -> None:
        if type(error) is AuthenticationRequiredError and error.detail == error.title:
            problem = self._missing
        else:
            problem = render(error, self.realm)
        if scope["type"] == "websocket":
            await refuse_websocket(scope, send, problem, error.code)
        else:
            await send_problem(send, problem, close=refusal_closes(scope))
