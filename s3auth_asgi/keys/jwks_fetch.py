"""Reading a JWKS over http(s): one deadline for the whole read (`http_reads`), and a
size cap: the body is read up to `MAX_JWKS_BYTES`. A redirect may lead to another http(s)
URL only, never from https to http.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from functools import partial
from typing import NamedTuple

from ..http_reads import read_within

MAX_JWKS_BYTES = 65536


class JwksAnswer(NamedTuple):
    document: object | None
    """The parsed JSON; None when the server answered 304 Not Modified."""
    etag: str | None


async def fetch_jwks(url: str, *, etag: str | None, seconds: float) -> JwksAnswer:
    """The JWKS document at `url`, read within `seconds` in all (If-None-Match `etag`,
    when given). Raises what failed: TimeoutError at the deadline, OSError,
    http.client.HTTPException, ValueError, RecursionError (JSON nested too deeply)..."""
    return await read_within(seconds, partial(_read, url, etag))


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
