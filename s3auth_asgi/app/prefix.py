"""PrefixDispatcher: mount ASGI apps under path prefixes in front of an app whose framework
has no ASGI mount of its own (Quart, a hand-written ASGI app).

    app = PrefixDispatcher(quart_app, {"/auth": create_auth_app(service)})

A mounted app gets `root_path` extended by its prefix and the full `path` (the ASGI
convention that Starlette and uvicorn follow); everything else, lifespan included, goes to
the wrapped app.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import ConfigurationError
from ..path_forms import route_path
from ..types import ASGIApp, Receive, Scope, Send, checked_app
from .cookies import check_mount_point


class PrefixDispatcher:
    def __init__(self, app: ASGIApp, mounts: Mapping[str, ASGIApp]) -> None:
        for prefix, mounted in mounts.items():
            checked_app(mounted)
            if not prefix.startswith("/") or prefix.endswith("/"):
                raise ConfigurationError(f"mount prefix {prefix!r} must start and not end with '/'")
            check_mount_point(prefix, "mount prefix")  # an auth app here scopes cookies below it
        self.app = checked_app(app)
        # Longest first, so "/auth/admin" wins over "/auth".
        self.mounts = sorted(mounts.items(), key=lambda item: len(item[0]), reverse=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            root_path: str = scope.get("root_path") or ""
            relative = route_path(scope) or scope["path"]
            for prefix, app in self.mounts:
                if relative == prefix or relative.startswith(prefix + "/"):
                    await app({**scope, "root_path": root_path + prefix}, receive, send)
                    return
        await self.app(scope, receive, send)
