"""`Connection: close` on an answer given before the request's body was read to its end,
where what is left of it may be large: one decision, for the auth app's answers
(`app.unread_bodies`, which follows how far its routes read) and for the refusals of the
middlewares (`refusal_closes`) and of the hosts' guards and dependencies
(`refusals_closing`), which come before the host's app has read anything.

An HTTP/1.1 server that answers before the body ends keeps the connection and discards the
rest as it comes, as fast as the client sends it: for a `Content-Length` of a terabyte or
an endless chunked body, gigabytes a second of work for nothing, which slows every other
request the process serves. Told `Connection: close`, it closes the connection after the
answer instead (RFC 9112 §9.6; for a 413, RFC 9110 §15.5.14).

Kept is the connection of a request without a body (no framing, or a `Content-Length` of
0) and one whose body, left unread, is declared no longer than the bound: the server
discards at most that. A chunked body left unread may be of any length, and so may one
whose `Content-Length` is no decimal number or is given twice; a client waiting for `100
Continue` that was never asked for its body has sent none: all are closed. HTTP/2 and
HTTP/3 have no connection-specific fields (RFC 9113 §8.2.2), so nothing is added there;
nor to an answer that says something of the connection already.

The auth app's bound is its body bound, what its routes would have read. A middleware's
bound is 0, so that its refusal closes the connection of every request that declared a
body, a small one too: it knows no bound of the host's, so any other number would be a
guess; and the connection it would keep is of little use to the client, which must first
change something (get a token, wait out `Retry-After`) before a request of it is admitted.
What the close costs is one new connection for such a client, never for a request that
passes, nor for a refused one without a body (a GET).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .errors import S3AuthError
from .types import Scope

CLOSE = (b"connection", b"close")


class DeclaredBody:
    """What the headers of a request say of its body: none (`empty`), its length if it is
    one known number (`length`), whether the client waits for `100 Continue`."""

    __slots__ = ("empty", "http_1", "length", "waiting")

    def __init__(self, scope: Scope) -> None:
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers", ()))
        lengths = [value for name, value in headers if name.lower() == b"content-length"]
        chunked = any(name.lower() == b"transfer-encoding" for name, _ in headers)
        self.length = _length(lengths[0]) if len(lengths) == 1 and not chunked else None
        self.empty = (not chunked and not lengths) or self.length == 0
        self.waiting = any(
            name.lower() == b"expect" and value.strip().lower() == b"100-continue"
            for name, value in headers
        )
        self.http_1 = str(scope.get("http_version", "1.1")).startswith("1")


def closes(body: DeclaredBody, bound: int, *, asked: bool = False) -> bool:
    """Whether an answer given now, before any more of `body` is read, should end the
    connection; `asked`: whether the app asked for the body (a client waiting for `100
    Continue` then sends it)."""
    if body.empty or not body.http_1:
        return False
    bounded = body.length is not None and body.length <= bound
    return not bounded or (body.waiting and not asked)


def refusal_closes(scope: Scope) -> bool:
    """Whether a middleware's refusal of the request of `scope`, given before the host's
    app read anything, should end the connection: an HTTP/1 request that declared a body.
    Asked only where a refusal is built, so that a request let through pays nothing."""
    return scope.get("type") == "http" and closes(DeclaredBody(scope), 0)


def closing(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`headers` with `Connection: close`, unless they say something of the connection."""
    if any(name.lower() == b"connection" for name, _ in headers):
        return headers
    return [*headers, CLOSE]


@contextmanager
def refusals_closing(scope: Scope) -> Iterator[None]:
    """Inside: an S3AuthError raised, a refusal given before the host's app read the body of
    the request of `scope` (a guard's, a dependency's), carries `Connection: close` where
    `refusal_closes` says so, as a middleware's refusal does."""
    try:
        yield
    except S3AuthError as error:
        if refusal_closes(scope):
            error.headers = _closing_fields(error.headers)
        raise


def _closing_fields(fields: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """`closing` for the fields an error carries (`S3AuthError.headers`), as text."""
    if any(name.lower() == "connection" for name, _ in fields):
        return fields
    return (*fields, ("connection", "close"))


def _length(value: bytes) -> int | None:
    """A Content-Length's value, None when it is no decimal number; one longer than any
    bound is counted by its digits, which `int` may refuse."""
    digits = value.strip()
    if not digits.isdigit():  # ASCII digits only, for bytes
        return None
    digits = digits.lstrip(b"0") or b"0"
    return int(digits) if len(digits) <= 18 else 10**18
