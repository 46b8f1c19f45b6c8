"""Account tokens: the single-use, short-lived tokens mailed for a password reset or an
email verification.

Token: `pr1.{token_id}.{secret}` (password reset) or `ev1.{token_id}.{secret}` (email
verification), the secret 256 random bits. Object: `account-tokens/{purpose}/{token_id}`
(`models.AccountToken`), holding an HMAC-SHA256 of the purpose, the id and the secret under
a key derived from the secret key for account tokens alone, never the token: a copy of the
store cannot be turned into a working link. Checked in constant time.

Purpose-bound three times over: the prefix, the key (a reset token's id names no
verification token's object) and the purpose in the hashed message.

Single use. A token is spent by the user-record write its use makes, which is conditional
(If-Match): a reset writes a new session generation, a verification marks the address
verified, and a token works only while the record is as it was issued for (the same
generation; the same address, unverified). Of two concurrent uses exactly one write lands;
the other reads the record again and finds it moved on. Spending one reset token spends
every other of the account. The object is deleted afterwards, in the same request.

Unknown names. Asking for a token for a name that is nobody's writes a decoy (an object
of no user, whose secret is thrown away) so that the request costs what it costs for an
account: the same index GET, a user GET, and this PUT. Decoys and expired tokens are
deleted by `cleanup_expired_tokens`, judging from the listing alone.

Request budgets: issue, 1 PUT; redeem, 1 GET (none for a malformed token).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Literal

from .errors import S3ValidationError
from .identifiers import ID_PATTERN, fold, new_id
from .models import AccountToken, User
from .storage import Store, keys
from .storage.access import get_or_none
from .tokens import derive_key
from .types import Clock

Purpose = Literal["password-reset", "email-verification"]
PREFIXES: dict[Purpose, str] = {"password-reset": "pr1", "email-verification": "ev1"}
_TOKEN = re.compile(rf"(pr1|ev1)\.({ID_PATTERN})\.([A-Za-z0-9_-]{{43}})")
_SECRET_BYTES = 32


class InvalidAccountTokenError(S3ValidationError):
    """One answer for a token that is malformed, unknown, of another purpose, expired,
    spent, or whose account has changed since: which one is nobody's business."""

    status = 400
    code = "invalid_account_token"
    title = "The link is invalid, has been used, or has expired"


class AccountTokens:
    """Issues and redeems account tokens in `store`."""

    def __init__(self, store: Store, secret_key: str, *, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._key = derive_key(secret_key, "account-token")

    def _digest(self, purpose: Purpose, token_id: str, secret: str) -> str:
        message = f"{purpose}.{token_id}.{secret}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    async def issue(self, purpose: Purpose, user: User | None, lifetime_seconds: int) -> str:
        """A new token for `user` (1 PUT); for None, a decoy at the same cost, whose token
        is returned but works for nobody."""
        token_id = new_id()
        secret = secrets.token_urlsafe(_SECRET_BYTES)
        now = int(self.clock())
        record = AccountToken(
            purpose=purpose,
            user_id=user.id if user is not None else "",
            digest=self._digest(purpose, token_id, secret),
            email=fold(user.email) if user is not None else "",
            user_generation=user.session_generation if user is not None else "",
            created_at=now,
            expires_at=now + lifetime_seconds,
        )
        await self.store.create(keys.account_token(purpose, token_id), record)
        return f"{PREFIXES[purpose]}.{token_id}.{secret}"

    async def redeem(self, purpose: Purpose, token: object) -> tuple[str, AccountToken]:
        """The key and record of a valid, unexpired token of `purpose` (1 GET); not yet
        spent: the caller's user-record write does that. InvalidAccountTokenError else."""
        match = _TOKEN.fullmatch(token) if isinstance(token, str) else None
        if match is None or match[1] != PREFIXES[purpose]:
            raise InvalidAccountTokenError()
        token_id, secret = match[2], match[3]
        key = keys.account_token(purpose, token_id)
        found = await get_or_none(self.store, key, AccountToken)
        expected = self._digest(purpose, token_id, secret)
        record = found.value if found is not None else None
        if (
            record is None
            or not hmac.compare_digest(record.digest, expected)
            or record.purpose != purpose
            or not record.user_id
            or record.expires_at <= self.clock()
        ):
            raise InvalidAccountTokenError()
        return key, record

    async def cleanup(self, lifetimes: dict[Purpose, int]) -> int:
        """Delete the tokens (and decoys) older than their purpose's lifetime, judging
        from the listing's Last-Modified; returns how many."""
        now = self.clock()
        expired = []
        async for info in self.store.list(keys.ACCOUNT_TOKENS):
            purpose = info.key.removeprefix(keys.ACCOUNT_TOKENS).partition("/")[0]
            lifetime = lifetimes.get(purpose)  # type: ignore[call-overload]
            if lifetime is not None and info.last_modified.timestamp() + lifetime < now:
                expired.append(info.key)
        if expired:
            await self.store.delete_many(expired)
        return len(expired)
