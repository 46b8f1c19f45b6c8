"""Account tokens: the single-use, short-lived tokens mailed for a password reset, an
email verification or a change of address.

Token: `pr1.{token_id}.{secret}` (password reset), `ev1.{token_id}.{secret}` (email
verification) or `ec1.{token_id}.{secret}` (a new address, `email_changes`), the secret 256
random bits. Object: `account-tokens/{purpose}/{token_id}`
(`models.AccountToken`), holding an HMAC-SHA256 of the purpose, the id and the secret under
a key derived from the secret key for account tokens alone, never the token: a copy of the
store cannot be turned into a working link. Checked in constant time, under the secret key
and then each of S3AUTH_SECRET_KEY_FALLBACKS (`tokens.matching_key`): a link mailed before
a rotation still works.

Purpose-bound three times over: the prefix, the key (a reset token's id names no
verification token's object) and the purpose in the hashed message.

Single use. A token is spent by the user-record write its use makes, which is conditional
(If-Match): a reset writes a new session generation, a verification marks the address
verified, a change of address moves to the new one, and a token works only while the
record is as it was issued for (`recovery.still_bound`: the account active; the same
generation; the same address, unverified, its mark never set or cleared since
(`User.verified_changes`); the same new address asked for, by the latest request; and
for all the same `User.email_changes`, so that an address changed to another and back
does not revive the links mailed to it). Of
two concurrent uses exactly one write lands; the other reads the record again and finds it
moved on. Spending one reset token spends every other of the account. The object is
deleted afterwards, in the same request.

Unknown names. Asking for a token for a name that is nobody's writes a decoy (an object
of no user, whose secret is thrown away) so that the request costs what it costs for an
account: the same index GET, a user GET, and this PUT.

Expiry. A token works for its lifetime, the one written at its issue or the one configured
today if shorter (`S3AUTH_PASSWORD_RESET_MINUTES`, `S3AUTH_EMAIL_VERIFICATION_HOURS`), so
that a shortened lifetime applies to tokens already mailed, from its issue time, by the
clock of the host that redeems it. That issue time is the issuing host's clock's, which
the store's Last-Modified of the token, LM, holds to the clock-skew allowance S
(`S3AUTH_REVOCATION_SKEW_SECONDS`), which bounds every clock's distance to the store's
(`last_modified`): the issue time counts as

    issued = min(max(written issue time, LM - S), LM + S)

(`link_expiry.link_deadline`). A host whose clock ran ahead mails tokens that work at most
their lifetime and S past LM, not that much longer; one whose clock ran behind, tokens that
work at least their lifetime less S past it, not that much shorter (a reset link from a
host behind by more than its lifetime would be dead on arrival). Within the allowance the
written time stands. A token whose written time lies further off is judged by the
store's time of it, and the host that reads it says so: a warning naming the difference,
never the token, since nothing else would point at the issuing host's clock.

Sweep. `cleanup_expired_tokens` deletes tokens and decoys from the listing alone, once
their Last-Modified plus today's lifetime is more than twice the clock-skew allowance past,
as it does idle sessions (`last_modified` says why twice): no host whose clock is within
the allowance would still accept one it deletes, and one it keeps past its expiry every
host refuses.

Request budgets: issue, 1 PUT (`issue_with_record` a GET more, which reads the token's
Last-Modified back); redeem, 1 GET (none for a malformed token).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from typing import Any, Literal, NamedTuple

from .errors import S3ValidationError, StoreUnavailableError
from .hidden_fields import fields_repr, shown_fields
from .identifiers import ID_PATTERN, fold, new_id
from .last_modified import lapsed_everywhere
from .link_expiry import link_deadline
from .models import AccountToken, User
from .settings import S3AuthSettings
from .storage import ObjectInfo, Store, keys
from .storage.access import get_or_none
from .storage.batching import delete_as_listed
from .tokens import derive_keys, matching_key
from .types import Clock

Purpose = Literal["password-reset", "email-verification", "email-change"]
PREFIXES: dict[Purpose, str] = {
    "password-reset": "pr1",
    "email-verification": "ev1",
    "email-change": "ec1",
}
_PURPOSES: dict[str, Purpose] = {purpose: purpose for purpose in PREFIXES}  # by key folder
_BY_PREFIX: dict[str, Purpose] = {prefix: purpose for purpose, prefix in PREFIXES.items()}
_TOKEN = re.compile(rf"(pr1|ev1|ec1)\.({ID_PATTERN})\.([A-Za-z0-9_-]{{43}})")
_SECRET_BYTES = 32

logger = logging.getLogger("s3auth_asgi")


class InvalidAccountTokenError(S3ValidationError):
    """One answer for a token that is malformed, unknown, of another purpose, expired,
    spent, or whose account has changed since: which one is nobody's business."""

    status = 400
    code = "invalid_account_token"
    title = "The link is invalid, has been used, or has expired"


class IssuedToken(NamedTuple):
    """A token as `AccountTokens.issue_with_record` issued it."""

    token: str
    record: AccountToken
    stored_at: float
    """The store's Last-Modified of `record`, as `redeem` reads it (seconds since the
    epoch)."""

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return shown_fields(self, self._fields, secret=("token",))

    def __repr__(self) -> str:
        return fields_repr(self, self.__rich_repr__())


