"""Accounts: user records and their names, login and profile changes (password changes:
`password_changes`; a user's own new address: `email_changes`; looking users up, listing
and deleting them: `user_directory`).

Request budgets (object-store requests, asserted in the tests):
- create_user: 4 (three index creates: username, its skeleton, email; one user create),
  and a GET of each index object when it took longer than a reservation; a name let go
  before costs 2 more (a failed create, a GET, a replace), an abandoned one 4 more (two
  GETs of the user that left it too: `name_claims`);
- update_user to a new address: 6 (user GET; GET of the old address's entry, the version
  to release, as `name_claims` says why; the new one's create; user PUT; the release, a
  PUT and a DELETE);
  of the profile alone, or of privileges to what they are already: 2 (user GET and PUT);
  a disabling or a change of privileges, of a user with sessions: 7 (user GET; LIST,
  revocation create, batch DELETE; user PUT; marker create; LIST again);
- authenticate_user: 2 (index GET, user GET — for a name that is nobody's, a GET of a user
  that does not exist, so that the answer's cost says nothing), plus one conditional PUT
  when the password hash is upgraded; with create_token_pair's 2 (`session_opening`), a
  login costs 4. Its halves, resolve_login (the index GET) and check_login (the rest), let
  the auth app read the account's limits first and learn what a failure is charged to.

Write order. A user exists once `users/{id}.json` exists, and that object is written
last, after the index objects that reserve its names (`name_claims` says how a crash
between them is repaired).

Every change that must end the user's sessions (a disabled account, changed privileges, a
new password, deletion, a logout everywhere) writes a new session generation in its
user-record write and ends them (`sessions`); a login racing the change keeps nothing
(`session_opening`, `session_generation`). All but a deletion and a logout everywhere
(`logout_everywhere`) end them before that write and list them again after it
(`user_records`); an account change decides on the record it reads whether it ends them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from .errors import (
    EmailTakenError,
    S3AuthError,
    S3ValidationError,
    StoreUnavailableError,
)
from .identifiers import (
    FULL_NAME_MAX,
    clean_email,
    clean_scopes,
    clean_text,
    clean_username,
    fold,
    new_id,
    username_skeleton,
)
from .models import User
from .name_claims import Claim
from .name_index import LoginCheck, NameIndex, NameLookup, parse_name
from .passwords import PasswordHasher, PasswordPolicy
from .privileges import admin_from_input, scopes_after, stored_scopes
from .profile_fields import ProfileFields
from .storage import Versioned, keys
from .storage.access import get_or_none
from .totp_factor import TotpFactor
from .user_records import if_fields_are, password_of


class _Unset:
    pass


# "Leave unchanged", as opposed to None, which clears an optional field.
UNSET: Any = _Unset()


class AccountOperations(TotpFactor):
    """Users and their names, passwords and standing. A half of `S3AuthService`, which sets
    the attributes below; built on the sessions half, which ends sessions when an account
    changes."""

    passwords: PasswordHasher
    password_policy: PasswordPolicy
    names: NameIndex
    profile_fields: ProfileFields

    async def create_user(
        self,
        username: str,
        email: str,
        password: str | None,
        full_name: str | None = None,
        *,
        is_admin: bool | None = None,
        scopes: list[str] | None = None,
        email_verified: bool = False,
        profile: dict[str, Any] | None = None,
    ) -> User:
        """Register a user. UsernameTakenError / EmailTakenError when a name is in use
        (case- and Unicode-insensitively); S3ValidationError subclasses for bad input.
        `is_admin`: None leaves it to `scopes` (`privileges.admin_from_input`); `profile`:
        the application's own fields (`profile_fields`), validated here. `password` None:
        no password opens the account until its owner sets one with a reset link."""
        name = clean_username(username)
        address = clean_email(email)
        full_name = clean_text(full_name, "full_name", FULL_NAME_MAX)
        scopes = clean_scopes(scopes)
        admin = admin_from_input(is_admin, scopes)
        profile = self.profile_fields.clean(profile)
        if password is None:
            hashed = self.passwords.unmatched()
        else:
            hashed = await self._hash_new_password(password, name, address)
        now = self._now()
        user = User(
            id=new_id(),
            username=name,
            email=address,
            hashed_password=hashed,
            full_name=full_name,
            is_admin=bool(admin),
            scopes=stored_scopes(scopes),
            created_at=now,
            updated_at=now,
            username_skeleton=username_skeleton(name),
            email_verified=bool(email_verified),
            profile=profile,
        )
        await self.names.register(user)
        return user

    async def authenticate_user(self, username_or_email: str, password: str) -> User | None:
        """The user when the password matches and the account is active, else None.

        Unknown user, wrong password and disabled account give the same answer, make the
        same store requests and cost one password verification each.
        """
        if not isinstance(username_or_email, str) or not self._plausible_password(password):
            return None
        login = await self.resolve_login(parse_name(username_or_email))
        return (await self.check_login(login, password)).user

    def _plausible_password(self, password: object) -> bool:
        return isinstance(password, str) and len(password) <= self.password_policy.longest_checked

    async def resolve_login(self, name: NameLookup) -> NameLookup:
        """The first half of authenticate_user: the index entry of a name as
        `name_index.parse_name` parsed it (1 GET; none for a name that cannot exist)."""
        return await self.names.look_up(name)

    async def check_login(
        self,
        login: NameLookup,
        password: str,
        *,
        device_owner: str | None = None,
        device_current: Callable[[User], bool] | None = None,
    ) -> LoginCheck:
        """The second half: the user GET when the name is indexed (else a GET of a user
        that does not exist, so that the requests are the same) and one password
        verification. `device_owner`: the name's owner, when the login showed a valid
        device cookie of theirs, so that it may take the hash places kept for those;
        `device_current`: whether that device still holds for the record read. If not, the
        password is not checked (`LoginCheck.stale_device`)."""
        if not self._plausible_password(password):
            return LoginCheck(None)
        if login.index is None and login.normalised is not None:
            found = None
            await get_or_none(self.store, login.decoy_user_key, User)
        else:
            found = await self.names.owner(login)
        user = found.value if found is not None else None
        if user is not None and device_current is not None and not device_current(user):
            return LoginCheck(None, stale_device=True)
        matches, new_hash = await self.passwords.verify(
            password,
            user.hashed_password if user is not None else None,
            device_owner=device_owner,
        )
        if found is None or user is None or not matches or not user.is_active:
            return LoginCheck(None)
        if new_hash is not None:
            upgrade = if_fields_are(
                password_of(user), lambda u: msgspec.structs.replace(u, hashed_password=new_hash)
            )
            with contextlib.suppress(S3AuthError):
                await self._update(user.id, upgrade, found)
        return LoginCheck(user)

    async def update_user(
        self,
        user_id: str,
        *,
        full_name: str | None = UNSET,
        email: str = UNSET,
        is_active: bool = UNSET,
        is_admin: bool = UNSET,
        scopes: list[str] = UNSET,
        email_verified: bool = UNSET,
        profile: dict[str, Any] = UNSET,
        expect: Mapping[str, Any] | None = None,
        require: Callable[[User], object] | None = None,
    ) -> User:
        """Change a profile or an account's standing. Disabling an account or changing its
        privileges ends its sessions, so the change holds at once: before the record is
        written (`user_records`); ConflictError when a concurrent change turns what was
        read as no change of privileges into one. A new email address applies at once (a
        user's own goes through `request_email_change`), unverified unless `email_verified`
        says otherwise; a new address the user asked for is withdrawn; the old address is
        told. `expect`: fields of the record and the values the change was decided on
        (`user_records.password_of` the record `confirm_password` checked, the scopes a
        list was computed from); ConflictError if any has changed since.
        `require`: called with the record every attempt would change, the first before
        anything is written; what it raises refuses the change (the auth app's check that
        the caller's own account may still act, which a concurrent disabling makes untrue;
        `user_versions.at_versions`, that the account is still at a version a client read)."""
        changes = self._checked_changes(
            full_name=full_name,
            is_active=is_active,
            email_verified=email_verified,
            scopes=scopes,
            is_admin=is_admin,
            profile=profile,
        )

        def tell(before: User, after: User) -> None:
            if after.email != before.email:
                self.mail.notify(
                    "email_changed_notice",
                    to=before.email,
                    username=after.username,
                    new_email=after.email,
                )

        current = await self._load_user(user_id, require) if require is not None else None
        _, updated = await self._change_user(
            user_id, changes, email, expect=expect, require=require, current=current, told=tell
        )
        return updated

    def _checked_changes(
        self,
        *,
        full_name: str | None = UNSET,
        is_active: bool = UNSET,
        email_verified: bool = UNSET,
        scopes: list[str] = UNSET,
        is_admin: bool = UNSET,
        profile: dict[str, Any] = UNSET,
    ) -> dict[str, Any]:
        """The fields of a change as they will be written; S3ValidationError for bad input."""
        changes: dict[str, Any] = {}
        if full_name is not UNSET:
            changes["full_name"] = clean_text(full_name, "full_name", FULL_NAME_MAX)
        if profile is not UNSET:
            changes["profile"] = self.profile_fields.clean(profile, partial=True)
        for flag, value in (("is_active", is_active), ("email_verified", email_verified)):
            if value is not UNSET:
                if not isinstance(value, bool):
                    raise S3ValidationError(f"{flag} must be true or false")
                changes[flag] = value
        given_scopes = clean_scopes(scopes) if scopes is not UNSET else None
        if given_scopes is not None:
            changes["scopes"] = stored_scopes(given_scopes)
        admin = admin_from_input(None if is_admin is UNSET else is_admin, given_scopes)
        if admin is not None:
            changes["is_admin"] = admin
        return changes

    async def _change_user(
        self,
        user_id: str,
        changes: dict[str, Any],
        email: str = UNSET,
        *,
        expect: Mapping[str, Any] | None = None,
        require: Callable[[User], object] | None = None,
        current: Versioned[User] | None = None,
        told: Callable[[User, User], object] | None = None,
    ) -> tuple[User, User]:
        """Write `changes` (as `_checked_changes` made them; `pending_email`, a new address
        asked for, counts a request) and a new `email`, claiming its index entry; `current`:
        the record, when the caller has just read it. `told`: called with (before, after)
        as soon as the change stands (written, the new address's entry held), before any
        request that could fail: the retry of a change that failed after it finds nothing
        to change. Returns (before, after)."""
        started = self.names.start_claim()
        new_claim: Claim | None = None
        old_claim: Claim | None = None
        expected: dict[str, Any] = dict(expect or {})
        if email is not UNSET:
            address = clean_email(email)
            current = current or await self._load_user(user_id)
            # Applied only to the address it read: over another change of it, the index
            # entries this one reserved and would free are not the record's any more, and
            # the other address's entry would go on naming this user for ever.
            expected["email"] = current.value.email
            if address != current.value.email:  # one folded alike may be another mailbox
                changes.setdefault("email_verified", False)
            if fold(address) != fold(current.value.email):
                # The old address's entry as the record holds it, read before the record
                # lets it go: the version to release (`name_claims`).
                old_key = keys.email_index(fold(current.value.email))
                old_claim = await self.names.holding(old_key, user_id, record_holds=True)
                new_key = keys.email_index(fold(address))
                new_claim = await self.names.reserve(new_key, user_id, EmailTakenError)
                changes["releasing_email"] = current.value.email
            changes["email"] = address

        def change(user: User) -> User:
            if require is not None:
                require(user)
            updated = msgspec.structs.replace(user, **changes)
            updated.scopes = scopes_after(user.scopes, changes)  # a demotion demotes
            if updated.email != user.email:  # the links mailed so far die
                updated.email_changes = user.email_changes + 1
                updated.pending_email = ""
            if "pending_email" in changes:  # the links of earlier requests die
                updated.email_requests = user.email_requests + 1
            if "profile" in changes:  # a PATCH: the fields given replace theirs only
                updated.profile = self.profile_fields.merge(user.profile, changes["profile"])
            return updated

        landed: list[tuple[User, User]] = []  # (before, after), once the record is written

        async def settle_names(previous: User, updated: User) -> None:
            landed.append((previous, updated))
            if new_claim is not None and not await self.names.held([new_claim], started):
                # A new session generation stays: the sessions it ended stay ended, and the
                # undoing read writes its marker, which would refuse every later session
                # of the account were the old generation put back.
                await self._undo(user_id, previous, updated, [*changes, "scopes"])
                raise EmailTakenError()
            if told is not None:
                told(previous, updated)
            if old_claim is not None:
                await self.names.release([old_claim])

        applied = if_fields_are(expected, change) if expected else change
        try:
            await self._update_account(user_id, changes, applied, current, settle_names)
        except S3AuthError as error:
            # Released only when the record is known not to name the new address: after a
            # store failure the write may have landed. An entry left behind whose user
            # does not hold it is taken over once abandoned (`NameClaims.reserve`).
            if new_claim is not None and not (landed or isinstance(error, StoreUnavailableError)):
                await self.names.release([new_claim])
            raise
        return landed[0]
