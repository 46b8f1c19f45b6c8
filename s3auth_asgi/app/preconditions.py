"""Conditional changes of an account over HTTP (RFC 9110 §13.1.1): the `ETag` that names
the version of the stored record an answer shows the account of, and the `If-Match` of a
change or a deletion, read as the versions it may land on (`user_versions`)."""

from __future__ import annotations

import re

from starlette.requests import Request

from ..models import User
from ..user_versions import version_of
from .errors import MalformedIfMatchError

_ELEMENT = re.compile(r'[ \t]*(?:(W/)?"([\x21\x23-\x7e\x80-\xff]*)")?[ \t]*(?:,|\Z)')
"""One element of a list of entity tags, empty ones too (RFC 9110 §5.6.1), and its
comma: `W/` if weak, the tag's characters (`etagc`; a header's bytes beyond ASCII are
latin-1 characters here, as `obs-text` holds them)."""

IF_MATCH_DESCRIPTION = (
    "The `ETag` of the account as read (`GET /admin/users/{user_id}`, or this operation's "
    "last answer): the change is made only if the account is still at that version, else "
    "412 `precondition_failed` and nothing is changed. A weak tag never matches; `*`, or "
    "no header, changes the account whatever its version."
)
DELETE_HEADER = (
    "If-Match",
    "The `ETag` of the account as read (`GET /admin/users/{user_id}`, or a `PATCH`'s "
    "answer): the account is deleted only if it is still at that version, else 412 "
    "`precondition_failed` and nothing is deleted. A weak tag never matches; `*`, or no "
    "header, deletes the account whatever its version.",
)
IF_MATCH_DELETE = (
    "With `If-Match`, deleted only at the version it names (412 `precondition_failed` "
    "otherwise, nothing deleted), checked again inside the conditional write that closes "
    "the account, so that no change landing after the check is deleted over."
)
IF_MATCH_ADVICE = (
    "`scopes` replaces the whole list: a client that computes it from a list it read "
    "should send that read's `ETag` in `If-Match`, so that it does not undo another "
    "administrator's change made meanwhile (a scope taken away, given back). 412 "
    "`precondition_failed`: read the account again and decide again; an `If-Match` that "
    "is not a list of entity tags is 400 `malformed_if_match`."
)


def etag_of(user: User) -> str:
    """The strong entity tag of the account's stored record `user`."""
    return f'"{version_of(user)}"'


def if_match(request: Request) -> frozenset[str] | None:
    """The versions the request's If-Match lets a change land on; None without one, or
    for `*`, which any account there is matches (one that is not is a 404 all the same).
    A weak tag matches nothing, as If-Match compares strongly (RFC 9110 §8.8.3.2); an
    empty list nothing either. MalformedIfMatchError for anything else."""
    lines = request.headers.getlist("if-match")
    if not lines:
        return None
    value = ",".join(lines)  # a field sent on several lines is their list (RFC 9110 §5.3)
    if value.strip(" \t") == "*":
        return None
    versions: set[str] = set()
    at = 0
    while at < len(value):
        element = _ELEMENT.match(value, at)
        if element is None:
            raise MalformedIfMatchError()
        weak, tag = element.groups()
        if tag is not None and weak is None:
            versions.add(tag)
        at = element.end()
    return frozenset(versions)
