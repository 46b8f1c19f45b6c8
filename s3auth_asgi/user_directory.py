"""The user directory: looking users up by id or name, listing and searching them a page at
a time or all in one walk, and deleting one.

A deletion cut short after it closed the record (`user_records`) leaves it closed: no
change applies to it and no login finds it. Every reader here takes it for gone as well
(get_user_by_id is None, a listing skips it), no session of it refreshes (the closing
marker the deletion wrote before: `session_generation`), and `delete_user` of its id,
which finds it closed, finishes the deletion; so does `finish_deletion`, which deletes
only a closed record (`s3auth doctor --repair`, once the deletion is a reservation's time
old).

Request budgets: get_user_by_id, 1 GET; get_user_by_username / _by_email, 2 (the index
entry, the record it names; 1 for a name nobody holds, none for what cannot be one);
list_users, 1 LIST and 1 GET per user of the page (16 at a time; 1 LIST more per page of
other tools' objects alone that it passes over), with `search` the same (a search filters
the page it reads, so each call costs what one page costs, and the caller follows
`next_cursor`); every_user, with `search` or without, one listing read to its end: 1 LIST
per 1,000 keys under `users/` (5,000 on Azure), whoever's they are, and 1 GET per key of a
user's record; delete_user, 1 GET, 1 PUT (the closing marker, which has a refresh of the
user's sessions read the record: `session_generation`) and 1 conditional PUT (closing the
record, `user_records`; a GET and a PUT more per change that lands meanwhile), 1 LIST of
the user's sessions, 1 revocation create when it has sessions, 1 batch DELETE and 1 PUT
(the generation marker: `session_generation`), then 1 GET and 1 conditional PUT per name
(3: username, skeleton, email) to retire its index entries and 1 batch DELETE of them, as
a release lets a name go (`name_claims`: a bare DELETE could remove the entry of whoever
registered the name meanwhile), and 1 GET more (and the PUT, if it still names the user)
of the address its last change of address let go, if it changed one; of a record closed already (a
deletion cut short), the same without the closing PUT; of an id with no user, 1 GET and 1
LIST; of a record that cannot be read, its GET and the closing marker, then as for a user
without the closing PUT and the releases. With a `require` that refuses the record as first
read, 1 GET alone; one that refuses it as read again after a change landed meanwhile, the
GET, the closing marker (left, as a deletion stopped before its close leaves it), the
conditional PUT that lost, and the GET (and marker PUT: `user_records`) of the read again.
finish_deletion, of a closed record the same as delete_user; of anything else, 1 GET.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable

from .accounts import AccountOperations
from .errors import PreconditionFailedError, S3ValidationError
from .identifiers import fold, is_id, looks_like_email
from .models import User
from .open_records import open_user
from .session_generation import write_closing_marker
from .storage import CorruptObjectError, keys
from .storage.access import batches, check_page_size, gather, named_page

SEARCH_MAX = 100
WALK_BATCH = 200
"""Records `every_user` reads at a time (16 at once: `gather`), holding no more of them."""


def matches(user: User, search: str) -> bool:
    """Whether `search` (folded) is in the user's id, username, email or full name."""
    needle = fold(search)
    return any(
        needle in fold(value)
        for value in (user.id, user.username, user.email, user.full_name or "")
    )


