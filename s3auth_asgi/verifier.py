"""What the middlewares need from whoever checks tokens, as two small protocols.

BearerTokenMiddleware needs an `AccessTokenVerifier`; BlacklistMiddleware a
`RevocationCheck`. `S3AuthService` is both, `TokenCodec` is a verifier and `TokenBlacklist`
a revocation check, and `JwksVerifier` verifies with public keys alone (no store). A
verifier that is also a `KeyReader` reads its keys again when a token names one it does
not know, one that is also `KeysFreshness` has a request wait for a read when its keys
are overdue (after an idle spell), as revocations are waited for, and one that is also
`TokenForms` refuses what no key could verify before either read. `TokenJudge` is that
order, which the middleware, the auth app and the hosts' checks all follow. One whose keys
change while it runs says how often it reads them (`reverify_seconds`): a verification
remembered longer might stand on a key since retired, so the verified-token cache holds
one no longer (`reverify_bound`); one whose source may change the key under a kid it
keeps (`KeyReplacements`) clears the cache at the read that finds it. Depending on these
instead of the service keeps the middlewares free of storage and password hashing:
importing them loads neither obstore nor a hasher.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from .errors import ConfigurationError, S3AuthError, TokenRevokedError, UnknownSigningKeyError
from .types import Clock, elapsed_clock

logger = logging.getLogger("s3auth_asgi")
V = TypeVar("V")

MAX_TOKEN_BYTES = 8192
"""Longer tokens are refused unread: above any token this package issues (`token_budget`
bounds each part of one), far below what would make parsing one expensive."""


@runtime_checkable
class AccessTokenVerifier(Protocol):
    """Checks an access token's signature and claims (not whether it was revoked)."""

    @property
    def clock(self) -> Clock:
        """The clock `exp` is checked against, so a cached token expires in step."""

    @property
    def leeway_seconds(self) -> int:
        """How long past `exp` a token is still accepted."""

    def verify_access_token(self, token: str | bytes) -> dict[str, Any]:
        """The claims of a valid token; InvalidTokenError or TokenExpiredError."""


def verifier_identity(verifier: AccessTokenVerifier) -> object:
    """Which verifier a verification by `verifier` counts as: the object its
    `verifies_as` names, for one that hands every token to another (the service: to its
    TokenCodec, so that the two count as one), else `verifier` itself. The auth app and the
    hosts' checks take a caller from `scope["auth"]` only when their own verifier's
    identity put it there (`middleware.cache.VerifiedToken.verified_by`): a verifier with
    other keys, issuer or audience, a JwksVerifier over the service's own keys included,
    vouches for nothing there, and the token is verified again. Optional, as
    `reverify_seconds` is."""
    named = getattr(verifier, "verifies_as", None)
    return verifier if named is None else named


def reverify_bound(verifier: AccessTokenVerifier) -> float:
    """How long a verification by `verifier` stands before the token is verified again:
    its `reverify_seconds`, or forever (until `exp`) when it has none or says None, its
    keys being fixed while it runs. Optional, so a verifier written elsewhere still
    passes for an AccessTokenVerifier."""
    seconds = getattr(verifier, "reverify_seconds", None)
    if seconds is None:
        return math.inf
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
        raise ConfigurationError("a verifier's reverify_seconds must be a number > 0, or None")
    return float(seconds)


def elapsed_clock_of(verifier: AccessTokenVerifier) -> Clock:
    """What times the reads of `verifier`'s keys, and so how long a verification by it
    stands: its `monotonic` clock when it has one (a JwksVerifier's), else
    `types.elapsed_clock` of its clock (`time.monotonic` beside the real time, as the
    service's key ring times its reads). Optional, as `reverify_seconds` is."""
    given = getattr(verifier, "monotonic", None)
    return given if callable(given) else elapsed_clock(verifier.clock)


@runtime_checkable
class RevocationCheck(Protocol):
    """Knows which valid tokens have been revoked since they were issued."""

    async def ensure_fresh(self, *, strict: bool = False) -> None:
        """Bring what is known of revocations within the freshness bound; raise
        StoreUnavailableError when nothing can be answered from."""

    def revoked_error(self, claims: Mapping[str, Any]) -> TokenRevokedError | None:
        """The refusal for revoked claims, or None."""


SnapshotRead = Callable[[], Awaitable[None]]


