"""Opening a session: a login's first token pair, and why no account change it raced leaves
an access token behind.

The race. A login reads the user record (active, the password hash it checks, the session
generation), and only then writes its session. A change that must end the user's sessions
(a disabling, a new password, changed privileges, a deletion, a logout everywhere) may land
in between: its listing of the sessions comes before the login's session exists, so its
revocation cannot name it. The session generation refuses such a session at its first
refresh (`session_generation`), but the access token the login answers with is checked
against revocations alone, by the middleware and a host's own routes, until it expires.

The check. Each such change writes the user record (a new generation; a deletion closes the
record) before its last listing of the sessions. So once its session is written, a login
reads the record again (1 GET): finding the generation it read, and the record open, it
knows that any change still to come writes the record after that read, and lists the
sessions after the write, which is after the session's: the listing names the session,
and the revocation its access tokens. Finding another generation, or no open record, the
login deletes its session, before any token of it was issued, and answers as the login
after the change would: refused (InvalidCredentialsError) when the account is gone,
disabled or has another password; opened again from the new record otherwise (a logout
everywhere, new privileges), at one more session create and GET. A second factor turned
on (or off) meanwhile is such a change too, one that refuses: a password login that read
the record before the factor was on would otherwise open a session without its code. A
`PublicUser`, which carries no generation, is not read back: such a session predates every
generation marker, and is ended by every change (`session_generation`).

A failure of the read answers the store's error and issues no token: a session left so is
one whose tokens nobody holds. A failure of the DELETE is let be: the session left is of a
generation its marker refuses (or of a deleted account), and the sweep deletes it.

A disabled account's record (found otherwise than by `authenticate_user`, which refuses
it: a host's own login by a link it mailed) opens no session: the generation it carries is
the one its disabling wrote, which nothing refuses.

Request budget: 2 (session create, user GET; a `PublicUser`'s, 1; a disabled account's,
none); when the record has changed, 1 DELETE more, and for a login opened again from the
new record, those 2 again.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from .auth_methods import PASSWORD, checked_methods
from .errors import InvalidCredentialsError
from .identifiers import IP_ADDRESS_MAX, clean_text, new_session_id
from .keys.keyset import KeyEntry
from .models import PublicUser, Session, TokenPair, User
from .open_records import open_user
from .privileges import granted_scopes, is_administrator
from .session_generation import generation_counter
from .sessions import SessionOperations
from .storage import keys
from .storage.access import delete_quietly
from .user_agents import reported_user_agent

_OPEN_ATTEMPTS = 3
"""Logins opened again, each after another change of the record: bounded, as every attempt
lost to a change that renewed the generation meanwhile."""


def still_admits(read: User, current: User) -> bool:
    """Whether a login decided on `read` holds on `current`, the open record as it is now:
    the account active, with the password hash the login checked, and the second factor
    the login went through (none, for a password alone)."""
    return (
        current.is_active
        and current.hashed_password == read.hashed_password
        and current.totp_secret == read.totp_secret
    )


def unchanged(read: User, current: User) -> bool:
    """Whether the record a session was opened from is still the one the login read, as
    far as the login is concerned: the same generation and second factor."""
    return (
        current.session_generation == read.session_generation
        and current.totp_secret == read.totp_secret
    )


class SessionOpening(SessionOperations):
    """Opening a session for a user. A part of `S3AuthService`."""

    async def create_token_pair(
        self,
        user: User | PublicUser,
        device_info: str | None = None,
        ip_address: str | None = None,
        *,
        amr: Sequence[str] = PASSWORD,
    ) -> TokenPair:
        """Open a session for the user and return its first access and refresh tokens.
        `user`: the record as a login read it (`authenticate_user`). `amr`: how the user
        authenticated (RFC 8176 values, `auth_methods`), which its tokens carry with
        `auth_time`, now; by default a password, () for none. InvalidCredentialsError,
        with nothing written, for None (`authenticate_user`'s answer to a wrong password)
        and a disabled account (a record found otherwise than by
        `authenticate_user`, which refuses one); and when, as the session was opened, the
        account was deleted, disabled or given another password (see the module); a
        change that leaves the login valid (new privileges, a logout everywhere) opens it
        from the new record instead."""
        if user is None:  # what authenticate_user answers for a wrong password
            raise InvalidCredentialsError()
        if not isinstance(user, User | PublicUser):
            raise TypeError(
                f"user: the User authenticate_user returned (or a PublicUser), not "
                f"{type(user).__name__}"
            )
        methods = checked_methods(amr)
        if not user.is_active:
            # Nothing would end its session: it carries the generation the disabling wrote.
            raise InvalidCredentialsError()
        signing = await self.tokens.signing_key()  # no session is opened without one
        for _ in range(_OPEN_ATTEMPTS):
            session, now = await self._write_session(
                user, device_info, ip_address, signing, methods
            )
            if not isinstance(user, User):
                return await self._pair(session, now, signing)
            current = await open_user(self.store, user.id)
            if current is not None and unchanged(user, current):
                return await self._pair(session, now, signing)
            await delete_quietly(self.store, keys.session(user.id, session.id))
            if current is None or not still_admits(user, current):
                raise InvalidCredentialsError()
            user = current
        # Changed at every attempt: refused, for the caller to log in again.
        raise InvalidCredentialsError()

    async def _write_session(
        self,
        user: User | PublicUser,
        device_info: str | None,
        ip_address: str | None,
        signing: KeyEntry,
        amr: Sequence[str] = PASSWORD,
    ) -> tuple[Session, int]:
        """Write a new session of the user as `user` has it, authenticated now by `amr`
        (1 create); returns it and the time it was opened. TokenTooLargeError, with nothing
        written, when its tokens would not fit (`token_budget`)."""
        now_ms = int(self.clock() * 1000)
        now = now_ms // 1000
        # Younger than any 0.1 logout-everywhere known here, whose cut-off is a time.
        id_ms = max(now_ms, self.blacklist.snapshot.cutoff_ms(user.id) + 1)
        absolute = now + self.settings.session_absolute_seconds
        generation = user.session_generation if isinstance(user, User) else None
        session = Session(
            # The generation's counter in the id: a listing tells whom a change may end.
            id=new_session_id(id_ms, generation_counter(generation)),
            user_id=user.id,
            secret=secrets.token_urlsafe(24),
            device_info=reported_user_agent(device_info),
            ip_address=clean_text(ip_address, "ip_address", IP_ADDRESS_MAX, truncate=True),
            created_at=now,
            rotated_at=now,
            last_used_at=now,
            expires_at=min(now + self.settings.refresh_token_seconds, absolute),
            absolute_expires_at=absolute,
            username=user.username,
            is_admin=is_administrator(user.is_admin, user.scopes),
            scopes=granted_scopes(user.is_admin, user.scopes),
            user_generation=generation,
            claims=await self.hooks.claims_for(user) if isinstance(user, User) else {},
            auth_time=now,
            amr=list(amr),
        )
        self._check_token_fits(session, now, signing)
        await self.store.create(keys.session(user.id, session.id), session)
        return session, now
