"""Version tokens: what `Versioned.etag` holds and `Store.replace` takes back.

Callers treat a token as opaque: they get one from `get`, `create` or `replace` and hand it
to the next `replace`. Inside, it keeps what the backend reported of the object's version,
because backends condition a replace on different parts of it:

- S3, Azure, a local directory and memory on the ETag (`If-Match`);
- Google Cloud Storage on the object's generation (`x-goog-if-generation-match`), which
  obstore reports as `version`; its GCS store refuses a conditional replace that names no
  generation before sending anything.

So a token is the ETag alone when the backend reported no version (S3 and Azure without
versioning, local, memory: the same string as before), and both otherwise, handed back to
obstore together as it recommends. `s3auth check` needs a token the store never issued,
of the same form as the ones it does issue (`never_issued`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from obstore import UpdateVersion

NEVER_ISSUED_ETAG = '"s3auth-check-stale"'
NEVER_ISSUED_VERSION = "1"
"""A GCS generation is the write's time in microseconds, so 1 is never one; and a number,
which GCS requires of a generation condition (anything else is a 400, not a refusal)."""

_VERSIONED = re.compile(r"version=(?P<version>[^;]*);etag=(?P<etag>.*)", re.DOTALL)


def encode(e_tag: str | None, version: str | None) -> str:
    """The token for an object whose ETag and version (either may be missing) are these."""
    if version is None:
        return e_tag or ""
    return f"version={version};etag={e_tag or ''}"


def put_mode(token: str) -> UpdateVersion:
    """obstore's `mode` for a replace conditioned on `token`."""
    found = _VERSIONED.fullmatch(token)
    if found is None:
        return {"e_tag": token}
    return {"e_tag": found["etag"] or None, "version": found["version"]}


def never_issued(token: str) -> str:
    """A token of the same form as `token` that no store issued: a write with it must be
    refused by any store that honours its conditions."""
    if _VERSIONED.fullmatch(token) is None:
        return NEVER_ISSUED_ETAG
    return encode(NEVER_ISSUED_ETAG, NEVER_ISSUED_VERSION)
