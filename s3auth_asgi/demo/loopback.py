"""A demo on a loopback address answers requests to this machine's names alone.

Every program on the machine reaches 127.0.0.1, a browser's pages among them: a page of
another site that has its own name resolve to 127.0.0.1 (DNS rebinding) stays, to the
browser, of that site, and may call the demo as it calls its own server: register, hammer
logins, ask for resets. It can only send its own name as Host, so on loopback every path is
refused, before anything reads the store, unless the Host is `localhost` or a loopback
address, or the name the demo was told to listen on when that resolved to loopback alone
(`localhost.localdomain`: the links it prints name it), with the demo's port or none
(`421 misdirected_request`). A demo listening on
another address (`--host 0.0.0.0`) is meant to be reached by whatever name others know it
by: it checks no Host, but its outbox still answers a loopback Host alone (`outbox`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from ..app.token_errors import render_token_problem
from ..errors import S3AuthError
from ..hosts import is_loopback
from ..openapi_problems import error_response
from ..problems import PROBLEM_CONTENT_TYPE, refuse_websocket, render, send_problem
from ..types import ASGIApp, Receive, Scope, Send

PORT_DIGITS = 5
MISDIRECTED_DESCRIPTION = (
    "The demo, listening on a loopback address, refuses a Host that is not `localhost`, "
    "a loopback address or the name it listens on, with its port (or none), before it "
    "reads the store: code "
    "`misdirected_request`"
)


class MisdirectedRequestError(S3AuthError):
    """The request names a host this server does not answer for (RFC 9110 §15.5.20)."""

    status = 421
    code = "misdirected_request"
    title = "This server does not answer for that host"


def loopback_host(scope: Scope, names: Collection[str] = ()) -> bool:
    """Whether the request names this machine as its host: one Host header, `localhost`, a
    loopback address (`127.0.0.1`, `[::1]`) or one of `names` (in lower case), with the
    port it reached or none."""
    given = [value for name, value in scope.get("headers", ()) if name.lower() == b"host"]
    if len(given) != 1:
        return False
    host = given[0].decode("latin-1").lower()
    port: int | None = None
    if ":" in host and not host.endswith("]"):  # a port, after a name or [IPv6]
        host, _, digits = host.rpartition(":")
        # A port has five digits at most; `int` refuses thousands with a ValueError.
        if not (digits.isascii() and digits.isdigit()) or len(digits) > PORT_DIGITS:
            return False
        port = int(digits)
    server = scope.get("server")
    served_on = server[1] if server else None
    named = host in names or is_loopback(host)
    return named and (port is None or served_on is None or port == served_on)


def loopback_only(
    app: ASGIApp, token_paths: Collection[str] = (), names: Collection[str] = ()
) -> ASGIApp:
    """`app`, refusing every request and WebSocket whose Host is not this machine's (or one
    of `names`: `loopback_host`); at `token_paths`, OAuth 2.0 token endpoints, with the
    OAuth members their every refusal carries (`token_errors`)."""
    refusal = render(MisdirectedRequestError())
    token_refusal = render_token_problem(MisdirectedRequestError())

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not loopback_host(scope, names):
            at_token_endpoint = scope["path"].rstrip("/") in token_paths
            await send_problem(send, token_refusal if at_token_endpoint else refusal)
        elif scope["type"] == "websocket" and not loopback_host(scope, names):
            await refuse_websocket(scope, send, refusal, MisdirectedRequestError.code)
        else:
            await app(scope, receive, send)

    return guarded


def declare_misdirected(document: dict[str, Any]) -> None:
    """Declare the 421 of `loopback_only` on every operation of the auth app's OpenAPI
    `document`, with the problem schema of the operation's other refusals."""
    for item in document["paths"].values():
        for operation in item.values():
            refusals = [int(status) for status in operation["responses"] if int(status) >= 400]
            answer = operation["responses"][str(min(refusals))]
            schema = answer["content"][PROBLEM_CONTENT_TYPE]["schema"]
            # A 409's schema lists its codes: only the reference to the problem is shared.
            schema = {"$ref": schema["allOf"][0]["$ref"]} if "allOf" in schema else schema
            operation["responses"]["421"] = error_response(421, schema, MISDIRECTED_DESCRIPTION)
