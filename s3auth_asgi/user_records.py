"""Changing a user record: read, change, write back with If-Match, and again on a conflict.

The change is a function of the record as it stands, so a retry applies it to whatever a
concurrent writer left; what it must not do is carry over a decision made on the first
read that the concurrent write has made wrong. Such decisions are checked again on every
attempt, and the change raises ConflictError when one no longer holds:

- a password checked against the record (a login upgrading the hash of the password it
  verified, a password change that verified the current one);
- what a change was computed from (the scopes an administrator adds to or removes from);
- the address a change of email reserved the new address against (`accounts`), and the
  account state a mailed token was issued for (`recovery`);
- whether a change of the account's standing ends its sessions (`_update_account`), as
  they are ended before the write: over a concurrent change that makes it one, it is
  refused.

`if_fields_are` serves the first three: the change applies only while the named fields of
the record hold the values it was decided on.

A deletion closes the record first (`User.deleting`), with If-Match like any change, and
lets go the names of the version it closed. Before the close, it writes a closing marker
among the user's sessions, which has every refresh of them read the record
(`session_generation`): a refresh reads no record otherwise, and a deletion cut short
after the close would leave them refreshing. A change that lands before the closing write
is seen by it (its conflict makes it read the record again); one that comes after finds
the record closed and is refused as if it were gone (UserNotFoundError). Otherwise a
change of address landing between a deletion's read and its DELETE would leave the new
address's index entry naming a deleted user.

A change that ends the user's sessions writes the new generation in the record, then its
marker (`session_generation`). If the marker's write fails, or the record's answer is lost
and the caller retries (to find nothing left to change), the old sessions could refresh on.
So every read of a record for a change writes the marker of the generation it finds, if
it is missing (1 conditional PUT), the read again after a conflict too (the change that
won may be such a one): the retry, or the next change of the account, finishes the job,
and the old sessions are refused at their next refresh.

A new password, a disabling, a change of privileges must leave no earlier session in use,
its access tokens included, and a retry cannot always finish the revocation of one that has
landed: the reset link is spent, the current password is no longer the one the owner gives,
the account is disabled or demoted already. So such a change ends the sessions first (LIST,
revocation, batch DELETE), then writes the record, then its marker, and lists the sessions
again for those that a login wrote meanwhile from the record as it was (a revocation and a
batch DELETE for them). A failure before the record's write leaves the record as it was and
a reset link unspent, the sessions perhaps ended already, and the same request tried again
makes the change. Not every change ending them first lands, though: one whose write loses
to a change that makes it untrue is refused after it ended them. Mostly that change ends
them too (a new password, a disabling); a reset's link, though, dies with a change of the
address (its own link opened meanwhile, an administrator's), which ends no session, and
the reset is then refused (`invalid_account_token`) with the sessions ended and the
password as it was. That errs the safe way: the owner logs in again with the password
they had, and asks for another link. A failure after the write can leave only a session
that such a login wrote after the first listing and read the record back before the write
(`session_opening`): refused at its refresh by the marker (written by the change or, if
that write failed, by the next read of the record for a change, the retry included), its
access token accepted for at most its lifetime (`session_generation`). A disabling tried
again on an account it finds disabled ends the sessions it lists all the same (a disabled
account has none to keep), such a login's included. The owner's own new password, whose
caller's token the revocation ends, so that the caller's retry is refused, logs out
everywhere first (`password_changes`).

Which sessions a change ends: those opened from the generation of the record it decided on,
or an older one, never a newer one's (the generation's counter is in each session's id, so
the listing tells, at no request more: `session_generation`). Ending before the write means
ending before the If-Match finds out whether the record is still the one read; a session of
a newer generation was opened from a record written after that read, by a change that
landed first (its caller's new pair, a login with the new password), and the change that
decided on the older record is either refused there (a password checked against it, a reset
link bound to it, the fields an administrator expected) or tried again on the newer record.
So a change refused ends no session the record it lost to opened; and each attempt ends the
sessions of the record it read and older, once the change has accepted that record, before
its write: a change that lands over another has ended that one's sessions before its own
write, as it ends every older one, and one refused on a read ends nothing more (an attempt
after a conflict costs a LIST more, and a revocation and a batch DELETE when it finds
sessions to end). The listing after the write is bounded the same, by the record the write
replaced: a session of the generation written was opened from the change's own record. The
grain is the generation: a login that read the record after a change that ends no session
(a profile, an upgraded hash of the same password) is of the generation read, opened with
the password and privileges the change was decided on to end, and is ended even if the
change is then refused. A session whose id does not carry the counter (opened by an earlier
version of this package) counts as of the oldest generation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec

from .errors import ConfigurationError, ConflictError, UserNotFoundError
from .identifiers import require_user_id
from .models import User
from .open_records import open_record, own_record
from .session_generation import (
    ends_sessions,
    next_generation,
    write_closing_marker,
    write_marker,
)
from .session_opening import SessionOpening
from .storage import StoreConflict, Versioned, keys
from .storage.access import get_or_none

UPDATE_ATTEMPTS = 5
CHANGED_CONCURRENTLY = "The user was changed concurrently; try again"

Change = Callable[[User], User]


def if_fields_are(expected: Mapping[str, Any], change: Change) -> Change:
    """`change`, refused (ConflictError) unless the record's fields named in `expected`
    hold those values: applied over a concurrent change of them, it would act on what is
    no longer there (an upgraded hash of an old password written back, scopes added to a
    list another administrator has since cut)."""
    unknown = sorted(set(expected) - set(User.__struct_fields__))
    if unknown:
        raise ConfigurationError(f"expect: a user record has no field {', '.join(unknown)}")

    def guarded(stored: User) -> User:
        if any(getattr(stored, name) != value for name, value in expected.items()):
            raise ConflictError(CHANGED_CONCURRENTLY)
        return change(stored)

    return guarded


def password_of(user: User) -> dict[str, Any]:
    """What `if_fields_are` expects of a change decided on a password checked on `user`."""
    return {"hashed_password": user.hashed_password}


def _open(found: Versioned[User] | None, user_id: str) -> Versioned[User]:
    """A record a change may apply to; UserNotFoundError when it is gone or closed, or is
    another user's (`open_records`)."""
    opened = open_record(found, user_id)
    if opened is None:
        raise UserNotFoundError()
    return opened


