"""Cookies scoped to one endpoint: HttpOnly, Secure, SameSite=Strict, and a Path that only
that endpoint matches. Browser mode keeps the refresh token in one that only the refresh
endpoint ever receives, so page scripts (and whatever is injected into them) never see it
and other sites cannot spend it; the device cookie (`devices`) reaches only the login.

Another host of the same site can still set a cookie of either name for the whole domain
and the same path (cookie tossing), which the browser then sends beside the host's own: so
cookies are read with every value they are sent with (`cookie_values`), never as a mapping
that keeps one of them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from .errors import RepeatedCookieError

REFRESH_COOKIE = "s3auth_refresh"
REFRESH_PATH = "/refresh"


def endpoint_cookie_path(root_path: str, endpoint: str) -> str:
    """An endpoint's path where the app is mounted (`/auth`, `/refresh` → `/auth/refresh`),
    as a cookie's Path, so that the browser sends the cookie to that endpoint only."""
    return quote(root_path.rstrip("/") + endpoint, safe="/-._~!$&'()*+,=:@")


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
