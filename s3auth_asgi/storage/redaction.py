"""What may be shown of the store library's messages: they quote the URLs of the requests
that failed as they were made, with the user info of an endpoint given as
`http://user:password@host` and query strings that may carry a signature or a SAS token.
Every place that passes such a message on (the log, `s3auth`'s errors and `check`'s
report) shows it through `redact_urls`."""

from __future__ import annotations

import re

_USER_INFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.\-]*://)[^\s/?#@]*(?:@[^\s/?#@]*)*@")
"""A scheme, then the user info: everything of the authority up to its last `@`."""
_QUERY = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s?#\"'<>]*)[?#][^\s\"'<>)]*")


def redact_urls(text: str) -> str:
    """`text` with the user info of every URL in it replaced by `…`, and its query string
    and fragment left out."""
    return _QUERY.sub(r"\1", _USER_INFO.sub(r"\1…@", text))
