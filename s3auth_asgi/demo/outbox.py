"""The demo's outbox at /demo/outbox: the newest mails it "sent" (`FileMailer`), for the page
to show in place of a mailbox, to whoever started the demo alone.

They hold working password-reset links, the administrator's among them once asked for, and
a demo on 127.0.0.1 is reached by every user of the machine: so the outbox answers only a
request that carries the key `s3auth demo` made at this start and printed in the link to the
page (`#outbox=KEY`; the page sends it in the `Demo-Outbox-Key` header). The key is kept in
no file and dies with the process; it is never read from the URL, where access logs and the
browser's history would keep it. Any request without it is answered as an unknown path is.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Collection

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..app.responses import problem_response
from ..errors import NotFoundError
from ..hosts import is_loopback
from ..mail import FileMailer
from ..service import S3AuthService
from .loopback import loopback_host

OUTBOX_PATH = "/demo/outbox"
KEY_HEADER = "Demo-Outbox-Key"
KEY_BYTES = 32


def new_outbox_key() -> str:
    """A key for one start of the demo: 256 random bits, URL-safe (43 characters)."""
    return secrets.token_urlsafe(KEY_BYTES)


def outbox_endpoint(service: S3AuthService, key: str | None, names: Collection[str] = ()) -> Route:
    """The outbox, read with `key`; with None, by no one. `names`: those the demo's Host
    guard accepts beside loopback's (`loopback`)."""

    async def outbox(request: Request) -> Response:
        if key is None or not _holds_key(request, key) or not _from_this_machine(request, names):
            return problem_response(NotFoundError("No such endpoint"))
        mailer = service.mail.mailer
        found = mailer.messages() if isinstance(mailer, FileMailer) else []
        listed = [msgspec.to_builtins(message) for message in found]
        return JSONResponse({"messages": listed}, headers={"Cache-Control": "no-store"})

    return Route(OUTBOX_PATH, outbox)


def _holds_key(request: Request, key: str) -> bool:
    # One header only: of several, which one was meant is anyone's guess. Compared in
    # constant time; a value that is not ASCII compares as the bytes it came as.
    given = request.headers.getlist(KEY_HEADER)
    return len(given) == 1 and hmac.compare_digest(given[0].encode("latin-1"), key.encode())


def _from_this_machine(request: Request, names: Collection[str]) -> bool:
    """Also with the key, only from this machine, to a loopback Host: a demo served on
    another interface (`--host 0.0.0.0`) shows its outbox to no one else, and a page of
    another site that had its name resolve to 127.0.0.1 (DNS rebinding), which the browser
    reads as that site's, reads nothing (`loopback`: on loopback, it reaches no path)."""
    return (
        request.client is not None
        and is_loopback(request.client.host)
        and loopback_host(request.scope, names)
    )
