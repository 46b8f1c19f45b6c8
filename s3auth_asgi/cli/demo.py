"""`s3auth demo`: the demo app under uvicorn, on the state kept in the demo's directory."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from ..errors import ConfigurationError
from ..service import S3AuthService
from ..shown_urls import shown_url
from .context import Context, demo_directory, demo_settings, settle
from .failures import OK

PROXY_HEADERS = False
"""uvicorn rewrites `scope["client"]` from X-Forwarded-For when a request comes from
127.0.0.1 unless told not to; the rate limits would then count whatever address a client
claims. The app's own trusted-proxy settings decide that instead."""
MAX_PORT = 65535


def run_demo(ctx: Context) -> int:
    try:
        import uvicorn
    except ImportError:
        raise ConfigurationError(
            "the demo needs uvicorn: pip install 's3auth_asgi[demo]'"
        ) from None
    from ..demo.app import create_demo_app
    from ..demo.config import SECRET_FILE
    from ..demo.outbox import new_outbox_key

    given_directory: str | None = ctx.args.dir or ctx.args.demo_dir
    store_url: str | None = ctx.args.demo_store
    directory = demo_directory(given_directory)
    settings = demo_settings(directory, store_url)
    # The demo's own directory: created with its parents when missing.
    service = S3AuthService(settings, store=ctx.store(settings, create=store_url is None))
    base = f"http://{url_host(ctx.args.host)}:{ctx.args.port}"
    # The outbox holds reset links, and others on this machine reach the port: it opens
    # with this key, printed here only and new at each start.
    outbox_key = new_outbox_key()
    print(
        f"s3auth demo\n"
        f"  page:     {base}/\n"
        f"  outbox:   {base}/#outbox={outbox_key}  (the page, with the mails: yours alone)\n"
        f"  API:      {base}/auth/  (OpenAPI: {base}/auth/openapi.json)\n"
        f"  store:    {shown_url(settings.store_url)}\n"
        f"  secret:   {(directory / SECRET_FILE).resolve()}\n"
        f"  mail:     written to {settings.mail_outbox}, shown at the outbox link; none is sent\n"
        f"  Make yourself an administrator: {admin_hint(given_directory, store_url)}\n",
        file=ctx.out,
        flush=True,
    )
    uvicorn.run(
        create_demo_app(service, outbox_key=outbox_key),
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


def admin_hint(directory: str | None, store_url: str | None) -> str:
    """The command that makes an administrator of this demo, to run as printed: with the
    demo's directory and store when they are not the defaults (a store URL that carries
    credentials is not printed: `URL` stands for it)."""
    options = ["--demo"]
    if directory:
        options += ["--demo-dir", str(Path(directory).resolve())]
    if store_url:
        options += ["--demo-store", store_url if shown_url(store_url) == store_url else "URL"]
    return shlex.join(["s3auth", *options, "user", "create", "NAME", "--email", "E", "--admin"])


def port_number(text: str) -> int:
    """A TCP port to listen on: 1 to 65535 (uvicorn would take others and listen elsewhere
    than the address it prints)."""
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"{text} is not a port: give 1 to {MAX_PORT}")
    return port
