"""Session generations: why a session that a login racing an account change wrote cannot
refresh.

The race. A login reads the user record (active, the old password hash), and only then
writes its session. An administrator who disables the account, changes its password or
privileges, or deletes it in between lists the user's sessions to end them before that
session exists, so the revocation cannot name it; and a refresh reads only the session,
never the user record. Such a login reads the record back and keeps nothing
(`session_opening`); but a session may be written so all the same (by a host of an earlier
version, or one whose read back failed), and without more would refresh until its
absolute lifetime.

The model. Every change that must end the user's sessions writes a new
`User.session_generation` in the same user-record write it makes anyway; a session records
the generation of the user record its login read (`Session.user_generation`). The change
(a deletion aside, below) ends the sessions it lists before that write (`user_records`),
then writes a marker, `sessions/{user_id}/~generation.{generation}`, BEFORE it lists the
sessions again. A session written before the marker was written before that listing, so
it is named and ended as the others; a session written after it is seen, by every
refresh, with the marker: the refresh LISTs the user's sessions for the cap anyway, and
the marker is in that listing. A refresh whose session is of an older generation than the
newest marker ends the session (its access tokens too) and is refused: login and refresh
cost no extra request. Until then it neither counts against the cap nor is shown on the
sessions page (`session_rules`). Older markers are deleted in the change's last batch
DELETE.

Generations are ordered without any clock: one is an 8-hex-digit counter (the previous
generation's plus one, computed in the If-Match read-modify-write of the user record, so
the last write holds the highest) followed by random bits. Two concurrent changes thus
agree on which marker is the newest whatever order their markers land in, and a session
opened after a change whose marker is not written yet (a higher generation than any
marker) is not refused. A session without the field ("") is older than any marker.

A session's id carries its generation's counter too (`identifiers.new_session_id`), so a
listing tells which generation each session was opened from without reading it. A change
ends only the sessions of the generation of the record it decided on and older ones
(`opened_up_to`): ending them before its write, it cannot yet know whether that record is
still the user's, and a newer generation's sessions were opened after a change that
landed first, which the one that read the older record must not undo (`user_records`). An
id without the counter counts as the oldest generation's: ended by every change.

Deletion writes `~generation.deleted`, which outranks every generation, after the user's
objects are gone (so a crash before it never leaves a live user whose sessions cannot
refresh). Before that, it closes the user record (`user_records`), after which every
reader takes the account for gone; but a refresh reads no record, so a deletion cut short
after its close (the close's answer lost, the store failing before the batch DELETE) would
leave sessions that refresh on, of an account that nothing shows any more. So a deletion
first writes a closing marker, `sessions/{user_id}/~closing.{random}`, and only then closes
the record. A refresh whose listing holds one (and no `~generation.deleted`, which refuses
it anyway) reads the user record, 1 GET: closed, gone or unreadable, it ends the session
and every other one listed, their access tokens too, and is refused as a deleted
account's session is; open (a deletion that stopped before its close, or one under way,
whose listing comes after the refresh's write and ends the session) it goes on. So no
crash leaves the account open and its sessions refused, nor closed or gone and a session
of it refreshing. A late session is written after the deletion's listing, which is after
its close: its first refresh is refused, whether `~generation.deleted` has landed or not.

The closing marker is left for the sweep (below), by the deletion as by every change. A
change cannot delete it: it cannot tell whether a deletion whose close has not landed yet
is under way. The deletion does not: deleted with the record, a crash before
`~generation.deleted` lands would let a late session refresh, and deleted after it, it
would cost a request more and stop nothing, as `~generation.deleted` refuses first. One
that a deletion stopped before its close left costs each refresh of the user's sessions
a GET until it is swept. Each deletion writes one of its own name, so that a sweep never
deletes the one a deletion has just written.

The late session's access token, when a host issued one without reading the record back,
is named by no revocation, and lives out its lifetime (`S3AUTH_ACCESS_TOKEN_EXPIRE_MINUTES`)
wherever the token alone is checked; the login's read back (`session_opening`) is what
issues none. After a deletion or a disabling, the auth app's endpoints refuse such a token
all the same, and after a demotion its admin endpoints: they read the caller's user record
(`app.caller`).

A logout everywhere writes a generation too (`logout_everywhere`), its marker before its
revocation: what it leaves behind is refused by the marker long after the revocation has
lapsed. An owner's new password begins with one (`password_changes`).

Markers expire: no session outlives its creation plus the absolute lifetime, and the late
sessions a marker stops are opened about when it is written (those a closing marker stops,
before the close that follows it), so a marker older than the absolute lifetime stops
nothing and the sweep deletes it, a closing marker too, judging from the listing's
Last-Modified as it judges an idle session, twice the clock-skew allowance past that
(`last_modified`): a late session's creation time is read from its own host's clock.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from .identifiers import is_id, session_generation_counter
from .last_modified import lapsed_everywhere
from .models import ClosingMarker, GenerationMarker, User
from .privileges import is_administrator, scopes_after, stored_scopes
from .session_cap import listed_as_expired
from .settings import S3AuthSettings
from .storage import ObjectInfo, Store, StoreConflict, keys

_COUNTER_DIGITS = 8


def generation_counter(generation: str | None) -> int:
    """The counter a generation begins with; 0 for none ("" or None: `Session`)."""
    try:
        return int(generation[:_COUNTER_DIGITS], 16) if generation else 0
    except ValueError:
        return 0


def next_generation(previous: str) -> str:
    """A new generation, ranked above `previous` (a counter, then random bits)."""
    return f"{generation_counter(previous) + 1:0{_COUNTER_DIGITS}x}{secrets.token_hex(12)}"


def ends_sessions(user: User, changes: Mapping[str, Any]) -> bool:
    """Whether `changes` (fields of a user record and their new values) applied to `user`
    disable it or change its privileges, and so must end its sessions."""
    active = changes.get("is_active", user.is_active)
    admin = changes.get("is_admin", user.is_admin)
    scopes = scopes_after(user.scopes, changes)
    return (
        (user.is_active and not active)
        or is_administrator(user.is_admin, user.scopes) != is_administrator(admin, scopes)
        or stored_scopes(user.scopes) != stored_scopes(scopes)
    )


def _rank(generation: str) -> tuple[bool, str]:
    return generation == keys.DELETED_GENERATION, generation


def newest_marker(listed: Iterable[ObjectInfo]) -> str | None:
    """The generation of the newest marker among listed keys; None when there is none."""
    generations = [g for info in listed if (g := keys.marker_generation(info.key)) is not None]
    return max(generations, key=_rank) if generations else None


def predates(session_generation: str, newest: str | None) -> bool:
    """Whether a session of `session_generation` was opened before the change that wrote
    the newest marker (and so may not refresh)."""
    return newest is not None and _rank(session_generation) < _rank(newest)


def is_session_key(key: str) -> bool:
    """Whether a listed key under `sessions/` is a session's, `sessions/{user}/{id}.json`:
    not a marker, nor another tool's object beside the sessions (a backup of one, a copy in
    a folder), which is no session to list, count against the cap, end or sweep."""
    parts = key.split("/")
    name = parts[-1]
    return len(parts) == 3 and name.endswith(".json") and is_id(name.removesuffix(".json"))


def sessions_only(listed: Iterable[ObjectInfo]) -> list[ObjectInfo]:
    """The listed sessions: without the markers and other tools' objects."""
    return [info for info in listed if is_session_key(info.key)]


