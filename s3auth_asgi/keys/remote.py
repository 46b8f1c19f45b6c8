"""JwksVerifier: verify access tokens with the public keys of a JWKS, and nothing else.

For a service that holds no secret and no store: another Python service behind the same
auth, a worker, a gateway plug-in. It reads the JWKS from a URL (`https://auth.example.com
/auth/.well-known/jwks.json`) or a file, and checks tokens exactly as the issuing service
does (`AccessTokenCheck`). Importing it loads neither the object-store library nor a
password hasher.

When the keys are read:

- at the first token, or ahead of it in a lifespan: `await verifier.load()`, which raises
  when the read fails, or `read_keys_again()`, which logs that and carries on;
- in the background once the copy is older than `refresh_seconds` (the answer of the
  request that noticed is not delayed); once it is twice that old (after an idle spell),
  the request waits for the read, so it is not verified with keys the JWKS has dropped
  (unless no key a JWKS holds could verify it: `verifier.TokenForms`);
- when a token names a key the copy lacks, or one it holds that the token's `alg` or
  signature does not match (the issuer may have put another key under the kid since the
  copy was read), at most once per `min_refresh_seconds` however many such tokens arrive:
  random kids, or forged signatures, cost one fetch per interval, not one each. The
  middleware then verifies the token once more: after a read that changed the keys, for an
  unknown kid; after one that found another key under the kid, for a mismatch.

A read in the background still running at the host's shutdown ends there: `await
verifier.close()`, which BearerTokenMiddleware calls when it hears the lifespan shut down
(or the app's start fail).

A read fails whatever goes wrong in it: the connection, the HTTP answer, the JSON or the
keys in it, no whole answer within `timeout_seconds` (one deadline for the read, however
slowly the server sends), or the request that started it cancelled. A failed read keeps
the copy there is (logged); with no copy at all, tokens are refused with 503
`keys_unavailable`, never taken for invalid.

A read that finds a kid kept with another key under it logs it (`keys.observed`) and clears
the verified-token cache of each BearerTokenMiddleware over the verifier
(`verifier.KeyReplacements`): no token the old key signed is accepted after that read.

Revocation is not checked: without the store, a revoked token is accepted until it expires
(the access-token lifetime bounds it); add BlacklistMiddleware over the store where that
is too long.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import anyio

from ..access_check import AccessTokenCheck
from ..errors import (
    ConfigurationError,
    KeyMismatchError,
    StoreUnavailableError,
    UnknownSigningKeyError,
)
from ..freshness import age_since
from ..settings_ranges import Range, check_argument, check_number
from ..shared_on_copy import SharedOnCopy
from ..shown_urls import redacted
from ..types import Clock, elapsed_clock
from ..verifier import Clearable
from .jwks_source import JwksSource
from .keyset import KeySet
from .names import ASYMMETRIC_ALGORITHMS
from .observed import KeyObserver

logger = logging.getLogger("s3auth_asgi.keys")

READ_TIMEOUT = Range(0, 60, "a minute", above_least=True, whole=False)
"""A JWKS is a few kilobytes: a read slower than a minute is a server that is down, and the
requests waiting for the first keys would wait as long."""


class KeysUnavailableError(StoreUnavailableError):
    code = "keys_unavailable"
    title = "The keys that verify tokens could not be read; try again later"


class PossiblyReplacedKeyError(UnknownSigningKeyError):
    """A KeyMismatchError, from a JWKS: another key may be under the token's kid by now. It
    is worth the read an unknown kid is worth, and a second verification only when the read
    found another key under the kid (`replaced`, asked after the read)."""

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Iterable[tuple[str, str]] = (),
        replaced: Callable[[], bool] = lambda: False,
    ) -> None:
        super().__init__(detail, headers=headers)
        self._replaced = replaced

    def worth_verifying_again(self) -> bool:
        return self._replaced()


class JwksVerifier(SharedOnCopy):
    """An AccessTokenVerifier, KeyReader and KeysFreshness over a JWKS `source`: an
    http(s) URL or a file path. `issuer`, `audience`, `access_token_seconds` and
    `leeway_seconds` must match the issuing service's settings (its S3AUTH_ISSUER,
    S3AUTH_AUDIENCE, lifetime and leeway: without `audience`, a token that carries `aud` is
    refused, so every token of a service that sets one), and are held to their ranges, as are
    `refresh_seconds` and `min_refresh_seconds` to S3AUTH_KEY_SYNC_SECONDS's.
    `timeout_seconds` bounds a whole read of a URL, from connecting to the body's end: at
    most a minute. `clock` judges a token's times; `monotonic` times the reads of the JWKS
    (and how long BearerTokenMiddleware's cached verifications stand),
    `types.elapsed_clock(clock)` unless given, so that a step of the host's clock (NTP
    setting back a host that booted ahead) delays no read. A plain http URL must name this
    machine (`localhost`, a loopback address), as must a redirect to plain http, unless
    `allow_plain_http` (a private network, a sidecar): its host is then warned of at the
    first read."""

    def __init__(
        self,
        source: str | Path,
        *,
        issuer: str | None = None,
        audience: str | None = None,
        access_token_seconds: int = 1800,
        leeway_seconds: int = 5,
        refresh_seconds: float = 300.0,
        min_refresh_seconds: float = 30.0,
        timeout_seconds: float = 5.0,
        clock: Clock = time.time,
        monotonic: Clock | None = None,
        allow_plain_http: bool = False,
    ) -> None:
        self._source = JwksSource(source, allow_plain_http=allow_plain_http)
        check_argument(
            "access_token_expire_minutes",
            access_token_seconds,
            "JwksVerifier access_token_seconds",
            unit=60,
        )
        check_argument("leeway_seconds", leeway_seconds, "JwksVerifier leeway_seconds")
        check_argument("key_sync_seconds", refresh_seconds, "JwksVerifier refresh_seconds")
        check_argument("key_sync_seconds", min_refresh_seconds, "JwksVerifier min_refresh_seconds")
        check_number(READ_TIMEOUT, timeout_seconds, "JwksVerifier timeout_seconds")
        if min_refresh_seconds > refresh_seconds:
            raise ConfigurationError(
                "JwksVerifier min_refresh_seconds must be at most its refresh_seconds"
            )
        self.refresh_seconds = refresh_seconds
        self.min_refresh_seconds = min_refresh_seconds
        self.timeout_seconds = timeout_seconds
        self._clock = clock
        self._elapsed = elapsed_clock(clock) if monotonic is None else monotonic
        # The copy ages by the wall clock too, where that is another: a pause of the whole
        # machine stops the monotonic one (`freshness.age_since`).
        self._wall = None if self._elapsed is clock else clock
        self._leeway = leeway_seconds
        self._keys: KeySet | None = None
        self._etag: str | None = None
        # On `_elapsed`: when the last read began, successful or not; when the last one
        # that brought keys began.
        self._read_at = float("-inf")
        self._loaded_at = float("-inf")
        self._read_wall = self._loaded_wall = float("-inf")  # the same two, on `_wall`
        self._failed = False  # the last read failed, and there are no keys
        self._observer = KeyObserver(timed=False)
        self._cleared_at_replacement: weakref.WeakSet[Clearable] = weakref.WeakSet()
        self._lock = anyio.Lock()
        self._background: asyncio.Task[bool] | None = None
        self.fetches = 0
        self._check = AccessTokenCheck(
            self.key_set,
            algorithms=ASYMMETRIC_ALGORITHMS,  # all a JWKS may hold (`KeySet.from_jwks`)
            clock=clock,
            max_lifetime=access_token_seconds,
            leeway=leeway_seconds,
            issuer=issuer,
            audience=audience,
        )

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def monotonic(self) -> Clock:
        """What times the reads of the JWKS (`verifier.elapsed_clock_of`)."""
        return self._elapsed

    @property
    def leeway_seconds(self) -> int:
        return self._leeway

    @property
    def reverify_seconds(self) -> float:
        """The copy of the keys is read again once this old: a key dropped from the JWKS
        stops verifying tokens the middleware has cached within it."""
        return self.refresh_seconds

    def check_token_form(self, token: str | bytes) -> None:
        self._check.check_form(token)  # `verifier.TokenForms`

    def verify_access_token(self, token: str | bytes) -> dict[str, Any]:
        try:
            return self._check.verify(token)
        except KeyMismatchError as mismatch:
            # The issuer may have replaced the key under the kid after the copy was read: a
            # read then, within the budget an unknown kid spends (`read_keys_again`).
            raise self._possibly_replaced(mismatch) from None

    def _possibly_replaced(self, mismatch: KeyMismatchError) -> PossiblyReplacedKeyError:
        kid, observer = mismatch.kid, self._observer
        # The observer holds the thumbprints of the copy the token was refused with.
        held = observer.thumbprint_held(kid)
        return PossiblyReplacedKeyError(
            mismatch.detail,
            replaced=lambda: observer.thumbprint_held(kid) not in (held, None),
        )

    def clear_at_replacement(self, cache: Clearable) -> None:
        """KeyReplacements: clear `cache` (BearerTokenMiddleware's verified tokens) at each
        read that finds a kid kept with another key under it; held weakly."""
        self._cleared_at_replacement.add(cache)

    def key_set(self) -> KeySet:
        keys = self._keys
        if keys is None:
            if self._failed:
                self._refresh_in_background()
                raise KeysUnavailableError()
            raise UnknownSigningKeyError("The verification keys have not been read yet")
        if self._copy_age() >= self.refresh_seconds:
            self._refresh_in_background()
        return keys

    def keys_overdue(self) -> bool:
        """KeysFreshness: no copy read within twice `refresh_seconds` (or none at all), by
        `_copy_age`'s rule, written out: asked at every request, a cached token's too, for
        which the calls it saves were a quarter of its time."""
        overdue = 2 * self.refresh_seconds
        if self._elapsed() - self._loaded_at >= overdue:
            return True
        wall = self._wall
        return wall is not None and wall() - self._loaded_wall >= overdue

    def _copy_age(self) -> float:
        """Since the read that brought the copy began, on the monotonic clock or the wall
        clock, whichever says more: a pause of the machine counts."""
        return age_since(self._elapsed, self._loaded_at, self._wall, self._loaded_wall)

    async def read_overdue_keys(self) -> None:
        await self.read_keys_again()

    async def load(self) -> None:
        """Read the keys now; raise KeysUnavailableError if that fails."""
        async with self._lock:
            await self._read()
        if self._keys is None:
            raise KeysUnavailableError()

    async def read_keys_again(self) -> bool:
        """A KeyReader: read the JWKS unless it was read within `min_refresh_seconds`
        (callers arriving meanwhile share that read). True when the keys changed, or when
        there are none to verify with: verifying again then answers 503, not 401."""
        before = self._keys
        async with self._lock:
            since = age_since(self._elapsed, self._read_at, self._wall, self._read_wall)
            if since >= self.min_refresh_seconds:
                await self._read()
        return self._keys is not before or self._keys is None

    async def close(self) -> None:
        """At a host's shutdown: end the read of the JWKS a request started in the
        background, if it still runs on this event loop, so that it does not outlive the
        host (BearerTokenMiddleware calls this when the lifespan it hears shuts down).
        Nobody awaits that read; the verifier stays usable, and a later stale copy starts
        another."""
        task = self._background
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            return
        task.cancel()
        await asyncio.wait((task,))

    def _refresh_in_background(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = self._background
        if task is None or task.done() or task.get_loop() is not loop:
            # Kept in self._background, never only in the loop's weak set of tasks.
            self._background = loop.create_task(self.read_keys_again())

    async def _read(self) -> None:
        self._read_at = self._elapsed()
        self._read_wall = float("-inf") if self._wall is None else self._wall()
        self.fetches += 1
        try:
            # Revalidated by the ETag of the keys there are.
            etag = self._etag if self._keys is not None else None
            answer = await self._source.fetch(etag=etag, seconds=self.timeout_seconds)
            # No document: not modified, an answer only to the ETag of the keys there are.
            fetched = None if answer.document is None else KeySet.from_jwks(answer.document)
        except Exception as exc:
            # Whatever failed (transport, HTTP, JSON, keys), the read failed: with no keys
            # to keep, tokens get 503 keys_unavailable, never a 500 or a 401.
            self._failed = self._keys is None
            # The message may quote a URL read (a redirect's, or a piece of the source's)
            # with its user info or a signed query.
            said = redacted(str(exc), self._source.url or "")
            logger.warning("reading the JWKS failed: %s: %.200r", type(exc).__name__, said)
            return
        except BaseException:
            # Cut short (its request was cancelled, or the host shut down): it ended without
            # keys all the same, and counts as a read, so cancelled requests cost no more
            # reads. With none to keep, tokens get 503 until the next read, not 401 as if
            # the keys were still to be read.
            self._failed = self._keys is None
            raise
        if fetched is not None:
            # The issuer's changes are in the issuer's log: this one says what it found.
            self._observer.read(fetched, self._clock())
            self._keys = fetched
            if self._observer.replaced:
                # No rotation reuses a kid: the old key under it is one the issuer (or
                # whoever serves its JWKS) disowned, so what it verified stands no moment
                # longer. A kid removed is a rotation's, its tokens checked again within
                # `reverify_seconds`.
                for cache in list(self._cleared_at_replacement):
                    cache.clear()
        # Only a document taken: a refused one's ETag would make its 304 count as a load.
        self._etag = answer.etag
        self._loaded_at, self._loaded_wall = self._read_at, self._read_wall
        self._failed = False
