"""Cookies scoped to one endpoint: HttpOnly, Secure, SameSite=Strict, and a Path that only
that endpoint matches. Browser mode keeps the refresh token in one that only the refresh
endpoint ever receives, so page scripts (and whatever is injected into them) never see it
and other sites cannot spend it; the device cookie (`devices`) reaches only the login."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

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


def read_refresh_cookie(request: Request) -> str | None:
    return request.cookies.get(REFRESH_COOKIE) or None
