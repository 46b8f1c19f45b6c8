"""`s3auth demo`: the demo app under uvicorn, on the state kept in the demo's directory."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigurationError
from ..service import S3AuthService
from ..settings import env_name
from .context import Context, demo_directory, demo_settings, settle
from .failures import OK, shown_url

PROXY_HEADERS = False
"""uvicorn rewrites `scope["client"]` from X-Forwarded-For when a request comes from
127.0.0.1 unless told not to; the rate limits would then count whatever address a client
claims. The app's own trusted-proxy settings decide that instead."""


def run_demo(ctx: Context) -> int:
    try:
        import uvicorn
    except ImportError:
        raise ConfigurationError(
            "the demo needs uvicorn: pip install 's3auth_asgi[demo]'"
        ) from None
    from ..demo.app import create_demo_app

    directory = demo_directory(ctx.args.dir or ctx.args.demo_dir)
    settings = demo_settings(directory)
    # The demo's own directory: created with its parents when missing.
    service = S3AuthService(settings, store=ctx.store(settings, create=True))
    base = f"http://{url_host(ctx.args.host)}:{ctx.args.port}"
    print(
        f"s3auth demo\n"
        f"  page:     {base}/\n"
        f"  API:      {base}/auth/  (OpenAPI: {base}/auth/openapi.json)\n"
        f"  store:    {shown_url(settings.store_url)}\n"
        f"  secret:   {secret_origin(directory)}\n"
        f"  Make yourself an administrator: s3auth --demo user create NAME --email E --admin\n",
        file=ctx.out,
        flush=True,
    )
    uvicorn.run(
        create_demo_app(service),
        host=ctx.args.host,
        port=ctx.args.port,
        proxy_headers=PROXY_HEADERS,
        server_header=False,
    )
    settle()
    return OK


def url_host(host: str) -> str:
    """`host` as it goes in a URL: an IPv6 address between brackets."""
    return f"[{host}]" if ":" in host else host


def secret_origin(directory: Path) -> str:
    """Where the demo's secret key comes from: the variable when set, else the file."""
    from ..demo.config import SECRET_FILE

    if os.environ.get(env_name("secret_key")):
        return env_name("secret_key")
    return str((directory / SECRET_FILE).resolve())
