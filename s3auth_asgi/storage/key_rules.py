"""What an object key (or a listing prefix) may be: the same rule on every store.

A key is a relative path: segments joined by "/", none empty, "." or "..", and no
backslash or control character anywhere. Of other keys, obstore quietly takes some for
another (`/a` and `a/` for `a`) and refuses others only as a request fails, which read as
the store's failure; and a `file://` store joined them to its directory, so that `../x` or
`/etc/x` were written outside it. Two more names belong to a `file://` store's machinery,
and no store takes them, so that a key means the same on every store: the control
directory (`local_listing.CONTROL_DIR`) as a first segment, and an object name of obstore's
staging files (`name#digits`), which it neither reads nor lists.

The keys this package builds hold no name a user chose but through a digest (`keys`), so a
refused key is a caller's error, never a store's: ValueError, before any request.

A listing may still find such a key: an object other software wrote into one of the
package's prefixes (obstore lists a name with a backslash or a staging file's name on S3
or in memory, and a `file://` directory may hold any file name). None of this package's
objects has one, and every request for it would be refused, so a listing leaves it out
(`ForeignKeys`): a sweep or a user list goes on as if it were not there. So does a key
outside the prefix listed or not after its offset, as obstore names a folder marker
(`listed_outside`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from .local_listing import CONTROL_DIR, is_staging_name

logger = logging.getLogger("s3auth_asgi.storage")

# Searched in C: every key a listing gives is checked, a page of 1,000 between two turns of
# the event loop, which a character-by-character check in Python held for 8 ms.
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def check_key(key: str) -> str:
    """`key`, when it may name an object; ValueError saying why not otherwise."""
    problem = _key_problem(key)
    if problem:
        raise ValueError(f"store key {key!r}: {problem}")
    return key


def check_keys(keys: Iterable[str]) -> list[str]:
    """The keys, all checked before any is used (a batch refused whole)."""
    return [check_key(key) for key in keys]


def check_prefix(prefix: str) -> str:
    """`prefix`, when it may be listed: "" (everything), or a key's directory, with or
    without its final "/"; ValueError saying why not otherwise."""
    problem = _path_problem(prefix.removesuffix("/") or prefix) if prefix else None
    if problem:
        raise ValueError(f"store prefix {prefix!r}: {problem}")
    return prefix


class ForeignKeys:
    """The keys a store's listings found that no request may name (see the module): each
    is logged once, at warning level, up to `REMEMBERED` of them."""

    REMEMBERED = 1000

    def __init__(self) -> None:
        self._logged: set[str] = set()

    def left_out(self, key: str, prefix: str = "", offset: str | None = None) -> bool:
        """Whether a listing of `prefix` after `offset` leaves `key` out: a key no request
        may name, or one obstore read from a folder marker (`listed_outside`)."""
        problem = _key_problem(key) or listed_outside(key, prefix, offset)
        if problem is None:
            return False
        if key not in self._logged and len(self._logged) < self.REMEMBERED:
            self._logged.add(key)
            logger.warning(
                "store listing: %r left out, no key of this package's: %s", key[:300], problem
            )
        return True


def listed_outside(key: str, prefix: str, offset: str | None) -> str | None:
    """Why a key a listing of `prefix` after `offset` gave is not one of its objects; None
    when it is. A tool that shows a bucket as folders (a console's "Create folder", a FUSE
    mount's mkdir) leaves an empty object named after the folder, `users/`, and obstore
    reads that name without its final "/": as `users`, outside the prefix `users/`, or for
    `users/old/` as `users/old`, which the service lists again after that very key (its
    own name sorts after it), so that a page ending there was followed by the same page for
    ever. Never an object this package wrote or could read."""
    if prefix and not key.startswith(prefix if prefix.endswith("/") else prefix + "/"):
        return "not under the prefix listed: a folder marker's name"
    if offset is not None and key <= offset:
        return "not after the listing's offset: a folder marker's name"
    return None


def _key_problem(key: str) -> str | None:
    return _path_problem(key) or _staging_problem(key)


def _path_problem(path: str) -> str | None:
    if not path:
        return "it is empty"
    if path.startswith("/"):
        return "it starts with '/': a key is relative to the store"
    if "\\" in path:
        return "a backslash is not allowed"
    if _CONTROL.search(path):
        return "a control character is not allowed"
    segments = path.split("/")
    if "" in segments:
        return "an empty segment ('//', or a final '/') is not allowed"
    if "." in segments or ".." in segments:
        return "a '.' or '..' segment is not allowed"
    if segments[0] == CONTROL_DIR:
        return f"{CONTROL_DIR}/ is the store's own"
    return None


def _staging_problem(key: str) -> str | None:
    if is_staging_name(key.rsplit("/", 1)[-1]):
        return "a name ending in '#' and digits is a staging file's on a file:// store"
    return None