def purpose_of(token: object) -> Purpose | None:
    """The purpose a token's prefix names; None for what is no token. Says nothing of
    whether it works (`AccountTokens.redeem`)."""
    match = _TOKEN.fullmatch(token) if isinstance(token, str) else None
    return _BY_PREFIX[match[1]] if match is not None else None


class AccountTokens:
    """Issues, redeems and sweeps account tokens in `store`, for the lifetimes and the
    clock-skew allowance of `settings`."""

    def __init__(self, store: Store, settings: S3AuthSettings, *, clock: Clock) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self._keys = derive_keys(settings.secret_keys, "account-token")

    def lifetime(self, purpose: Purpose) -> int:
        """The configured lifetime of tokens of `purpose`, in seconds (a change of address
        is an email verification, of the new address)."""
        if purpose == "password-reset":
            return self.settings.password_reset_minutes * 60
        return self.settings.email_verification_hours * 3600

    @staticmethod
    def _digest(key: bytes, purpose: Purpose, token_id: str, secret: str) -> str:
        message = f"{purpose}.{token_id}.{secret}".encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    async def issue(self, purpose: Purpose, user: User | None) -> str:
        """A new token for `user` (1 PUT), bound to its address (to the new address it
        asked for, for a change of address); for None, a decoy at the same cost, whose
        token is returned but works for nobody."""
        return (await self._write(purpose, user))[0]

    async def issue_with_record(self, purpose: Purpose, user: User) -> IssuedToken:
        """`issue`, with the record stored and the store's Last-Modified of it, read back
        (a PUT and a GET): with them `link_deadline` says when the token stops working,
        as `redeem` judges it, without reading the token again."""
        token, key, record = await self._write(purpose, user)
        found = await get_or_none(self.store, key, AccountToken)
        if found is None:  # the store lost what it had just acknowledged
            raise StoreUnavailableError()
        return IssuedToken(token, record, found.last_modified.timestamp())

    async def _write(self, purpose: Purpose, user: User | None) -> tuple[str, str, AccountToken]:
        """A new token's text, its key and its record, stored (1 PUT)."""
        token_id = new_id()
        secret = secrets.token_urlsafe(_SECRET_BYTES)
        now = int(self.clock())
        address = (
            "" if user is None else user.pending_email if purpose == "email-change" else user.email
        )
        record = AccountToken(
            purpose=purpose,
            user_id=user.id if user is not None else "",
            digest=self._digest(self._keys[0], purpose, token_id, secret),
            email=fold(address),
            user_generation=user.session_generation if user is not None else "",
            email_changes=user.email_changes if user is not None else 0,
            email_request=user.email_requests if user is not None else 0,
            verified_changes=user.verified_changes if user is not None else 0,
            created_at=now,
            expires_at=now + self.lifetime(purpose),
        )
        key = keys.account_token(purpose, token_id)
        await self.store.create(key, record)
        return f"{PREFIXES[purpose]}.{token_id}.{secret}", key, record

    async def redeem(self, purpose: Purpose, token: object) -> tuple[str, AccountToken]:
        """The key and record of a valid, unexpired token of `purpose` (1 GET); not yet
        spent: the caller's user-record write does that. InvalidAccountTokenError else."""
        match = _TOKEN.fullmatch(token) if isinstance(token, str) else None
        if match is None or match[1] != PREFIXES[purpose]:
            raise InvalidAccountTokenError()
        token_id, secret = match[2], match[3]
        key = keys.account_token(purpose, token_id)
        found = await get_or_none(self.store, key, AccountToken)
        if (
            found is None
            or matching_key(
                self._keys,
                found.value.digest,
                lambda key: self._digest(key, purpose, token_id, secret),
            )
            is None
            or found.value.purpose != purpose
            or not found.value.user_id
        ):
            raise InvalidAccountTokenError()
        record, skew = found.value, self.settings.revocation_skew_seconds
        written = found.last_modified.timestamp()
        _warn_if_off(purpose, record.created_at - written, skew)
        deadline = link_deadline(
            record.created_at, record.expires_at, self.lifetime(purpose), written, skew
        )
        if deadline <= self.clock():
            raise InvalidAccountTokenError()
        return key, record

    async def cleanup(self) -> int:
        """Delete the tokens (and decoys) that have surely expired on every host, judging
        from the listing alone (see the module); returns how many."""
        now = self.clock()
        expired = (
            info.key
            async for info in self.store.list(keys.ACCOUNT_TOKENS)
            if self._surely_expired(info, now)
        )
        return await delete_as_listed(self.store, expired)

    def _surely_expired(self, info: ObjectInfo, now: float) -> bool:
        folder = info.key.removeprefix(keys.ACCOUNT_TOKENS).partition("/")[0]
        purpose = _PURPOSES.get(folder)
        if purpose is None:  # not a token's key: not ours to delete
            return False
        return lapsed_everywhere(
            info, self.lifetime(purpose), self.settings.revocation_skew_seconds, now
        )


def _warn_if_off(purpose: Purpose, offset: float, skew: int) -> None:
    """Say when a token's issue time is further off its write than clocks may be: the
    token is judged by the store's time instead, and nothing else would point at the
    issuing host's clock."""
    if abs(offset) > skew:
        logger.warning(
            "a %s link was issued by a host whose clock was %d s %s the store's, more than "
            "S3AUTH_REVOCATION_SKEW_SECONDS (%d): its expiry is judged by the store's time",
            purpose,
            round(abs(offset)),
            "behind" if offset < 0 else "ahead of",
            skew,
        )