def _closing(user: User) -> User:
    return msgspec.structs.replace(user, deleting=True)


def _checked(change: Change, require: Callable[[User], object] | None) -> Change:
    """`change`, run only once `require` accepts the record it is applied to."""
    if require is None:
        return change

    def checked(user: User) -> User:
        require(user)
        return change(user)

    return checked


class UserRecords(SessionOpening):
    """Reading a user record for a change, and writing the change back."""

    async def _load_user(
        self, user_id: str, check: Callable[[User], object] | None = None
    ) -> Versioned[User]:
        """The user record with its ETag, for a read-modify-write, its generation's marker
        written if it was not (see the module); UserNotFoundError, for a closed record
        too. `check`: called with the record first; what it raises refuses the change at
        the GET alone."""
        require_user_id(user_id)
        current = _open(await get_or_none(self.store, keys.user(user_id), User), user_id)
        if check is not None:
            check(current.value)
        if current.value.session_generation:
            await write_marker(self.store, user_id, current.value.session_generation)
        return current

    async def _update(
        self,
        user_id: str,
        change: Change,
        current: Versioned[User] | None = None,
        *,
        before_write: Callable[[User], Awaitable[None]] | None = None,
    ) -> tuple[User, User]:
        """Read-modify-write of a user record with If-Match, retried on conflict, starting
        from `current` when the caller has just read it. `before_write` is awaited with the
        record each attempt read, once the change has accepted it, before that attempt's
        write. Returns (before, after)."""
        before, after = await self._write_change(user_id, change, current, before_write)
        return before, after.value

    async def _write_change(
        self,
        user_id: str,
        change: Change,
        current: Versioned[User] | None,
        before_write: Callable[[User], Awaitable[None]] | None = None,
    ) -> tuple[User, Versioned[User]]:
        """`_update`, returning the record as written with its new version: a second change
        in the same call writes over it with no GET (its time, this host's clock's)."""
        for _ in range(UPDATE_ATTEMPTS):
            if current is None:
                # Again after a conflict too: the write that won may be a change that ended
                # the sessions and whose marker's write failed (1 conditional PUT).
                current = await self._load_user(user_id)
            updated = change(_open(current, user_id).value)
            if updated.email_verified != current.value.email_verified:
                # Counted whoever sets or clears it: a verification link issued before then
                # is dead for good, even once the mark is cleared again (`recovery`).
                updated.verified_changes = current.value.verified_changes + 1
            if before_write is not None:
                await before_write(current.value)
            updated.updated_at = self._now()
            try:
                etag = await self.store.replace(keys.user(user_id), updated, current.etag)
            except StoreConflict:
                current = None
                continue
            written = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
            return current.value, Versioned(updated, etag, written)
        raise ConflictError(CHANGED_CONCURRENTLY)

    async def _update_ending_sessions(
        self,
        user_id: str,
        change: Change,
        current: Versioned[User],
        *also_delete: str,
        written: Callable[[User, User], Awaitable[None]] | None = None,
    ) -> User:
        """`_update` for a change that must leave no earlier session in use once it lands:
        a new password, a disabling, a change of privileges (see the module). Each attempt
        ends the sessions of the record it read and older ones, once the change has
        accepted that record, before its write; a change refused on it ends nothing.
        `written` is awaited with (before, after) once the record is written, before the
        sessions are listed again; `also_delete` goes in the last batch DELETE. Returns the
        record as written."""

        async def end_older_sessions(decided_on: User) -> None:
            await self._end_all_sessions(user_id, up_to=decided_on.session_generation)

        previous, updated = await self._update(
            user_id, change, current, before_write=end_older_sessions
        )
        if written is not None:
            await written(previous, updated)
        generation = updated.session_generation
        # Unchanged: a disabling found made already (its retry), which has a marker.
        new = generation if generation != previous.session_generation else None
        await self._end_all_sessions(
            user_id, *also_delete, generation=new, up_to=previous.session_generation
        )
        return updated

    async def _update_account(
        self,
        user_id: str,
        changes: Mapping[str, Any],
        change: Change,
        current: Versioned[User] | None,
        written: Callable[[User, User], Awaitable[None]],
    ) -> None:
        """`_update` of `change`, which writes `changes` (fields of the record and their
        new values): through `_update_ending_sessions`, with a new session generation, when
        on the record read they disable the account or change its privileges (see the
        module). `written` is awaited with (before, after) once the record is written."""
        disabling = changes.get("is_active") is False
        if current is None and (disabling or "is_admin" in changes or "scopes" in changes):
            current = await self._load_user(user_id)
        # A disabling found made (its retry) ends those its listing finds all the same.
        ending = current is not None and (disabling or ends_sessions(current.value, changes))

        def ending_sessions(user: User) -> User:
            updated = change(user)
            if ends_sessions(user, changes):
                if not ending:  # a concurrent change made it one, with no session ended
                    raise ConflictError(CHANGED_CONCURRENTLY)
                updated.session_generation = next_generation(user.session_generation)
                updated.pending_email = ""  # its link died with the generation
            return updated

        if ending and current is not None:
            await self._update_ending_sessions(user_id, ending_sessions, current, written=written)
        else:
            await written(*await self._update(user_id, ending_sessions, current))

    async def _close(
        self,
        user_id: str,
        *,
        closed_only: bool = False,
        require: Callable[[User], object] | None = None,
    ) -> User | None:
        """Close the record for its deletion (see the module) and return it as closed: 1
        GET, 1 PUT (the deletion's closing marker, first: `session_generation`) and 1
        conditional PUT, and a GET and a PUT more per change that lands meanwhile. A record
        closed already (a deletion retried) as it is, after the marker; None when there
        is none, or it is another user's (`open_records`: closed, it would let go of that
        user's names), as first read or as read again after a deletion that landed
        meanwhile, and with `closed_only` an open one, after its GET alone;
        CorruptObjectError when it cannot be read. `require`: called with every record
        found, closed ones too, before anything is written and again inside each attempt
        of the conditional write; what it raises refuses the deletion."""
        found = own_record(await self.store.get(keys.user(user_id), User), user_id)
        if found is None or (closed_only and not found.value.deleting):
            return None
        if require is not None:
            require(found.value)
        await write_closing_marker(self.store, user_id)
        if found.value.deleting:
            return found.value
        try:
            _, closed = await self._update(user_id, _checked(_closing, require), found)
        except UserNotFoundError:  # another deletion closed or deleted it meanwhile
            # What is there now may be another's record copied since: nobody's to close.
            found = own_record(await get_or_none(self.store, keys.user(user_id), User), user_id)
            if found is not None and require is not None:
                require(found.value)
            return found.value if found is not None else None
        return closed

    async def _undo(self, user_id: str, before: User, after: User, fields: list[str]) -> None:
        """Put `fields` back as they were `before` the change that wrote `after`, unless
        another change of them has landed since (ConflictError)."""
        written = {name: getattr(after, name) for name in fields}
        restored = {name: getattr(before, name) for name in fields}
        await self._update(
            user_id, if_fields_are(written, lambda user: msgspec.structs.replace(user, **restored))
        )
