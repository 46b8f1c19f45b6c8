"""The Path of the app's cookies is the mount point as the browser sends it in the request
line: a browser leaves `[ ] | ^ ;` and others as they are there, and matches a cookie's Path
against the path it sends, character for character (RFC 6265 §5.1.4). A mount point no
Path can hold (`;`, control characters) is refused when the app is mounted."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import make_service
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount
from test_app import PASSWORD, client_for, register
from test_app_frameworks import HOSTS, auth_app_for

from s3auth_asgi.app import PrefixDispatcher, create_auth_app
from s3auth_asgi.app.cookies import mount_as_sent
from s3auth_asgi.app.fastapi import include_auth
from s3auth_asgi.app.litestar import S3AuthPlugin
from s3auth_asgi.errors import ConfigurationError

pytestmark = pytest.mark.anyio

OWN = "https://testserver"
CREDENTIALS = {"username": "alice", "password": PASSWORD}


def cookie_paths(response: Any) -> dict[str, list[str]]:
    """Each cookie the answer sets, with the attributes that name a path or a domain."""
    found = {}
    for header in response.headers.get_list("set-cookie"):
        name = header.partition("=")[0]
        found[name] = [
            part.strip()
            for part in header.split(";")[1:]
            if part.strip().lower().startswith(("path", "domain"))
        ]
    return found


@pytest.mark.parametrize(
    ("root_path", "sent"),
    [
        ("/t[1]|x^", "/t[1]|x^"),  # as browsers send them, and httpx too
        ("/é x", "/%C3%A9%20x"),  # what they do percent-encode
    ],
)
@pytest.mark.parametrize("host", sorted(HOSTS))
async def test_the_cookie_path_is_the_mount_point_as_sent(
    host: str, root_path: str, sent: str
) -> None:
    service = make_service(refresh_cookie=True)
    app = HOSTS[host](auth_app_for(host, service))
    prefix = f"{root_path}/auth"
    async with client_for(app, base_url=OWN, root_path=root_path) as client:
        await register(client, "alice", prefix=prefix)
        login = await client.post(f"{prefix}/login", data=CREDENTIALS, headers={"Origin": OWN})
        assert login.status_code == 200, login.text
        assert login.request.url.raw_path.startswith(f"{sent}/auth/".encode())
        assert cookie_paths(login) == {
            "s3auth_refresh": [f"Path={sent}/auth/refresh"],
            "s3auth_device": [f"Path={sent}/auth/login"],
        }


async def test_a_mount_point_from_the_request_cannot_add_attributes() -> None:
    """A mount whose path comes from the request (a path parameter) may hold a `;`, which
    would end the Path and begin an attribute of the client's choosing: it is encoded,
    and the cookie set has the one Path, that never matches."""
    service = make_service(refresh_cookie=True)
    app = Starlette(routes=[Mount("/{tenant}/auth", app=create_auth_app(service))])
    tenant = "a;Domain=testserver"
    async with client_for(app, base_url=OWN) as client:
        await register(client, "alice", prefix=f"/{tenant}/auth")
        login = await client.post(
            f"/{tenant}/auth/login", data=CREDENTIALS, headers={"Origin": OWN}
        )
        assert login.status_code == 200, login.text
        assert cookie_paths(login)["s3auth_refresh"] == ["Path=/a%3BDomain=testserver/auth/refresh"]


@pytest.mark.parametrize("path", ["/a;b", "/auth\n", "/a\x00b", "/a\x7fb", "/a\x85b"])
def test_a_mount_point_no_cookie_path_can_hold_is_refused_when_mounted(path: str) -> None:
    service = make_service(refresh_cookie=True)
    auth = create_auth_app(service)
    mounts = {
        "create_auth_app": lambda: create_auth_app(service, mount_path=path),
        "PrefixDispatcher": lambda: PrefixDispatcher(Starlette(), {path: auth}),
        "include_auth": lambda: include_auth(FastAPI(), service, prefix=path),
        "S3AuthPlugin": lambda: S3AuthPlugin(service, path=path),
    }
    for name, mount in mounts.items():
        with pytest.raises(ConfigurationError, match="cookie") as refused:
            mount()
        assert repr(path) in str(refused.value), name


@pytest.mark.parametrize(
    ("root_path", "raw_path", "sent"),
    [
        ("/a[b]", b"/a[b]/auth/login", "/a[b]"),
        ("/A%z", b"/%41%z/login", "/%41%z"),  # as sent, escapes and a bare `%` alike
        ("/é", b"/%c3%a9/login", "/%c3%a9"),
        # No raw_path, or one the root path is not part of (hypercorn's root path): as
        # browsers encode a path.
        ("/p[1]|^ é%", None, "/p[1]|^%20%C3%A9%25"),
        ("/p[1]", b"/login", "/p[1]"),
        ("/ab", b"/a", "/ab"),
        ("", b"/login", ""),
    ],
)
def test_the_mount_point_as_sent(root_path: str, raw_path: bytes | None, sent: str) -> None:
    scope = {"type": "http", "root_path": root_path, "raw_path": raw_path}
    assert mount_as_sent(scope) == sent
