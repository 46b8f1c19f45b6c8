"""What may be shown of a URL that may carry credentials (`shown_url`): a store's or the JWKS
target's, in `s3auth`'s output and in the settings' repr. User info (`s3://KEY:SECRET@bucket`)
and the query (an Azure SAS token, `?sv=…&sig=…`) are credentials obstore reads from the URL;
the fragment is dropped with them, since nothing needs it shown."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def shown_url(url: str, name: str = "S3AUTH_STORE_URL") -> str:
    """`url` without user info, query or fragment; `(name)` for one that cannot be parsed,
    of which no part can be told safe to show."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return f"({name})"
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
