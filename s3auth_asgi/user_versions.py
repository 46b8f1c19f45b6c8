"""The version of an account as its clients see it, for changes made on condition that it
is still the one they read (RFC 9110 §8.8.3, §13.1.1). An administrator who edits a list
(the scopes) sends the whole new list, computed from the list as read: made over another
administrator's change that landed meanwhile, it would undo that one (a scope taken away
given back). The auth app names the version in an `ETag`, and a change or a deletion with
`If-Match` lands only on the version it names.

The version is a digest of the stored record alone, every field of it, so a strong
validator: whatever a write changes changes it (and every write changes `updated_at`
anyway). Not of the account as shown: what that shows of an address waiting for its link
is judged by the answering instance's clock near the link's expiry, and two instances
whose clocks differ by seconds would name one record by two versions, refusing an edit
read on one and sent to the other. So a `GET` may show the waiting address on one
instance and not on another, or before the link's expiry and not after it, under one
version: the record, which a change applies to, is the same. It is the same on every
instance over the store (of one version of this package, which decodes a record into the
same fields), and says nothing of the store, whose version tokens may be the write's
time. The record's secrets go into the digest with the rest: argon2id hashes and sealed
seeds, of which a truncated SHA-256 over the whole record tells nothing.

The check is a `require` of `update_user` and `delete_user`: run on the record each
attempt read, inside a read-modify-write whose write is conditional on that read
(`user_records`), so a change landing between the check and the write makes the retry
read it, and refuse."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Collection

import msgspec

from .errors import PreconditionFailedError
from .models import User

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(User)


def version_of(user: User) -> str:
    """The version of the stored record `user`: 22 URL-safe characters. Of the record as
    the store gives it back, whichever instance reads it: one made in memory may hold a
    value the store's JSON gives back as another of its type (a whole number as a float)."""
    stored = _encoder.encode(_decoder.decode(_encoder.encode(user)))
    digest = hashlib.sha256(b"s3auth user version 2\0" + stored).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def at_versions(
    versions: Collection[str], *, require: Callable[[User], object] | None = None
) -> Callable[[User], None]:
    """A `require` for `update_user` and `delete_user`: it refuses the change
    (PreconditionFailedError) on a record not at one of `versions`; then runs `require`,
    if given."""

    def check(user: User) -> None:
        if version_of(user) not in versions:
            raise PreconditionFailedError()
        if require is not None:
            require(user)

    return check
