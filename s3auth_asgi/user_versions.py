"""The version of an account as its clients see it, for changes made on condition that it
is still the one they read (RFC 9110 §8.8.3, §13.1.1). An administrator who edits a list
(the scopes) sends the whole new list, computed from the list as read: made over another
administrator's change that landed meanwhile, it would undo that one (a scope taken away
given back). The auth app names the version in an `ETag`, and a change with `If-Match`
lands only on the version it names.

The version is a digest of the account as shown (`PublicUser`), so a strong validator:
whatever changes what a client sees changes it. It tells nothing the answer it comes with
does not, and nothing of the store, whose version tokens may be a digest of the whole
record, hash included, or the write's time. It is the same on every instance over the
store. What no client sees (an upgraded hash, the count of links mailed) leaves it as it
is: no client decided anything on that.

The check is a `require` of `update_user`: run on the record each attempt read, inside a
read-modify-write whose write is conditional on that read (`user_records`), so a change
landing between the check and the write makes the retry read it, and refuse."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Collection

import msgspec

from .errors import PreconditionFailedError
from .models import PublicUser, User

_encoder = msgspec.json.Encoder()


def version_of(shown: PublicUser) -> str:
    """The version of the account shown as `shown`: 22 URL-safe characters."""
    digest = hashlib.sha256(b"s3auth user version 1\0" + _encoder.encode(shown)).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def at_versions(
    versions: Collection[str],
    show: Callable[[User], PublicUser],
    require: Callable[[User], object] | None = None,
) -> Callable[[User], None]:
    """A `require` for `update_user`: it refuses the change (PreconditionFailedError) on a
    record not shown, by `show`, at one of `versions`; then runs `require`, if given."""

    def check(user: User) -> None:
        if version_of(show(user)) not in versions:
            raise PreconditionFailedError()
        if require is not None:
            require(user)

    return check
