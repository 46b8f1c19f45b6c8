"""Where a JwksVerifier reads its JWKS: an http(s) URL (`jwks_fetch`), or a file path.

A plain http URL must name this machine unless the operator allowed it
(`jwks_fetch.plain_http_host`); one allowed to another machine is warned of at its first
read, by its host alone: the URL may carry user info or a signed query.
"""

from __future__ import annotations

import logging
from pathlib import Path

import anyio.to_thread

from ..errors import ConfigurationError
from .jwks_fetch import MAX_JWKS_BYTES, JwksAnswer, fetch_jwks, parse_jwks, plain_http_host

logger = logging.getLogger("s3auth_asgi.keys")


class JwksSource:
    """`url` or `path`, whichever `source` names (the other is None)."""

    __slots__ = ("_plain_http", "_unwarned_host", "path", "url")

    def __init__(self, source: str | Path, *, allow_plain_http: bool) -> None:
        text = str(source)
        self._plain_http = allow_plain_http
        self._unwarned_host: str | None = None
        self.url: str | None = None
        self.path: Path | None = None
        if text.startswith(("http://", "https://")):
            self.url = text
            self._unwarned_host = plain_http_host(text, allowed=allow_plain_http)
        elif "://" in text:
            raise ConfigurationError("a JWKS source is an http(s):// URL or a file path")
        else:
            self.path = Path(text)

    async def fetch(self, *, etag: str | None, seconds: float) -> JwksAnswer:
        """The JWKS as read now, within `seconds` for a URL; `etag`, that of the copy held,
        which a URL's server may answer with 304 Not Modified (no document)."""
        if self.path is not None:
            return JwksAnswer(await anyio.to_thread.run_sync(_read_file, self.path), None)
        assert self.url is not None
        if self._unwarned_host is not None:
            logger.warning(
                "the JWKS is read from %s over plain http (allow_plain_http): whoever is on "
                "the path can swap the keys and forge tokens",
                self._unwarned_host,
            )
            self._unwarned_host = None
        return await fetch_jwks(
            self.url, etag=etag, seconds=seconds, plain_http_anywhere=self._plain_http
        )


def _read_file(path: Path) -> object:
    with path.open("rb") as file:
        return parse_jwks(file.read(MAX_JWKS_BYTES + 1))
