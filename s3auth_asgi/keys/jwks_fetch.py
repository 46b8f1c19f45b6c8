"""Reading a JWKS over http(s): one deadline for the whole read (`http_reads`), and a
size cap: the body is read up to `MAX_JWKS_BYTES`. A redirect may lead to another http(s)
URL only, never from https to http.

Plain http lets anyone on the path swap the keys, and so forge every token: a URL over it
must name this machine (`localhost`, a loopback address; a redirect is held to the same),
unless the operator allows it (`plain_http_host`).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from functools import partial
from typing import NamedTuple

from ..errors import ConfigurationError
from ..http_reads import plain_http_off_machine, read_within

MAX_JWKS_BYTES = 65536


class JwksAnswer(NamedTuple):
    document: object | None
    """The parsed JSON; None when the server answered 304 Not Modified."""
    etag: str | None


def plain_http_host(url: str, *, allowed: bool) -> str | None:
    """The host of a plain http `url` that is not this machine, which the reader warns of;
    None for https or loopback. Such a URL is a ConfigurationError unless `allowed`."""
    host = plain_http_off_machine(url)
    if host is not None and not allowed:
        # The host alone: the URL may carry user info or a signed query.
        raise ConfigurationError(
            f"JwksVerifier would read its keys over plain http from {host}, "
            "which is not this machine: anyone on the path could swap in keys of their own "
            "and forge every token. Use an https:// URL, or pass allow_plain_http=True "
            "where the path is yours (a private network, a sidecar)"
        )
    return host


async def fetch_jwks(
    url: str, *, etag: str | None, seconds: float, plain_http_anywhere: bool = False
) -> JwksAnswer:
    """The JWKS document at `url`, read within `seconds` in all (If-None-Match `etag`,
    when given); a redirect to plain http leads to this machine alone, unless
    `plain_http_anywhere`. Raises what failed: TimeoutError at the deadline, OSError,
    http.client.HTTPException, ValueError, RecursionError (JSON nested too deeply)..."""
    return await read_within(
        seconds, partial(_read, url, etag), plain_http_anywhere=plain_http_anywhere
    )


def parse_jwks(body: bytes) -> object:
    """The JSON of a JWKS body of at most MAX_JWKS_BYTES (ValueError otherwise)."""
    if len(body) > MAX_JWKS_BYTES:
        raise ValueError("the JWKS is larger than a key set can be")
    document: object = json.loads(body)
    return document


def _read(
    url: str, etag: str | None, opener: urllib.request.OpenerDirector, timeout: float
) -> JwksAnswer:
    # The scheme is http(s): JwksVerifier checks it, and redirects keep to it.
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    if etag is not None:
        request.add_header("If-None-Match", etag)
    try:
        with opener.open(request, timeout=timeout) as response:
            body = response.read(MAX_JWKS_BYTES + 1)
            answered_etag = response.headers.get("ETag")
    except urllib.error.HTTPError as error:
        if error.code == 304 and etag is not None:
            return JwksAnswer(None, etag)
        raise
    return JwksAnswer(parse_jwks(body), answered_etag)
