"""`Connection: close` on an answer of the auth app given before the request's body was
read to its end, where what is left of it may be large (`connection_close` decides, by
the app's body bound). That is followed here, where every message of the request passes,
whichever refusal or route answered (413, 415, 401, 404, 405, …): the body's framing is
known from its headers and its end from the messages. A body read to its end keeps the
connection, and so does one that, left unread, is declared no longer than the body bound:
the server discards at most what the app would have read (a client that sends `{}` where
no body is read keeps its connection).
"""

from __future__ import annotations

from ..connection_close import DeclaredBody, closes, closing
from ..types import Message, Receive, Scope, Send


class UnreadBody:
    """What is known of one request's body: what its headers declare, whether it was read
    to its end (or the client left), whether the app asked for it."""

    def __init__(self, scope: Scope, bound: int) -> None:
        self.declared = DeclaredBody(scope)
        self.bound = bound
        self.ended = self.declared.empty
        self.asked = False

    def received(self, message: Message) -> None:
        self.asked = True
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            self.ended = True

    def closes(self) -> bool:
        """Whether the answer, if it starts now, should end the connection."""
        return not self.ended and closes(self.declared, self.bound, asked=self.asked)


def closing_unread(scope: Scope, receive: Receive, send: Send, bound: int) -> tuple[Receive, Send]:
    """`receive` and `send` for the request of `scope`, the answer's start carrying
    `Connection: close` where `UnreadBody.closes` says so; `bound` is the body bound."""
    body = UnreadBody(scope, bound)

    async def receiving() -> Message:
        message = await receive()
        body.received(message)
        return message

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start" and body.closes():
            message = {**message, "headers": closing(list(message.get("headers", ())))}
        await send(message)

    return receiving, sending
