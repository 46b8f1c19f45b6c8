"""What a store URL names, decided before anything is opened: the directory of a `file://`
URL, and whether obstore reads any other URL as S3, GCS or Azure (`check_store_url`, by which
both the settings and the store judge it).

A `file://` URL names a directory on this machine. `file://` alone is what
`file://$AUTH_DIR` becomes with AUTH_DIR unset, and read as the current directory it put the
store beside the application's files; `file://localhost/srv/auth` (RFC 8089's spelling of
`file:///srv/auth`) read as `./localhost/srv/auth` put it where nobody looked. So the host
part must be empty or `localhost`, except for the relative forms the store has always
taken: a first segment starting with a dot (`file://./dir`, `file://.auth`) is under the
current directory, one starting with `~` under a home directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from ..errors import ConfigurationError

STORE_URL = "S3AUTH_STORE_URL"
FILE_FORMS = "file:///absolute/path or file://./relative/path"


def check_store_url(url: str) -> Path | None:
    """The directory a `file://` store URL names (unresolved), None for `memory://` and the
    object stores; ConfigurationError naming S3AUTH_STORE_URL for any URL the store cannot
    open by its form. Opens nothing, creates nothing and asks no server."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return None
    if scheme == "file":
        return local_path(url)
    check_scheme(url, scheme)
    return None


def local_path(url: str, variable: str = STORE_URL) -> Path:
    """The path of a `file://` URL, as given (unresolved): `file:///abs` (and
    `file://localhost/abs`), `file://./rel`, `file://~/dir`. ConfigurationError naming
    `variable` for a URL naming nothing but `/`, or naming another host."""
    rest = url[len("file://") :]
    host, slash, path = rest.partition("/")
    if host.startswith((".", "~")):
        named = rest
    elif host.lower() in ("", "localhost"):
        named = slash + path
    else:
        shown = host.rsplit("@", 1)[-1]  # user info may hold a password
        raise ConfigurationError(
            f"{variable}: a file:// URL is a path on this machine, and "
            f"{shown[:100]!r} is read as a host; use {FILE_FORMS}"
        )
    named = unquote(named, errors="surrogateescape")  # bytes not UTF-8: as os.fsdecode reads them
    if not named.strip("/"):
        raise ConfigurationError(
            f"{variable}: {url[:100]!r} names no directory (is a variable in it unset?); "
            f"use {FILE_FORMS}"
        )
    return Path(named).expanduser()


def file_url(path: Path) -> str:
    """The `file://` URL `local_path` reads as `path` (made absolute): every byte of its
    names but the unreserved ones percent-encoded, so that a `%41`, `#` or `?` in a
    directory's name stays in it rather than naming another."""
    return "file://" + quote(os.fsencode(Path(path).absolute()))


OBSTORE_KINDS = ("s3", "gcs", "azure")
"""What obstore may open for this package (`obstore.parse_scheme`): its plain HTTP store has
no conditional writes, so every user and session would be at risk (`s3auth check`)."""
SCHEMES_HINT = "s3://bucket/prefix, gs://bucket/prefix, az://container/prefix, file:///path"
HOLDERS = {
    **dict.fromkeys(("s3", "s3a", "gs"), "bucket"),
    **dict.fromkeys(("az", "adl", "azure", "abfs", "abfss"), "container"),
}
"""What the host part of each obstore scheme names, which obstore cannot do without."""


def check_scheme(url: str, scheme: str) -> None:
    """ConfigurationError unless obstore reads `url` as S3, GCS or Azure (`s3a://`,
    `abfs(s)://`, `https://…amazonaws.com/…` and the like included); for a scheme of
    theirs with no bucket or container (`s3://`), one saying that it needs one."""
    import obstore  # here: settings for memory:// and file:// stores need no store library

    try:
        kind: str | None = obstore.parse_scheme(url)
    except Exception:  # obstore's error for a URL it does not recognise
        kind = None
    if kind in OBSTORE_KINDS:
        return
    holder = HOLDERS.get(scheme)
    if kind == "http":
        reason = "a plain http(s):// store has no conditional writes"
        hint = f"use {SCHEMES_HINT} (for an S3-compatible server, s3:// and AWS_ENDPOINT_URL)"
    elif kind is None and holder and not urlsplit(url).hostname:
        reason = f"{scheme}:// names no {holder}"
        hint = f"use {scheme}://{holder}/prefix (the {holder} must exist)"
    else:
        reason = f"the scheme {scheme}:// is not supported" if scheme else "no scheme"
        hint = f"use {SCHEMES_HINT} or memory://"
    raise ConfigurationError(f"{STORE_URL}: {reason}; {hint}")
