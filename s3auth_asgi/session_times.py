"""When a session was opened, as every host judges it: by the store's clock where its
login host's was far ahead.

A session's id begins with its opening time by its login host's clock (`identifiers`), and
its object holds that time too (`created_at`). A host whose clock runs far ahead (one that
booted ahead, before NTP set it right) would write a time that stays ahead in the store
after its clock is corrected: the session would escape an end of every session written
within that lead (`every_session`), live past its absolute lifetime by as much, and rank
newer than sessions opened after it for the cap (`session_cap`). So the opening time counts
at most the skew allowance S (`S3AUTH_REVOCATION_SKEW_SECONDS`) and a second past the
store's Last-Modified of the object, LM (whole seconds, rounded down): a host within S of
the store's clock never wrote a later one, and within the allowance the written time
stands, as it does for a rotation's time (`sessions._within_grace`) and the end of every
session's cut-off (`every_session.effective_ms`).

The object's Last-Modified is that of its last write, so the bound on the opening time
loosens with each rotation; the rotation writes the held time down (`Session.opened_ms`,
`created_at`, and the absolute expiry from it), so it keeps the bound of the first write
it read. Where only a listing is read (the sweep, the cap's ranking of sessions it does
not read), the listed Last-Modified holds the id's time alike. No request more: the
object or the listing is read anyway.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from .identifiers import session_created_ms
from .last_modified import latest_written
from .models import Session
from .storage import Versioned


def opened_ms(
    session_id: str, last_modified: dt.datetime, skew_seconds: int, written_ms: int = 0
) -> int:
    """When the session `session_id` was opened, in ms, as every host judges it (see the
    module): the time its id begins with, at most `skew_seconds` and a second past the
    `last_modified` of its object, and at most `written_ms`, the held time a rotation
    wrote down, if any (0: none)."""
    latest_ms = int(latest_written(last_modified, skew_seconds)) * 1000
    opened = min(session_created_ms(session_id), latest_ms)
    return min(opened, written_ms) if written_ms else opened


def held_to_store(found: Versioned[Session], skew_seconds: int) -> Session:
    """The session read, with its opening time (`Session.opened_ms`) and its creation time
    (`created_at`, which its absolute expiry counts from) held to the store's clock (see
    the module): what a refresh, the cap and the sessions page judge, and a rotation
    writes."""
    session = found.value
    opened = opened_ms(session.id, found.last_modified, skew_seconds, session.opened_ms)
    created = min(session.created_at, opened // 1000)
    return msgspec.structs.replace(session, opened_ms=opened, created_at=created)
