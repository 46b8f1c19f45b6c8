"""What a failed store request becomes: a StoreUnavailableError whose detail says only
whether reading or writing failed, for it is the public problem detail (it names no key,
path or exception); the key and what the store said go to the "s3auth_asgi.storage" log.

A bucket (on Azure, a container) that does not exist answers every request with a 404, as
a missing object does, and obstore raises the same FileNotFoundError for both (for a
conditional write, sometimes its failed precondition). Read as a missing object, it made
every user "not found" and every login a 401. What tells them apart is the code in the
service's answer, which obstore's message carries: `NoSuchBucket` on S3, S3-compatible
servers and GCS, `ContainerNotFound` on Azure, whose batch delete gives only the message.
A `file://` store's directory is its bucket: removed, or a volume unmounted from under it
(leaving the empty directory it was mounted on), every file is missing, and so is the
control directory that opening the store made (`local`), which tells the two apart.
Such a failure is a StoreUnavailableError whose detail says so: no retry will mend it.

The library's own exception is not the error's cause: its message quotes the URLs of the
requests as they were made, an endpoint's password among them (`AWS_ENDPOINT_URL=
http://user:PASSWORD@host`) or a signed query, and an application that logs the error with
its traceback (`logger.exception`, a debug page, an error tracker) would show them. The
cause is a RedactedStoreError standing in for it (`redacted_error`): its class name and its
message, every URL in it without user info or query. (The original stays only as the
error's `__context__`, which a traceback leaves out once a cause is given.)

One failure is the configuration's, though obstore words it as a passing one: an endpoint
over plain http without the variable that allows it, which obstore refuses to send to and
reports as "HTTP error: builder error" (its debug dump: `BadScheme`). Its stand-in carries
what to do (`hint`, `plain_http_hint`), which the log and `s3auth` show in its place.
"""

from __future__ import annotations

import logging

from ..errors import StoreUnavailableError
from ..shown_urls import redact_urls

logger = logging.getLogger("s3auth_asgi.storage")

READ_FAILED = "The store could not be read; try again later"
WRITE_FAILED = "The store could not be written; try again later"
OPEN_FAILED = "The store could not be opened; try again later"

DIRECTORY_GONE = "The store's directory is gone (its .s3auth control directory with it)"
"""What a `file://` store whose directory was removed, or unmounted from under it, says
(`local.LocalConditionalWrites.vanished`)."""

_MISSING_HOLDER = (
    ("<Code>NoSuchBucket</Code>", "bucket"),
    ("<Code>ContainerNotFound</Code>", "container"),
    ("The specified container does not exist", "container"),
    (DIRECTORY_GONE, "directory"),
)


_ALLOW_HTTP = (("Generic S3 error", "AWS_ALLOW_HTTP"), ("MicrosoftAzure error", "AZURE_ALLOW_HTTP"))
"""The variable that lets obstore send to a plain-http endpoint, by the store its message
names (for GCS there is none: its `client_options`' `allow_http`)."""


class RedactedStoreError(Exception):
    """What the store library raised, as anyone may be shown it: the name of its class
    (`kind`) and its message, every URL in it without user info or query (`said`); and
    what to do, when the failure is one that no retry mends (`hint`, else None)."""

    def __init__(self, kind: str, said: str) -> None:
        self.hint = plain_http_hint(said)
        super().__init__(f"{kind}: {said}" if self.hint is None else f"{self.hint}\n{kind}: {said}")
        self.kind = kind
        self.said = said


def redacted_error(exc: BaseException) -> RedactedStoreError:
    """The stand-in for `exc` that a StoreUnavailableError raised for it is chained from."""
    if isinstance(exc, RedactedStoreError):
        return exc
    return RedactedStoreError(type(exc).__name__, redact_urls(str(exc)))


def plain_http_hint(said: str) -> str | None:
    """What to do when the store library refused to send a request to a plain-http
    endpoint (it says "builder error", its debug dump `BadScheme`); None for any other
    failure."""
    if "builder error" not in said or "BadScheme" not in said:
        return None
    variable = next((name for sign, name in _ALLOW_HTTP if sign in said), None)
    allow = f"{variable}=true" if variable else "allow_http in the store's client_options"
    return (
        f"the store's endpoint is plain http://, which is refused unless {allow} is set: "
        "set it for a plain-http endpoint such as a local test server, never in production, "
        "where the endpoint should be https://"
    )


def missing_holder(exc: BaseException) -> str | None:
    """ "bucket" or "container" when `exc` is the store saying that it does not exist."""
    said = str(exc)
    for sign, holder in _MISSING_HOLDER:
        if sign in said:
            return holder
    return None


def unavailable(request: str, key: str, exc: BaseException, detail: str) -> StoreUnavailableError:
    """The error for a failed request, with a `detail` fit for anyone to read (saying so
    when the bucket does not exist); the key and the first line of what the store said
    (its URLs without user info or query string) go to the log. Raise it `from
    redacted_error(exc)`."""
    shown = redacted_error(exc)
    lines = shown.said.strip().splitlines()
    said = lines[0][:300] if lines else ""
    if shown.hint is not None:
        said = f"{said}: {shown.hint}"
    logger.warning("store %s %s failed: %s: %s", request, key, shown.kind, said)
    holder = missing_holder(exc)
    if holder is not None:
        detail = f"{detail.split(';')[0]}: its {holder} does not exist"
    return StoreUnavailableError(detail)


def described(keys: list[str]) -> str:
    """The keys of a batch, as the log names them."""
    return keys[0] if len(keys) == 1 else f"{keys[0]} (and {len(keys) - 1} more)"
