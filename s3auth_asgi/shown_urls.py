"""What may be shown of a URL that may carry credentials (`shown_url`): a store's or the JWKS
target's, in `s3auth`'s output and in the settings' repr. User info (`s3://KEY:SECRET@bucket`)
and the query (an Azure SAS token, `?sv=…&sig=…`) are credentials obstore reads from the URL;
the fragment is dropped with them, since nothing needs it shown.

Libraries' messages quote the URLs of the requests that failed as they were made, and
every place that passes such a message on (the log, `s3auth`'s errors and `check`'s report)
shows it through `redact_urls`; where the message may quote a piece of a known URL rather
than the whole (http.client's `nonnumeric port: 'PASSWORD@host'`), through `redacted`.
Here rather than under `storage`, so that what reads no store (`JwksVerifier`) uses it
without loading the store's modules."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_USER_INFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.\-]*://)[^\s/?#@]*(?:@[^\s/?#@]*)*@")
"""A scheme, then the user info: everything of the authority up to its last `@`."""
_QUERY = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s?#\"'<>]*)[?#][^\s\"'<>)]*")


def shown_url(url: str, name: str = "S3AUTH_STORE_URL") -> str:
    """`url` without user info, query or fragment; `(name)` for one that cannot be parsed,
    of which no part can be told safe to show."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return f"({name})"
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def redact_urls(text: str) -> str:
    """`text` with the user info of every URL in it replaced by `…`, and its query string
    and fragment left out."""
    return _QUERY.sub(r"\1", _USER_INFO.sub(r"\1…@", text))


def redacted(text: str, url: str) -> str:
    """`text` through `redact_urls`, and with the user info, password, query and fragment
    of `url` replaced by `…` wherever they appear on their own."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_urls(text)
    user_info = parts.netloc.rpartition("@")[0]
    pieces = (user_info, user_info.partition(":")[2], parts.query, parts.fragment)
    text = redact_urls(text)
    for piece in sorted(filter(None, pieces), key=len, reverse=True):
        text = text.replace(piece, "…")
    return text
