"""Browser mode: the refresh token in an HttpOnly cookie that only the refresh endpoint
ever receives, so page scripts (and whatever is injected into them) never see it, and
SameSite=Strict keeps other sites from spending it."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

REFRESH_COOKIE = "s3auth_refresh"
REFRESH_PATH = "/refresh"


def endpoint_cookie_path(root_path: str, endpoint: str) -> str:
    """An endpoint's path where the app is mounted (`/auth`, `/refresh` → `/auth/refresh`),
    as a cookie's Path, so that the browser sends the cookie to that endpoint only."""
    return quote(root_path.rstrip("/") + endpoint, safe="/-._~!$&'()*+,=:@")


def refresh_cookie_path(root_path: str) -> str:
    return endpoint_cookie_path(root_path, REFRESH_PATH)


def set_refresh_cookie(response: Response, token: str, max_age: int, root_path: str) -> None:
    response.headers.append(
        "Set-Cookie",
        f"{REFRESH_COOKIE}={token}; Path={refresh_cookie_path(root_path)}; "
        f"Max-Age={max(max_age, 0)}; HttpOnly; Secure; SameSite=Strict",
    )


def clear_refresh_cookie(response: Response, root_path: str) -> None:
    set_refresh_cookie(response, "", 0, root_path)


def read_refresh_cookie(request: Request) -> str | None:
    return request.cookies.get(REFRESH_COOKIE) or None
