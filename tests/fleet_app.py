"""The application the fleet tests run under uvicorn with several worker processes: the
demo's stack (three middlewares, the auth app at /auth) on the store the S3AUTH_* variables
name, each answer saying which worker process gave it."""

from __future__ import annotations

import os
from typing import Any

from s3auth_asgi import S3AuthService
from s3auth_asgi.demo.app import create_demo_app

_PID = str(os.getpid()).encode()


def _create() -> Any:
    inner = create_demo_app(S3AuthService())

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await inner(scope, receive, send)
            return

        async def send_with_pid(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], (b"x-worker", _PID)]}
            await send(message)

        await inner(scope, receive, send_with_pid)

    return app


app = _create()