class UserDirectory(AccountOperations):
    """Looking up, listing, searching and deleting users. A part of `S3AuthService`."""

    async def get_user_by_username(self, username: str) -> User | None:
        if not isinstance(username, str) or looks_like_email(username):
            return None
        found = await self.names.find(username)
        return found.value if found is not None else None

    async def get_user_by_email(self, email: str) -> User | None:
        if not isinstance(email, str) or not looks_like_email(email):
            return None
        found = await self.names.find(email)
        return found.value if found is not None else None

    async def get_user_by_id(self, user_id: str) -> User | None:
        """The user with this id; None when there is none, its record cannot be read or a
        deletion has closed it (see the module)."""
        if not is_id(user_id):
            return None
        return await open_user(self.store, user_id)

    async def delete_user(
        self, user_id: str, *, require: Callable[[User], object] | None = None
    ) -> bool:
        """Delete the user, its names and its sessions; False when there was no user. A
        deletion that failed after the user object went (its answer lost, say) is finished:
        sessions left of a user that is gone are ended, and the deletion's marker written.
        `require`: called with the record first, before anything is written, and again
        inside each attempt of the conditional write that closes it, so that a change
        landing in between is checked too; what it raises refuses the deletion, nothing
        deleted (`user_versions.at_versions`: the account is still at a version a client
        read). With it, a record that cannot be read, which it cannot be asked about, is
        refused too (PreconditionFailedError)."""
        return await self._delete(user_id, require=require)

    async def finish_deletion(self, user_id: str) -> bool:
        """Finish a deletion cut short once it closed the record, as `delete_user` of its
        id does; False, after the record's GET alone, when there is no closed record to
        finish (none, an open one, or one that cannot be read): an open record is never
        closed here, whatever the caller read before (`s3auth doctor --repair`)."""
        return await self._delete(user_id, closed_only=True)

    async def _delete(
        self,
        user_id: str,
        *,
        closed_only: bool = False,
        require: Callable[[User], object] | None = None,
    ) -> bool:
        if not is_id(user_id):
            return False
        # Closed first: the names to let go are then the ones the closed version holds,
        # whatever change of address lands meanwhile (`user_records`).
        try:
            user = await self._close(user_id, closed_only=closed_only, require=require)
        except CorruptObjectError:
            if closed_only:
                return False
            if require is not None:
                raise PreconditionFailedError() from None
            # A record a crash tore: no change can apply to it, and which names it holds
            # cannot be read. Gone, it leaves their entries naming a user that is gone,
            # which the next claim of each name takes over once abandoned (`name_claims`).
            # Its sessions are refused from the marker on, as a closed record's.
            await write_closing_marker(self.store, user_id)
            await self._end_all_sessions(
                user_id, keys.user(user_id), generation=keys.DELETED_GENERATION
            )
            return True
        if user is None:
            if closed_only:
                return False
            left, _ = await self.store.list_page(keys.user_sessions(user_id), None, 1)
            if left:
                await self._end_all_sessions(user_id, generation=keys.DELETED_GENERATION)
            return False
        # The user object goes next, and its names are released after it (only then can
        # no record hold them). If the rest fails, the names are dangling reservations
        # that the next registration takes over.
        await self._end_all_sessions(
            user_id, keys.user(user_id), generation=keys.DELETED_GENERATION
        )
        await self.names.release_names(user)
        return True

    async def list_users(
        self, *, after: str | None = None, limit: int = 50, search: str | None = None
    ) -> tuple[list[User], str | None]:
        """A page of users in id order and the cursor of the next page (None at the end).
        With `search`, only the users of the page that match (`matches`): fewer than
        `limit`, maybe none, while the cursor is not None; so too without, by the records
        of deletions under way or cut short, which are left out (see the module). Of the
        objects under `users/`, only a user's record at its own key is one: another tool's
        (a backup beside a record, a copy elsewhere) is neither read nor listed, and no
        page ends at one, so the cursor is always a user's id."""
        check_page_size(limit, 1000)
        if after is not None and not is_id(after):
            raise S3ValidationError("The cursor is not valid")
        check_search(search)
        offset = keys.user(after) if after is not None else None
        ids, more = await named_page(self.store, keys.USERS, offset, limit, record_id)
        # A record copied to another user's key is no user's (`s3auth doctor` says so).
        found = await gather([open_user(self.store, user_id) for user_id in ids])
        users = [user for user in found if user is not None]
        if search is not None:
            users = [user for user in users if matches(user, search)]
        # Resuming after the last user's key: the other objects after it are listed again,
        # and left out again.
        cursor = ids[-1] if more and ids else None
        return users, cursor

    async def every_user(self, *, search: str | None = None) -> AsyncGenerator[User, None]:
        """Every user in id order, as `list_users` gives them page after page (the same
        users, left out and matched the same way), from one listing of `users/` read to its
        end, the records read `WALK_BATCH` at a time as it goes. Pages would each start a
        listing, which on Azure (sent no offset) lists every key before the cursor again.
        Every user there throughout is given exactly once, one registered meanwhile maybe;
        memory holds a batch of records and the listing's current page, whatever the
        number of users."""
        check_search(search)
        listed = (
            user_id
            async for info in self.store.list(keys.USERS)
            if (user_id := record_id(info.key)) is not None
        )
        async for batch in batches(listed, WALK_BATCH):
            for user in await gather([open_user(self.store, user_id) for user_id in batch]):
                if user is not None and (search is None or matches(user, search)):
                    yield user


def check_search(search: str | None) -> None:
    if search is not None and not (isinstance(search, str) and 0 < len(search) <= SEARCH_MAX):
        raise S3ValidationError(f"search must be 1 to {SEARCH_MAX} characters")


def record_id(key: str) -> str | None:
    """The id of the user whose record `key` is (`users/{id}.json`); None for another key."""
    user_id = keys.id_from_key(key)
    return user_id if is_id(user_id) and key == keys.user(user_id) else None
