"""Ending every session of every user at once, for an operator answering an incident,
without a new secret key (which would also void the mailed links and whatever else it
keys): one object, `sessions/not-before`, holds a time, and every session opened before it
ends.

What it ends. A session is judged by the time its id begins with (`identifiers`): when it
was opened, by its login host's clock, held to the store's where its object is read or
listed (`session_times`), so a login host far ahead spares none. One opened before the
cut-off is refused at its refresh (and its object deleted), is not shown on the sessions
page nor counted against the cap, and every access token of it is refused, by its `sid`
(the id's time alone: no object is read there): also one that a refresh on a host that had
not read the cut-off yet issued after it (a token's `iat` would let that one live out its
lifetime). The comparison is of two written times, so every host, and the sweep, which
deletes such sessions from its listing (`cleanup_expired_tokens`), agree on it whatever
their clocks say. A login waiting for its second factor's code ends too: its token's issue
time is judged as a session's id is (`mfa_challenges`). Users log in again at once: a host
that knows the cut-off opens its sessions after it whatever its clock reads
(`session_opening`, as for a 0.1 logout everywhere).

How it is seen. Each process reads the object with its revocation sync (`blacklist`): one
GET per sync round, none per request, so it holds within the bound revocations do (twice
S3AUTH_REVOCATION_SYNC_SECONDS; at once in strict mode), and at once on the host that
wrote it, where a sync that read the store before the write does not lift it
(`sync_not_before`). An object of its own rather than a revocation entry: a sync lists
entries from where its last one began by the writer's clock, so an entry from a writer
whose clock is far behind would never be listed, while a GET finds the object whatever its
time. A refresh judges by that snapshot, as it judges revocations, brought within the same
bound first (a process that serves refreshes alone syncs for them): a refresh of an old
session on a host that has not synced yet (or whose syncs fail: it answers from its last
snapshot, `freshness`) may still succeed, and the token it issues is refused by every host
that has, as is the session at its next refresh.

Clocks. The time written is the writer's clock, the moment the operator meant. What every
reader takes is that time held to the store's Last-Modified of the write, LM (whole
seconds, rounded down or finer), and the skew allowance S (`S3AUTH_REVOCATION_SKEW_SECONDS`),
which bounds every clock's distance to the store's (`last_modified`):

    cut-off = min(max(written, LM), LM + S + 1 s)

- A writer's clock behind the store's cannot leave sessions opened before the write
  alive: the cut-off is at least the store's own time of the write, so what a host not
  ahead of the store opened before it is ended.
- A writer's clock ahead cannot lock everyone out for hours: the cut-off is at most S and
  a second past the write by the store's clock. Hosts that have synced open sessions after
  it anyway; one that has not (its sync late or failing), and whose clock reads before the
  cut-off, opens a session that every host that has read the cut-off refuses at once, and
  it from its next successful sync. Only in the seconds after the write: a session's id
  holds its login host's clock, which reads before the cut-off at most 2·S + 1 s after
  the write by the store's clock, however stale that host's snapshot.
- Within the allowance the writer's time stands. Hosts' clocks still differ by up to S:
  a session opened in the last seconds before the write by a host ahead of the cut-off's
  clock is not ended, as no cut-off by time can; ending one user's sessions
  (`logout_everywhere`) names them instead, and depends on no clock.

The object is replaced If-Match (created If-None-Match), never with an earlier time than
the cut-off it replaces, so a second ending from a host whose clock is behind never moves
it back, and two at once both land, in turn; one that cannot be read (torn, damaged) is
replaced on its version. It is never deleted: it stops everything opened before it,
whatever its age, and costs one small object. Deleting it by hand (with the store's tools)
lifts the cut-off at each process's next sync; sessions the sweep or a refresh deleted
stay gone.

Request budget: `end_all_sessions` 1 GET, 1 conditional PUT, 1 GET (the write read back
for its Last-Modified), and a GET and PUT more per write lost to a concurrent one; a sync
round 1 GET more; the sweep 1 GET more; `s3auth doctor` 1 GET more (`unreadable`).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from .errors import ConflictError
from .findings import CORRUPT_NOT_BEFORE, Finding, finding
from .last_modified import latest_written
from .models import SessionsNotBefore
from .storage import CorruptObjectError, Store, StoreConflict, keys
from .types import Clock

if TYPE_CHECKING:
    from .revocations import RevocationSnapshot

_WRITE_ATTEMPTS = 5


def effective_ms(written_ms: int, last_modified: dt.datetime, skew_seconds: int) -> int:
    """The cut-off every reader takes (see the module): `written_ms` held to the write's
    Last-Modified and the skew allowance."""
    stored_ms = int(last_modified.timestamp()) * 1000
    return min(max(written_ms, stored_ms), int(latest_written(last_modified, skew_seconds)) * 1000)


async def read_not_before(store: Store, skew_seconds: int) -> int:
    """The cut-off of every session in ms; 0 when no ending was ever written (1 GET)."""
    found = await store.get(keys.SESSIONS_NOT_BEFORE, SessionsNotBefore)
    if found is None:
        return 0
    return effective_ms(found.value.not_before_ms, found.last_modified, skew_seconds)


async def sync_not_before(snapshot: RevocationSnapshot, store: Store, skew_seconds: int) -> None:
    """Take the cut-off the store holds into `snapshot` (1 GET). One this process wrote
    while the read was under way is newer than what was read, and stays: a sync answered
    before the write would lift the ending on the very host that wrote it."""
    before = snapshot.not_before_ms
    found = await read_not_before(store, skew_seconds)
    written_meanwhile = snapshot.not_before_ms if snapshot.not_before_ms != before else 0
    snapshot.not_before_ms = max(found, written_meanwhile)


async def write_not_before(store: Store, clock: Clock, skew_seconds: int) -> int:
    """End every session opened before now (see the module); returns the cut-off as
    readers take it, in ms. ConflictError when concurrent endings won every attempt."""
    for _ in range(_WRITE_ATTEMPTS):
        held, etag = await _held(store, skew_seconds)
        now_ms = int(clock() * 1000)
        try:
            if etag is None:
                await store.create(keys.SESSIONS_NOT_BEFORE, SessionsNotBefore(now_ms))
            else:
                later = SessionsNotBefore(max(now_ms, held))
                await store.replace(keys.SESSIONS_NOT_BEFORE, later, etag)
        except StoreConflict:
            continue  # another ending landed meanwhile: read it, and go after it
        # Read back for its Last-Modified, which the create's answer does not give.
        return await read_not_before(store, skew_seconds)
    raise ConflictError("Other endings of every session landed meanwhile; try again")


async def unreadable(store: Store) -> list[Finding]:
    """The finding that the cut-off cannot be read, if it cannot (1 GET): `s3auth doctor`'s.
    Its remedy is no repair of the doctor's, since it ends every session: the operator's."""
    try:
        await store.get(keys.SESSIONS_NOT_BEFORE, SessionsNotBefore)
    except CorruptObjectError:
        detail = (
            "the end of every session cannot be read: every process's revocation sync fails "
            "on it, and so does `s3auth cleanup`; `s3auth sessions end-all` replaces it, "
            "ending every session opened before now (deleting it instead lifts the ending "
            "it held)"
        )
        return [finding(CORRUPT_NOT_BEFORE, keys.SESSIONS_NOT_BEFORE, None, detail)]
    return []


async def _held(store: Store, skew_seconds: int) -> tuple[int, str | None]:
    """The cut-off the store holds and its version; (0, None) when there is none. One that
    cannot be read (torn, damaged) is replaced on its version: read, it fails every sync
    and sweep, and deleted, it would lift the ending it held. Now ends what it ended, but
    for sessions opened within the allowance after its write."""
    try:
        found = await store.get(keys.SESSIONS_NOT_BEFORE, SessionsNotBefore)
    except CorruptObjectError as exc:
        if exc.etag is None:  # no version to replace it on: nothing safe to do
            raise
        return 0, exc.etag
    if found is None:
        return 0, None
    return effective_ms(found.value.not_before_ms, found.last_modified, skew_seconds), found.etag
