"""Cookies scoped to one endpoint: HttpOnly, Secure, SameSite=Strict, and a Path that only
that endpoint matches. Browser mode keeps the refresh token in one that only the refresh
endpoint ever receives, so page scripts (and whatever is injected into them) never see it
and other sites cannot spend it; the device cookie (`devices`) reaches only the login.

Another host of the same site can still set a cookie of either name for the whole domain
and the same path (cookie tossing), which the browser then sends beside the host's own: so
cookies are read with every value they are sent with (`cookie_values`), never as a mapping
that keeps one of them.

A browser sends a cookie to a path its Path is a prefix of, compared character for
character with the path as the browser writes it in the request (RFC 6265 §5.1.4), which
leaves `[ ] | ^ ;` and others as they are. So the Path is the mount point as the request
sent it (`mount_as_sent`), not as a URL-quoting function would write it. A Path cannot
hold `;` (it ends the attribute) or control characters (they break the header): a mount
point with one is refused when the app is mounted (`check_mount_point`), and one that only
a request shows (a server's root path, a mount whose path has parameters) gets them
percent-encoded, a Path that never matches rather than a header that says something else.
"""

from __future__ import annotations

import unicodedata
from string import hexdigits
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from ..errors import ConfigurationError
from ..types import Scope
from .errors import RepeatedCookieError

REFRESH_COOKIE = "s3auth_refresh"
REFRESH_PATH = "/refresh"
BROWSER_PATH_SAFE = "/!$&'()*+,:;=@[]^|"
"""The printable ASCII (besides letters, digits and `-._~`) that browsers leave as it is
in a request's path (the URL Standard's path percent-encode set is the rest: space,
`"#<>?` and `` `{} ``, with `%` and `\\`, which a decoded path holds only if they were sent
encoded)."""
HEX_DIGITS = frozenset(hexdigits.encode())


def unfit_in_cookie_path(char: str) -> bool:
    """Whether a cookie's Path cannot hold `char`: `;` would end the attribute and begin
    another, a control character breaks the header."""
    return char == ";" or unicodedata.category(char) == "Cc"


def check_mount_point(path: str, name: str) -> None:
    """ConfigurationError, naming the setting `name`, when the app mounted at `path` could
    set no cookie that the browser sends back (see the module)."""
    if any(unfit_in_cookie_path(char) for char in path):
        raise ConfigurationError(
            f"{name} {path!r} cannot begin the Path of the auth app's cookies: it holds a "
            "';' or a control character"
        )


def mount_as_sent(scope: Scope) -> str:
    """Where the app is mounted (`root_path`), as the client wrote it in the request: the
    start of `raw_path` that percent-decodes to it. Where `raw_path` has no such start (no
    `raw_path`, or a server's root path that is not part of it), `root_path` as browsers
    encode a path."""
    root_path: str = scope.get("root_path") or ""
    raw_path = scope.get("raw_path")
    if isinstance(raw_path, bytes):
        sent = _start_decoding_to(raw_path, root_path.encode("utf-8", "replace"))
        if sent is not None:
            return sent.decode("latin-1")
    return quote(root_path, safe=BROWSER_PATH_SAFE, errors="replace")


def _start_decoding_to(raw: bytes, decoded: bytes) -> bytes | None:
    """The start of `raw` that percent-decodes to `decoded`, as `unquote` decodes (a `%`
    without two hex digits is itself); None when `raw` does not begin so."""
    at = 0
    for byte in decoded:
        escape = raw[at + 1 : at + 3] if raw[at : at + 1] == b"%" else b""
        if len(escape) == 2 and all(digit in HEX_DIGITS for digit in escape):
            value, width = int(escape, 16), 3
        else:
            value, width = (raw[at] if at < len(raw) else -1), 1
        if value != byte:
            return None
        at += width
    return raw[:at]


def endpoint_cookie_path(root_path: str, endpoint: str) -> str:
    """An endpoint's path where the app is mounted (`/auth`, `/refresh` → `/auth/refresh`),
    as a cookie's Path, so that the browser sends the cookie to that endpoint only.
    `root_path`: the mount point as sent (`mount_as_sent`)."""
    path = root_path.rstrip("/") + endpoint
    # One byte each: `mount_as_sent` gives percent-encoded text or bytes read as Latin-1.
    return "".join(f"%{ord(c):02X}" if unfit_in_cookie_path(c) else c for c in path)


def set_endpoint_cookie(
    response: Response, name: str, value: str, *, endpoint: str, root_path: str, max_age: int
) -> None:
    """A cookie only `endpoint` receives: HttpOnly (no page script reads it), Secure, and
    SameSite=Strict (no other site's request carries it). `max_age` 0 deletes it."""
    attributes: dict[str, Any] = {
        "path": endpoint_cookie_path(root_path, endpoint),
        "secure": True,
        "httponly": True,
        "samesite": "strict",
    }
    if max_age > 0:
        response.set_cookie(name, value, max_age=max_age, **attributes)
    else:
        response.delete_cookie(name, **attributes)


def set_refresh_cookie(response: Response, token: str, max_age: int, root_path: str) -> None:
    set_endpoint_cookie(
        response,
        REFRESH_COOKIE,
        token,
        endpoint=REFRESH_PATH,
        root_path=root_path,
        max_age=max_age,
    )


def clear_refresh_cookie(response: Response, root_path: str) -> None:
    set_refresh_cookie(response, "", 0, root_path)


def cookie_values(request: Request, name: str) -> list[str]:
    """Every value the request's Cookie fields (HTTP/2 may send one field per cookie) give
    `name`, in the order they are sent. `request.cookies` keeps the last of a repeated
    name: a cookie tossed in beside the host's own would be taken for it."""
    values = []
    for field in request.headers.getlist("cookie"):
        for pair in field.split(";"):
            key, equals, value = pair.partition("=")
            if equals and key.strip() == name:
                values.append(_unquoted(value.strip()))
    return values


def _unquoted(value: str) -> str:
    # RFC 6265 §4.1.1: a value may be enclosed in double quotes, which are not part of it
    # (and no cookie-octet is a quote or a backslash, so nothing inside is escaped).
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def read_refresh_cookie(request: Request) -> str | None:
    """The refresh token in the cookie; RepeatedCookieError when the cookie is sent more
    than once, since either of the tokens may be a session someone else planted."""
    values = cookie_values(request, REFRESH_COOKIE)
    if len(values) > 1:
        raise RepeatedCookieError(
            f"The {REFRESH_COOKIE} cookie is sent {len(values)} times (another host of this "
            "site may have set one): none is used. Clearing this site's cookies ends it."
        )
    return (values[0] or None) if values else None
