"""`s3auth demo`: the demo app under uvicorn, on the state kept in the demo's directory."""

from __future__ import annotations

import argparse
import ipaddress
import shlex
from pathlib import Path

from ..errors import ConfigurationError
from ..hosts import resolves_to_loopback
from ..service import S3AuthService
from ..shown_urls import shown_url
from .context import Context, demo_directory, demo_settings, settle
from .failures import OK

PROXY_HEADERS = False
"""uvicorn rewrites `scope["client"]` from X-Forwarded-For when a request comes from
127.0.0.1 unless told not to; the rate limits would then count whatever address a client
claims. The app's own trusted-proxy settings decide that instead."""
MAX_PORT = 65535
IPV6 = 6


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
    settings = demo_settings(given_directory, store_url)
    # The demo's own directory: created with its parents when missing.
    service = S3AuthService(settings, store=ctx.store(settings, create=store_url is None))
    # Looked up once: the line printed and the Host guard go by the same answer.
    on_loopback = resolves_to_loopback(ctx.args.host)
    base = f"http://{url_host(opened_host(ctx.args.host))}:{ctx.args.port}"
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
        f"  Make yourself an administrator: {admin_hint(given_directory, store_url)}\n"
        f"{network_note(ctx.args.host, on_loopback)}",
        file=ctx.out,
        flush=True,
    )
    uvicorn.run(
        create_demo_app(
            service, outbox_key=outbox_key, host=ctx.args.host, on_loopback=on_loopback
        ),
        host=ctx.args.host,
        port=ctx.args.port,
        proxy_headers=PROXY_HEADERS,
        server_header=False,
    )
    settle()
    return OK


def opened_host(host: str) -> str:
    """The address a browser opens for a demo listening on `host`: for every interface
    (`0.0.0.0`, `::`), which names no machine, this one's loopback address, the only
    Host the outbox answers and where http:// keeps the Secure refresh cookie."""
    address = _address(host)
    if address is None or not address.is_unspecified:
        return host
    return "::1" if address.version == IPV6 else "127.0.0.1"


def network_note(host: str, on_loopback: bool | None = None) -> str:
    """A line for a demo that others on the network reach: none on loopback (`on_loopback`:
    whether `host` is, None to look it up, `hosts.resolves_to_loopback`)."""
    if resolves_to_loopback(host) if on_loopback is None else on_loopback:
        return ""
    address = _address(host)
    if address is not None and address.is_unspecified:
        where = "every network interface"
        outbox = "the outbox, at the link above, answers this machine alone"
    else:
        where, outbox = host, "the outbox answers on a loopback address alone (--host 127.0.0.1)"
    return (
        f"  network:  listening on {where}: others on the network reach the page and the API;\n"
        f"            {outbox}\n"
    )


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:  # a name
        return None


def url_host(host: str) -> str:
    """`host` as it goes in a URL: an IPv6 address between brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


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