@runtime_checkable
class SnapshotReads(Protocol):
    """A RevocationCheck whose `ensure_fresh` brings more than revocations up to date (the
    service: its signing keys kept in the store too), read by read."""

    def snapshot_reads(self) -> list[tuple[str, SnapshotRead]]:
        """What `ensure_fresh` reads, in its order, each with what it reads."""


@runtime_checkable
class StoreChecked(Protocol):
    """A RevocationCheck that writes to a store whose conditional writes it checks first
    (the service: `store_check`)."""

    async def check_store(self) -> None:
        """ConfigurationError when the store lacks a conditional write; StoreUnavailableError
        when it could not be checked now."""


async def load_at_startup(revocations: RevocationCheck) -> None:
    """Check the store (a `StoreChecked`), then load the first snapshots when the app
    starts, so the first request does not wait for them. A store found lacking a
    conditional write is a ConfigurationError, which fails the start. A check or a read
    that fails then is logged, naming what it reads, and is not fatal: requests try again
    (and answer 503 while there is no snapshot; the first write checks the store). As in
    `ensure_fresh`, the reads after a failed one wait for the first request."""
    if isinstance(revocations, StoreChecked):
        try:
            await revocations.check_store()
        except ConfigurationError:
            raise
        except S3AuthError as error:
            logger.warning("no store check at startup: %r", error)
            return
    reads: list[tuple[str, SnapshotRead]]
    if isinstance(revocations, SnapshotReads):
        reads = revocations.snapshot_reads()
    else:
        reads = [("revocation snapshot", revocations.ensure_fresh)]
    for name, read in reads:
        try:
            await read()
        except S3AuthError as error:
            logger.warning("no %s at startup: %r", name, error)
            return


@runtime_checkable
class KeyReader(Protocol):
    """A verifier whose keys can change (rotation): it reads them again on request."""

    async def read_keys_again(self) -> bool:
        """Read the keys again, unless that was done within the verifier's own interval;
        True when they changed, so that a token naming an unknown key is worth a retry
        (if its refusal says so too: `UnknownSigningKeyError.worth_verifying_again`)."""


@runtime_checkable
class KeysFreshness(Protocol):
    """A verifier whose keys are read while it runs, in the background when they are
    stale: it says when they are overdue (the `freshness` policy's two intervals, or never
    read), so that a request waits for a read instead of being verified with keys from
    before an idle spell, which may still hold a key retired meanwhile. Asked only of a
    verifier that also says `reverify_seconds`: keys fixed while it runs are never
    overdue."""

    def keys_overdue(self) -> bool:
        """Whether the keys are too old to verify with before reading them again."""

    async def read_overdue_keys(self) -> None:
        """Read the keys when due; a failure leaves the keys there are (if any)."""


@runtime_checkable
class TokenForms(Protocol):
    """A verifier that can tell, with no key, a token none of the keys it may ever hold
    could verify: not a compact JWS, a header that is not strict JOSE JSON or over its
    bound, an `alg` no such key is pinned to (`none` among them). `TokenJudge` asks it
    before a read of keys, so that such a token is refused 401 without one: a token that
    is no JWT costs no request, and gets no 503 while the keys cannot be read."""

    def check_token_form(self, token: bytes) -> None:
        """InvalidTokenError for such a token."""


class Clearable(Protocol):
    def clear(self) -> None: ...


@runtime_checkable
class KeyReplacements(Protocol):
    """A verifier whose keys come from a source that may keep a kid and change the key under
    it (a JwksVerifier: the issuer's JWKS). A verification made with the old key must not
    stand once that is read, however recent: each cache handed to `clear_at_replacement`
    (held weakly) is cleared by the read that finds a key replaced. Nothing is asked per
    request; the service's own keys need none of it (a stored key's kid is its thumbprint,
    and keys from the environment are fixed while it runs)."""

    def clear_at_replacement(self, cache: Clearable) -> None:
        """Clear `cache` whenever a read finds a kid kept with another key under it."""


@runtime_checkable
class ClosesAtShutdown(Protocol):
    """A verifier with work of its own in the background (a read of its keys that a request
    started and nobody awaits), which `close` ends at the host's shutdown and leaves the
    verifier usable: a JwksVerifier, an S3AuthService. BearerTokenMiddleware calls it once
    the app has shut down or failed to start, where the lifespan reaches the middleware;
    a host whose middleware hears no lifespan (Litestar's) calls it in its own shutdown."""

    async def close(self) -> None:
        """End the verifier's work in the background."""


