"""Refusals: how a middleware turns an error into its answer, rendered by `problems`.

An HTTP request gets the problem response (401 and 403 with their `WWW-Authenticate`
challenge); a WebSocket handshake is closed with 1008 before it is accepted. The answer to
a missing token, the most common refusal, is rendered once.
"""

from __future__ import annotations

from ..errors import AuthenticationRequiredError, S3AuthError
from ..problems import check_realm, close_websocket, render, send_problem
from ..types import Scope, Send


class Refusals:
    """Sends refusals for one realm."""

    def __init__(self, realm: str) -> None:
        self.realm = check_realm(realm)
        self._missing = render(AuthenticationRequiredError(), self.realm)

    async def refuse(self, scope: Scope, send: Send, error: S3AuthError) -> None:
        if scope["type"] == "websocket":
            await close_websocket(send, error.code)
        elif type(error) is AuthenticationRequiredError and error.detail == error.title:
            await send_problem(send, self._missing)
        else:
            await send_problem(send, render(error, self.realm))
