"""Re-authentication: the holder of a session gives the current password again (and a
code, where the second factor is on) and gets a new access token of the same session, whose
`auth_time` is now (`auth_methods`). For an application's sensitive operations that ask
for a recent authentication (`step_up`), without a new login: the refresh token, the
session's other tokens and its lifetimes stay as they were.

The session keeps the new time and methods, written with If-Match on the version read, so
that its later refreshes carry them: a refresh that rotated it meanwhile makes the write
fail, and it is done again on what the refresh wrote; a refresh racing it does the same on
this write. An ending racing it wins either way: a revocation names the session, and so
this token too, and a DELETE makes the write fail (TokenRevokedError) or follows it.

The session is judged before the code is accepted, as accepting it spends it (a TOTP
step, or a recovery code, which also mails the owner): first by the revocations this host
holds (no request), then by its object, read once the password matched, whose version the
write then names. A session ended on another host whose revocation this one has not read
yet is so refused with its code unspent; one ended between that read and the write makes
the write fail, after the code is spent, as any ending racing it does.

Request budget: the user record's GET (the caller's, given as read), 1 GET and 1
conditional PUT of the session; with the second factor on, the record's GET again and
its conditional PUT (the code spent: `totp_factor`), between the two. A session found
ended: its GET alone (none where this host's revocations say so).
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from .accounts import AccountOperations
from .auth_methods import PASSWORD, PASSWORD_AND_CODE, Methods
from .code_uses import CodeUse, code_use
from .errors import InvalidCredentialsError, S3ValidationError, TokenRevokedError, UserNotFoundError
from .hidden_fields import HidesSecrets
from .keys.keyset import KeyEntry
from .models import Session, User
from .session_rules import ending_recorded
from .storage import StoreConflict, Versioned, keys
from .storage.access import get_or_none

_ATTEMPTS = 5


class AccessGrant(HidesSecrets, msgspec.Struct, kw_only=True):
    """A new access token of a session that goes on: RFC 6749 §5.1's response without a
    refresh token (the session's stays the one its holder has)."""

    secret_fields: ClassVar[frozenset[str]] = frozenset(("access_token",))

    access_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_expires_in: int
    code_use: CodeUse | None = None
    """Where the second factor is on: how its code was given (the app's, or a recovery
    code and how many are left: `code_uses`)."""


class Reauthentication(AccountOperations):
    """A part of `S3AuthService`."""

    async def reauthenticate(
        self, user: User, session_id: str, password: object, code: object = None
    ) -> AccessGrant:
        """A new access token of `user`'s session `session_id`, authenticated now by
        `password` (and `code`, a TOTP or a recovery code, where the second factor is on).
        `user`: the record as read for the caller. S3ValidationError when the factor is on
        and no code is given (before the password is checked); InvalidCredentialsError for
        a wrong password, WrongTotpCodeError for a wrong or spent code; TokenRevokedError
        when the session has ended, told before the code is accepted (see the module)."""
        if user.totp_secret and code is None:
            raise S3ValidationError("code: required, as the account's second factor is on")
        if not isinstance(password, str):
            raise InvalidCredentialsError()
        key = keys.session(user.id, session_id)
        if ending_recorded(self.blacklist, key):
            raise TokenRevokedError("The session has ended")
        matches, _ = await self.passwords.verify(password, user.hashed_password)
        if not matches:
            raise InvalidCredentialsError("The current password is wrong")
        session = self._live_session(key, await get_or_none(self.store, key, Session))
        signing = await self.tokens.signing_key()  # no key to sign with spends no code either
        methods, use = PASSWORD, None
        if user.totp_secret:
            found = await self.totp_login_record(user.id)
            if found is None:
                raise UserNotFoundError()
            use = code_use(code, await self.accept_totp_code(found, code))
            methods = PASSWORD_AND_CODE
        grant = await self._renew_authentication(key, session, methods, signing)
        return msgspec.structs.replace(grant, code_use=use)

    def _live_session(self, key: str, found: Versioned[Session] | None) -> Versioned[Session]:
        """`found`, the session at `key` as just read; TokenRevokedError when it has ended
        (gone, or ended by the rule of `session_rules` or a revocation held here)."""
        if (
            found is None
            or ending_recorded(self.blacklist, key)
            or not self._usable(self._held(found), None, self._now())
        ):
            raise TokenRevokedError("The session has ended")
        return found

    async def _renew_authentication(
        self, key: str, found: Versioned[Session], methods: Methods, signing: KeyEntry
    ) -> AccessGrant:
        """Write the session's new `auth_time` and `amr` with If-Match on `found`, the
        version read (read again when a refresh changed it meanwhile), and issue its token
        (see the module)."""
        for attempt in range(_ATTEMPTS):
            if attempt:
                found = self._live_session(key, await get_or_none(self.store, key, Session))
            now = self._now()
            renewed = msgspec.structs.replace(found.value, auth_time=now, amr=list(methods))
            expiry = self._expiry(renewed)
            fields = self._token_fields(renewed, now, signing, expiry)
            self.tokens.check_access_token_fits(**fields)
            try:
                await self.store.replace(key, renewed, found.etag)
            except StoreConflict:
                continue  # rotated (or ended) meanwhile: read again
            token, claims = self.tokens.issue_access_token(**fields)
            return AccessGrant(
                access_token=token,
                expires_in=int(claims["exp"]) - now,
                refresh_expires_in=max(expiry - now, 0),
            )
        raise TokenRevokedError("The session changed concurrently; log in again")