class TokenJudge(Generic[V]):
    """The one order in which a bearer token is judged, by BearerTokenMiddleware, the auth
    app and the hosts' dependencies and guards alike (`judge`):

    1. keys overdue are read first (a `KeysFreshness` verifier whose keys change while it
       runs), so that a key retired during an idle spell verifies nothing;
    2. the token's signature and claims are checked (`verify`: the verifier's own, or the
       middleware's through its cache);
    3. a token naming a key the verifier does not know makes a `KeyReader` read its keys
       again (at most once per its interval), and is verified once more when they changed
       so that it may verify (`UnknownSigningKeyError.worth_verifying_again`): a key made
       active elsewhere at once (`s3auth keys rotate --now`), or put under a kid a
       JwksVerifier holds, is learnt from the first token it signs.

    Where a read of keys would come first (1) or after (3), a `TokenForms` verifier first
    refuses what no key it may ever hold could verify, asking for none; a token `known`
    (the middleware's cache: verified before) is spared that parse.

    Revocations come only after it, from whoever holds them (BlacklistMiddleware inside the
    middleware; the auth app's and the hosts' checks once this returns): a token that fails
    its signature check is refused 401 `invalid_token` whether the store answers or not,
    asking it nothing, and only a well-signed one waits for a revocation snapshot the store
    cannot give (503)."""

    __slots__ = ("_form", "_keys", "_known", "_reader", "_verify")

    def __init__(
        self,
        verifier: AccessTokenVerifier,
        verify: Callable[[bytes], V],
        *,
        known: Callable[[bytes], bool] | None = None,
    ) -> None:
        self._verify = verify
        self._known = known
        self._reader = verifier if isinstance(verifier, KeyReader) else None
        # Keys fixed while the verifier runs are never overdue: no call per token.
        changing = reverify_bound(verifier) != math.inf
        self._keys = verifier if changing and isinstance(verifier, KeysFreshness) else None
        # Asked only where a read of keys would follow: a token verified at once pays none.
        self._form = verifier.check_token_form if isinstance(verifier, TokenForms) else None

    async def judge(self, token: bytes) -> V:
        """What `verify` makes of `token`, in the order above: its InvalidTokenError or
        TokenExpiredError, or StoreUnavailableError where keys that must be read first
        cannot be (no keys to go on with)."""
        judged = self.at_once(token)
        return await judged.rest if isinstance(judged, Waiting) else judged

    def at_once(self, token: bytes) -> V | Waiting[V]:
        """`judge`, as far as it goes without a wait: what `verify` makes of `token`, or
        where a read of keys comes first or after, a `Waiting` whose `rest` does it and
        judges the token then. The middleware asks this: a coroutine made and awaited for
        nothing was a twentieth of a cached token's request."""
        keys = self._keys
        if keys is not None and keys.keys_overdue():
            self._check_form(token)
            return Waiting(self._after_reading_keys(token, keys))
        # `_verified`, written out: a call less on every request of the middleware.
        try:
            return self._verify(token)
        except UnknownSigningKeyError as unknown:
            return self._after_unknown_key(token, unknown)

    def _check_form(self, token: bytes) -> None:
        if self._form is not None and (self._known is None or not self._known(token)):
            self._form(token)

    def _verified(self, token: bytes) -> V | Waiting[V]:
        try:
            return self._verify(token)
        except UnknownSigningKeyError as unknown:
            return self._after_unknown_key(token, unknown)

    def _after_unknown_key(self, token: bytes, unknown: UnknownSigningKeyError) -> Waiting[V]:
        if self._reader is None:
            raise unknown
        self._check_form(token)
        return Waiting(self._verified_again(token, self._reader, unknown))

    async def _after_reading_keys(self, token: bytes, keys: KeysFreshness) -> V:
        await keys.read_overdue_keys()
        judged = self._verified(token)
        return await judged.rest if isinstance(judged, Waiting) else judged

    async def _verified_again(
        self, token: bytes, reader: KeyReader, unknown: UnknownSigningKeyError
    ) -> V:
        if not await reader.read_keys_again() or not unknown.worth_verifying_again():
            raise unknown
        return self._verify(token)


class Waiting(Generic[V]):
    """A judgement of `TokenJudge.at_once` that waits for a read of keys: `rest`, to
    await (once), does the read and gives the judgement."""

    __slots__ = ("rest",)

    def __init__(self, rest: Coroutine[Any, Any, V]) -> None:
        self.rest = rest
