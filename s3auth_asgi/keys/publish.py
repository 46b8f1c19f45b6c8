"""Writing the JWKS to an object outside the store, for a CDN or a static site to serve.

`S3AUTH_JWKS_PUBLISH_URL` names the object: `file:///srv/www/.well-known/jwks.json` (written
to a temporary file and renamed, world-readable, since a web server serves it) or an
obstore URL (`s3://public-bucket/jwks.json`, `gs://…`, `az://…`, written with the same
Content-Type and Cache-Control as the endpoint's answer). What is written is the public
keys only, built by `KeySet.jwks`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import anyio.to_thread

from ..errors import ConfigurationError, StoreUnavailableError
from .keyset import jwks_bytes

JWKS_MEDIA_TYPE = "application/jwk-set+json"


async def publish_jwks(url: str, jwks: dict[str, Any], max_age: int) -> None:
    data = jwks_bytes(jwks)
    parts = urlsplit(url)
    if parts.scheme == "file":
        await anyio.to_thread.run_sync(_write_file, unquote(url[len("file://") :]), data)
        return
    import obstore
    from obstore.store import from_url

    directory, _, name = url.rpartition("/")
    if not name or "://" not in directory:
        raise ConfigurationError("S3AUTH_JWKS_PUBLISH_URL must name an object, not a bucket")
    try:
        store = from_url(directory)
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
        raise StoreUnavailableError("The JWKS could not be published") from exc


def _write_file(name: str, data: bytes) -> None:
    path = Path(name).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".jwks-")
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError as exc:
        raise StoreUnavailableError("The JWKS could not be published") from exc
