"""Writing the JWKS to an object outside the store, for a CDN or a static site to serve.

`S3AUTH_JWKS_PUBLISH_URL` names the object: `file:///srv/www/.well-known/jwks.json` (written
to a temporary file and renamed, world-readable, since a web server serves it) or an
obstore URL (`s3://public-bucket/jwks.json`, `gs://…`, `az://…`, written with the same
Content-Type and Cache-Control as the endpoint's answer). What is written is the public
keys only, built by `KeySet.jwks`.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio.to_thread

from ..errors import ConfigurationError, StoreUnavailableError
from ..settings import env_name
from ..types import Clock, elapsed_clock
from .keyset import KeySet, jwks_bytes, jwks_fingerprint

JWKS_MEDIA_TYPE = "application/jwk-set+json"
logger = logging.getLogger("s3auth_asgi")


class JwksPublication:
    """What one process has written to `url`: the JWKS of its keys, again whenever the
    document changes. A write that fails is logged and tried again once `retry_seconds`
    have passed, and never costs the keys: they were read, they verify and sign. `kids`
    names the keys of the last document written; a key not among them has not been
    published by this process."""

    def __init__(self, url: str, *, max_age: int, retry_seconds: float, clock: Clock) -> None:
        self.url = url
        self.max_age = max_age
        self.retry_seconds = retry_seconds
        self.kids: frozenset[str] = frozenset()
        self._clock = clock
        self._elapsed = elapsed_clock(clock)
        self._written = ""  # the fingerprint of the document last written
        self._failed_at = float("-inf")

    async def publish(self, keys: KeySet) -> bool:
        """Whether `url` holds the JWKS of `keys`, written now or before (False, without a
        try, within `retry_seconds` of a failed one)."""
        if self._elapsed() - self._failed_at < self.retry_seconds:
            return False
        document = keys.jwks(self._clock())
        fingerprint = jwks_fingerprint(document)
        if fingerprint == self._written:
            return True
        try:
            await publish_jwks(self.url, document, self.max_age)
        except StoreUnavailableError as error:
            self._failed_at = self._elapsed()
            # The variable, not its value: a URL may carry credentials.
            logger.error(
                "the JWKS could not be written to %s, tried again in %g s: %r",
                env_name("jwks_publish_url"),
                self.retry_seconds,
                error,
            )
            return False
        self._written = fingerprint
        self.kids = frozenset(key["kid"] for key in document["keys"])
        return True


def check_publish_url(url: str) -> None:
    """ConfigurationError naming the variable unless `url` names an object this module can
    write: a file (`file://`, read as the store's own `file://` URLs are), or an object in
    a store obstore opens as S3, GCS or Azure, the kinds the store may be. The settings are
    checked by this when they are made, so that a key change never ends with a JWKS that
    cannot be written for the form of its URL. The message names no URL, which may carry
    credentials."""
    from ..storage.urls import OBSTORE_KINDS, local_path

    variable = env_name("jwks_publish_url")
    if urlsplit(url).scheme == "file":
        if url.endswith("/") or not local_path(url, variable).name:
            raise ConfigurationError(
                f"{variable} must name a file, not a directory "
                "(file:///srv/www/.well-known/jwks.json)"
            )
        return
    import obstore

    try:
        kind: str | None = obstore.parse_scheme(url)
    except Exception:  # obstore's error for a URL it does not recognise
        kind = None
    if kind not in OBSTORE_KINDS:
        raise ConfigurationError(
            f"{variable} must be an s3://, gs://, az:// or file:// URL naming the object to "
            "write (s3://public-bucket/.well-known/jwks.json)"
        )
    directory, _, name = url.rpartition("/")
    if not name or "://" not in directory:
        raise ConfigurationError(
            f"{variable} must name an object, not a bucket (s3://public-bucket/jwks.json)"
        )


async def publish_jwks(url: str, jwks: dict[str, Any], max_age: int) -> None:
    check_publish_url(url)
    data = jwks_bytes(jwks)
    if urlsplit(url).scheme == "file":
        from ..storage.urls import local_path

        path = local_path(url, env_name("jwks_publish_url"))
        await anyio.to_thread.run_sync(_write_file, path, data)
        return
    import obstore
    from obstore.store import from_url

    from ..storage.client import network_options

    directory, _, name = url.rpartition("/")
    try:
        # A key about to sign waits for this write: retried no longer than a store's.
        store = from_url(directory, **network_options({}))
        await obstore.put_async(
            store,
            name,
            data,
            attributes={
                "Content-Type": JWKS_MEDIA_TYPE,
                "Cache-Control": f"public, max-age={max_age}",
            },
        )
    except Exception as exc:  # obstore's errors, whatever the backend
        from ..storage.unavailable import redacted_error

        raise StoreUnavailableError("The JWKS could not be published") from redacted_error(exc)


def _write_file(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".jwks-")
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError as exc:
        raise StoreUnavailableError("The JWKS could not be published") from exc
