"""`Connection: close` on an answer given before the request's body was read to its end,
where what is left of it may be large.

An HTTP/1.1 server that answers before the body ends keeps the connection and discards the
rest as it comes, as fast as the client sends it: for a `Content-Length` of a terabyte or
an endless chunked body, gigabytes a second of work for nothing, which slows every other
request the process serves. Told `Connection: close`, it closes the connection after the
answer instead (RFC 9112 §9.6; for a 413, RFC 9110 §15.5.14). That is decided here, where
every message of the request passes, whichever refusal or route answered (413, 415, 401,
404, 405, …): the body's framing is known from its headers and its end from the messages.

Kept is the connection of a request without a body, one whose body was read to its end,
and one whose body, left unread, is declared no longer than the body bound: the server
discards at most what the app would have read (a client that sends `{}` where no body is
read keeps its connection). A chunked body left unread may be of any length, and a client
waiting for `100 Continue` that the app never asked for its body has sent none: both
are closed. HTTP/2 and HTTP/3 have no connection-specific fields (RFC 9113 §8.2.2), so
nothing is added there.
"""

from __future__ import annotations

from ..types import Message, Receive, Scope, Send

CLOSE = (b"connection", b"close")


class UnreadBody:
    """What is known of one request's body: whether it was read to its end (or the client
    left), whether what may be left is within the bound, whether the app asked for it."""

    def __init__(self, scope: Scope, bound: int) -> None:
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers", ()))
        lengths = [value for name, value in headers if name.lower() == b"content-length"]
        chunked = any(name.lower() == b"transfer-encoding" for name, _ in headers)
        length = _length(lengths[0]) if len(lengths) == 1 and not chunked else None
        self.ended = (not chunked and not lengths) or length == 0
        self.bounded = length is not None and length <= bound
        self.waiting = any(
            name.lower() == b"expect" and value.strip().lower() == b"100-continue"
            for name, value in headers
        )
        self.asked = False
        self.http_1 = str(scope.get("http_version", "1.1")).startswith("1")

    def received(self, message: Message) -> None:
        self.asked = True
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            self.ended = True

    def closes(self) -> bool:
        """Whether the answer, if it starts now, should end the connection."""
        if self.ended or not self.http_1:
            return False
        return not self.bounded or (self.waiting and not self.asked)


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
            headers = list(message.get("headers", ()))
            if not any(name.lower() == b"connection" for name, _ in headers):
                message = {**message, "headers": [*headers, CLOSE]}
        await send(message)

    return receiving, sending


def _length(value: bytes) -> int | None:
    """A Content-Length's value, None when it is no decimal number; one longer than any
    bound is counted by its digits, which `int` may refuse."""
    digits = value.strip()
    if not digits.isdigit():  # ASCII digits only, for bytes
        return None
    digits = digits.lstrip(b"0") or b"0"
    return int(digits) if len(digits) <= 18 else 10**18