def being_deleted(listed: Iterable[ObjectInfo]) -> bool:
    """Whether the listing holds a deletion's closing marker and the deletion's
    `~generation.deleted` has not landed: the user record tells whether its sessions may
    refresh (see the module)."""
    listed = list(listed)
    return newest_marker(listed) != keys.DELETED_GENERATION and any(
        keys.is_closing_marker(info.key) for info in listed
    )


def opened_up_to(listed: Iterable[ObjectInfo], generation: str) -> list[ObjectInfo]:
    """The listed sessions opened from a record of `generation` or an older one, by the
    counter in their ids (see the module): those a change decided on such a record ends."""
    counter = generation_counter(generation)
    return [
        info
        for info in sessions_only(listed)
        if session_generation_counter(keys.id_from_key(info.key)) <= counter
    ]


def markers_older_than(listed: Iterable[ObjectInfo], generation: str) -> list[str]:
    """The keys of the listed markers that `generation`'s marker supersedes."""
    return [
        info.key
        for info in listed
        if (g := keys.marker_generation(info.key)) is not None and _rank(g) < _rank(generation)
    ]


def sweepable(info: ObjectInfo, settings: S3AuthSettings, now: float) -> bool:
    """Whether the sweep may delete a listed object under `sessions/`: a session that has
    expired (`session_cap.listed_as_expired`), or a marker (a generation's, a deletion's
    closing one) too old to stop any session (see the module)."""
    if is_session_key(info.key):
        return listed_as_expired(info, settings, now)
    if not keys.is_session_marker(info.key):
        return False  # another tool's object
    return lapsed_everywhere(
        info, settings.session_absolute_seconds, settings.revocation_skew_seconds, now
    )


async def write_marker(store: Store, user_id: str, generation: str) -> None:
    """Write the marker of `generation` (1 PUT). Already there: the same change was
    retried, which is success."""
    with contextlib.suppress(StoreConflict):
        await store.create(
            keys.generation_marker(user_id, generation), GenerationMarker(generation)
        )


async def write_closing_marker(store: Store, user_id: str) -> None:
    """Write a deletion's closing marker of the user (1 PUT), before its record is closed
    (see the module). Its key is new: found there, it is this write's own, resent."""
    with contextlib.suppress(StoreConflict):
        await store.create(keys.closing_marker(user_id), ClosingMarker(user_id))
