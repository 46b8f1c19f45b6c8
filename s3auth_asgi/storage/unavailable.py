"""What a failed store request becomes: a StoreUnavailableError whose detail says only
whether reading or writing failed, for it is the public problem detail (it names no key,
path or exception); the key and what the store said go to the "s3auth_asgi.storage" log.

A bucket (on Azure, a container) that does not exist answers every request with a 404, as
a missing object does, and obstore raises the same FileNotFoundError for both (for a
conditional write, sometimes its failed precondition). Read as a missing object, it made
every user "not found" and every login a 401. What tells them apart is the code in the
service's answer, which obstore's message carries: `NoSuchBucket` on S3, S3-compatible
servers and GCS, `ContainerNotFound` on Azure, whose batch delete gives only the message.
Such a failure is a StoreUnavailableError whose detail says so: no retry will mend it.
"""

from __future__ import annotations

import logging

from ..errors import StoreUnavailableError
from ..shown_urls import redact_urls

logger = logging.getLogger("s3auth_asgi.storage")

READ_FAILED = "The store could not be read; try again later"
WRITE_FAILED = "The store could not be written; try again later"
OPEN_FAILED = "The store could not be opened; try again later"

_MISSING_HOLDER = (
    ("<Code>NoSuchBucket</Code>", "bucket"),
    ("<Code>ContainerNotFound</Code>", "container"),
    ("The specified container does not exist", "container"),
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
    (its URLs without user info or query string) go to the log."""
    lines = redact_urls(str(exc)).strip().splitlines()
    said = lines[0][:300] if lines else ""
    logger.warning("store %s %s failed: %s: %s", request, key, type(exc).__name__, said)
    holder = missing_holder(exc)
    if holder is not None:
        detail = f"{detail.split(';')[0]}: its {holder} does not exist"
    return StoreUnavailableError(detail)


def described(keys: list[str]) -> str:
    """The keys of a batch, as the log names them."""
    return keys[0] if len(keys) == 1 else f"{keys[0]} (and {len(keys) - 1} more)"
