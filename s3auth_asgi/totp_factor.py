"""A user's second factor: a TOTP authenticator app (`totp`), opt-in by the user.

Turning it on takes two steps. `start_totp` (the auth app asks for the current password
first) makes a seed, keeps it sealed (`totp_seeds`) as the record's `pending_totp_secret`
and answers it once, in base32 and as an otpauth:// URI, for the app; it waits
`PENDING_SECONDS` for a code. `confirm_totp` checks a code of it and only then moves it to
`totp_secret`: from then on a login needs a code, and a factor the app never received
cannot lock its user out. `disable_totp` turns it off, given a code (the owner, who also
gives the current password at the auth app), or without one (an administrator, or
`s3auth user totp-off`, for a lost device). Either change mails the account's address a
notice (no link), as a new password does.

A code works once (RFC 6238 §5.2): the record keeps the step of the last code accepted
(`totp_last_step`), and a code is accepted only for a later step, written with If-Match on
the record that was read. Two instances given the same code at once both find it good on the
record as read; one write lands, the other's If-Match fails, and its retry reads the record
again, finds the step taken, and refuses. Accepting a code costs a conditional PUT of the
record (the auth app's `POST /login/totp`: the record GET, that PUT, then the session's 2:
`session_opening`; and a revocation sync first where the snapshot is overdue). That write
also keeps the seed sealed under the current secret key when it opened only under one of
S3AUTH_SECRET_KEY_FALLBACKS (`totp_seeds`), at no request more. A recovery
code (`recovery_codes`, `new_recovery_codes`) is accepted in place of a code, at a login and
to turn the factor off: its hash is verified (one password hash) and taken out of the record
by the same If-Match write, so it too works once. Its use at a login or a re-authentication
(`accept_totp_code`) is told to the account's address (`code_uses`: the codes left, no
link), in the background, at no store request more; turning the factor off is told as such.

Time: the step is this instance's clock's (`clock`, the service's), and a code is accepted
one step either side of it (`totp.WINDOW`): a phone or an instance whose clock is up to
about 30 s off still works, a code lives at most 90 s, and instances must keep their
clocks with NTP, as the tokens' expiries already need.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import msgspec

from .code_uses import code_use, notice_values
from .errors import ConflictError
from .hidden_fields import HidesSecrets
from .identifiers import is_id
from .models import User
from .open_records import open_record
from .password_changes import PasswordChanges
from .recovery_codes import new_codes, parsed
from .storage import Versioned, keys
from .storage.access import get_or_none
from .totp import accepted_step, encode_secret, new_seed, otpauth_uri
from .totp_errors import (
    TotpEnabledError,
    TotpNotEnabledError,
    TotpNotPendingError,
    WrongTotpCodeError,
)
from .totp_seeds import SeedSeal
from .user_records import Change, if_fields_are

PENDING_SECONDS = 600
"""How long a seed shown to its user waits for the code that turns it on."""


class TotpEnrolment(HidesSecrets, msgspec.Struct, kw_only=True):
    """A new seed, as shown once to its user: for typing in, and for a QR code."""

    secret_fields: ClassVar[frozenset[str]] = frozenset(("secret", "otpauth_uri"))

    secret: str
    """The seed in base32, no padding."""
    otpauth_uri: str
    expires_in: int
    """Seconds left to confirm it with a code."""


def _turned_off(user: User) -> User:
    return msgspec.structs.replace(
        user,
        totp_secret="",
        pending_totp_secret="",
        pending_totp_at=0,
        totp_last_step=0,
        totp_recovery=[],
    )


class TotpFactor(PasswordChanges):
    """Turning the second factor on and off, and accepting its codes. A part of
    `S3AuthService`, which sets `seeds`."""

    seeds: SeedSeal

    async def start_totp(
        self,
        user_id: str,
        *,
        issuer: str,
        expect: Mapping[str, Any] | None = None,
        require: Callable[[User], object] | None = None,
    ) -> TotpEnrolment:
        """A new seed, kept pending on the record (any earlier one replaced) until
        `confirm_totp`; TotpEnabledError when the factor is on. `expect`, `require`: as
        `update_user`'s (the auth app's: the password it checked is still the record's)."""
        seed = new_seed()
        sealed = self.seeds.seal(seed, user_id)
        now = self._now()

        def change(stored: User) -> User:
            if require is not None:
                require(stored)
            if stored.totp_secret:
                raise TotpEnabledError()
            return msgspec.structs.replace(stored, pending_totp_secret=sealed, pending_totp_at=now)

        _, user = await self._update(user_id, if_fields_are(expect or {}, change))
        uri = otpauth_uri(seed, issuer=issuer, account=user.username)
        return TotpEnrolment(
            secret=encode_secret(seed), otpauth_uri=uri, expires_in=PENDING_SECONDS
        )

    async def confirm_totp(
        self, user_id: str, code: object, *, require: Callable[[User], object] | None = None
    ) -> User:
        """Turn the factor on with a code of the pending seed. TotpNotPendingError when
        none waits (or its time has run out), WrongTotpCodeError for a wrong code."""
        current = await self._load_user(user_id)
        user = current.value
        if require is not None:
            require(user)
        if user.totp_secret:
            raise TotpEnabledError()
        pending = user.pending_totp_secret
        opened = self.seeds.open_keyed(pending, user_id) if pending else None
        if opened is None or self.clock() >= user.pending_totp_at + PENDING_SECONDS:
            raise TotpNotPendingError()
        step = accepted_step(opened.seed, code, self.clock())
        if step is None:
            raise WrongTotpCodeError()
        sealed = self.seeds.kept_or_resealed(pending, user_id, opened)

        def change(stored: User) -> User:
            if require is not None:
                require(stored)
            if stored.totp_secret:
                raise TotpEnabledError()
            if stored.pending_totp_secret != pending:  # another start or confirmation
                raise TotpNotPendingError()
            return msgspec.structs.replace(
                stored,
                totp_secret=sealed,
                pending_totp_secret="",
                pending_totp_at=0,
                totp_last_step=step,
            )

        _, after = await self._update(user_id, change, current)
        self.mail.notify("totp_enabled_notice", to=after.email, username=after.username)
        return after

    async def disable_totp(
        self,
        user_id: str,
        code: object = None,
        *,
        checked: bool = True,
        expect: Mapping[str, Any] | None = None,
        require: Callable[[User], object] | None = None,
    ) -> User:
        """Turn the factor off. With `checked` (the owner), `code` must be a code of it
        not used yet (it is spent here); without (an administrator, for a lost device), no
        code is asked. TotpNotEnabledError when it is off; the account's address is told."""
        current = await self._load_user(user_id)
        user = current.value
        if require is not None:
            require(user)
        if not user.totp_secret:
            raise TotpNotEnabledError()
        change: Change = _turned_off
        if checked:
            spend = await self._spending(user, code)

            def change(stored: User) -> User:
                return _turned_off(spend(stored))

        def guarded(stored: User) -> User:
            if require is not None:
                require(stored)
            if not stored.totp_secret:
                raise TotpNotEnabledError()
            return change(stored)

        _, after = await self._update(user_id, if_fields_are(expect or {}, guarded), current)
        self.mail.notify("totp_disabled_notice", to=after.email, username=after.username)
        return after

    async def totp_login_record(self, user_id: str) -> Versioned[User] | None:
        """The open record of `user_id` with its version, for a login's second step (1
        GET); None when there is none."""
        if not is_id(user_id):
            return None
        return open_record(await get_or_none(self.store, keys.user(user_id), User), user_id)

    async def accept_totp_code(
        self,
        found: Versioned[User],
        code: object,
        *,
        require: Callable[[User], object] | None = None,
    ) -> User:
        """The record after `code` is accepted: a code of its factor for a step later than
        the last one accepted (that step written with If-Match; see the module), or one of
        its recovery codes not used yet (its hash taken out, with If-Match: one verification
        of a password hash). WrongTotpCodeError otherwise, a concurrent use of the same code
        included. `require` judges the record each write goes over, once the code is found
        unused on it: what the caller decided on `found` may have changed before the write
        (the login's `mfa_token`, which a new password, a disabling or another code ends).
        A recovery code's use is told to the account's address (`code_uses`)."""
        spend = await self._spending(found.value, code)

        def change(stored: User) -> User:
            spent = spend(stored)
            if require is not None:
                require(stored)
            return spent

        _, after = await self._update(found.value.id, change, found)
        use = code_use(code, after)
        if use.second_factor == "recovery_code":
            self.mail.notify(
                "recovery_code_used_notice",
                to=after.email,
                username=after.username,
                details=notice_values(use, self.clock()),
            )
        return after

    async def new_recovery_codes(
        self,
        user_id: str,
        *,
        expect: Mapping[str, Any] | None = None,
        require: Callable[[User], object] | None = None,
    ) -> list[str]:
        """Ten new recovery codes of the user's factor, answered once, in place of any
        earlier ones (which stop working); their hashes are kept (`recovery_codes`: ten
        password hashes). TotpNotEnabledError when the factor is off; ConflictError when
        the codes changed after they were read (other new ones, or one used): written over
        them, the answer of a request that wrote its codes first would show codes that
        never work."""
        current = await self._load_user(user_id)
        if not current.value.totp_secret:
            raise TotpNotEnabledError()
        codes = new_codes()
        hashes = [await self.passwords.hash(parsed_secret(code)) for code in codes]

        def change(stored: User) -> User:
            if require is not None:
                require(stored)
            if stored.totp_secret != current.value.totp_secret:  # turned off, or another
                raise TotpNotEnabledError() if not stored.totp_secret else ConflictError()
            if stored.totp_recovery != current.value.totp_recovery:
                raise ConflictError()
            return msgspec.structs.replace(stored, totp_recovery=hashes)

        await self._update(user_id, if_fields_are(expect or {}, change), current)
        return codes

    async def _spending(self, user: User, code: object) -> Change:
        """The change that spends `code`, a TOTP or a recovery code of `user`'s factor, on
        the record it is written over (refused there, WrongTotpCodeError, when the factor
        has changed or the code has been used meanwhile); WrongTotpCodeError when `code` is
        neither."""
        recovery = parsed(code)
        if recovery is None:
            step, sealed = self._accepted(user, code)

            def spend_step(stored: User) -> User:
                if stored.totp_secret != user.totp_secret or stored.totp_last_step >= step:
                    raise WrongTotpCodeError()
                return msgspec.structs.replace(stored, totp_last_step=step, totp_secret=sealed)

            return spend_step
        slot, secret = recovery
        hashed = user.totp_recovery[slot] if slot < len(user.totp_recovery) else ""
        matches, _ = await self.passwords.verify(secret, hashed or None)
        if not hashed or not matches:
            raise WrongTotpCodeError()
        resealed = self.seeds.resealed(user.totp_secret, user.id)

        def spend_code(stored: User) -> User:
            kept = stored.totp_recovery
            if stored.totp_secret != user.totp_secret or kept[slot : slot + 1] != [hashed]:
                raise WrongTotpCodeError()
            return msgspec.structs.replace(
                stored, totp_recovery=[*kept[:slot], "", *kept[slot + 1 :]], totp_secret=resealed
            )

        return spend_code

    def _accepted(self, user: User, code: object) -> tuple[int, str]:
        """The step of `code` for `user`'s factor, and its seed as the current secret key
        seals it (sealed anew when a fallback's opened it: the write that spends the code
        keeps it so); WrongTotpCodeError when it is none (a seed that no secret key of the
        settings opens accepts no code)."""
        opened = self.seeds.open_keyed(user.totp_secret, user.id)
        step = None
        if opened is not None:
            step = accepted_step(opened.seed, code, self.clock(), last_step=user.totp_last_step)
        if opened is None or step is None:
            raise WrongTotpCodeError()
        return step, self.seeds.kept_or_resealed(user.totp_secret, user.id, opened)


def parsed_secret(code: str) -> str:
    """The secret of a code `recovery_codes.new_codes` made."""
    found = parsed(code)
    assert found is not None
    return found[1]
