"""KeyRing: where a service's signing keys come from, and the key set it uses now.

    S3AUTH_ALGORITHM   keys                          rotation
    HS256/384/512      the secret itself (and each   a new S3AUTH_SECRET_KEY, the
                       fallback, verifying only)     old one a fallback
    asymmetric, with   S3AUTH_SIGNING_KEY(_FILE),    by the operator, through
    a key given        S3AUTH_VERIFICATION_KEYS_FILE the two variables
    asymmetric, none   kept in the store             `s3auth keys rotate/retire`
    given              (`keys.stored`), made at
                       first start

A key set read from the store is a snapshot that follows the revocation snapshot's
freshness policy (`freshness`) with `S3AUTH_KEY_SYNC_SECONDS` as its interval, so every
process sees a rotation within one interval, whether it signs tokens, publishes the JWKS or
only verifies (`key_set` starts the read; BearerTokenMiddleware waits for it when the keys
are overdue, `is_overdue`); a token naming an unknown key makes the ring
read again, at most once per interval however many such tokens arrive. A read that finds
the set changed, and the first token signed with a key new to the process, are logged
(`keys.observed`), whoever made the change. Keys are published
longer before they sign than a verifier can keep a JWKS served from a key set two intervals
old (settings refuse otherwise), so in practice no token ever names a key its verifier has
not read.

A process that has no keys and finds a stored set that does not open cannot verify, sign
or publish: what waits for the keys gets KeysUnavailableError (a 503 `keys_unavailable`,
as a verifier whose JWKS cannot be read answers), caused by the ConfigurationError, which
is logged once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Container

from joserfc.jwk import OctKey

from ..errors import ConfigurationError, S3AuthError, UnknownSigningKeyError
from ..freshness import SnapshotFreshness
from ..jose_json import b64url
from ..settings import S3AuthSettings, env_name
from ..storage.base import Store
from ..token_budget import check_signing_key
from ..types import Clock, elapsed_clock
from .algorithms import check_key
from .events import Actor
from .keyset import DEFAULT_ALGORITHMS, KeyEntry, KeySet, entry_for
from .material import import_key, public_only, read_key_file
from .names import UnusableKeyError, is_symmetric
from .observed import KeyObserver
from .publish import JwksPublication
from .remote import KeysUnavailableError
from .sources import check_key_sources
from .stored import KeyStore

logger = logging.getLogger("s3auth_asgi.keys")

_PEM_BLOCK = re.compile(r"-----BEGIN [A-Z ]+-----.+?-----END [A-Z ]+-----", re.DOTALL)


def key_that_signs(
    keys: KeySet, now: float, *, published: Container[str] | None = None
) -> KeyEntry:
    """The key to sign with at `now` (`KeySet.signing_key`), or KeysUnavailableError, its
    cause the ConfigurationError saying why, when none signs: keys that open but of which
    none can sign on this clock (each activates later, or a set written by hand of keys
    that only verify) leave nothing to sign with, as keys that cannot be read do, a 503
    `keys_unavailable`. The one rule for every path that signs: the service's logins and
    refreshes and a TokenCodec used on its own."""
    try:
        return keys.signing_key(now, published=published)
    except ConfigurationError as error:
        raise KeysUnavailableError() from error


class KeyRing:
    def __init__(
        self,
        settings: S3AuthSettings,
        store: Store | None,
        *,
        clock: Clock,
        by: Actor = "service",
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.stored: KeyStore | None = None
        self.observer: KeyObserver | None = None
        """What this process logs of the stored set changing (`keys.observed`)."""
        self.freshness: SnapshotFreshness | None = None
        self._keys: KeySet | None = None
        self._unusable_reported = ""
        self.publication = (
            JwksPublication(
                settings.jwks_publish_url,
                max_age=settings.jwks_max_age_seconds,
                retry_seconds=settings.key_sync_seconds,
                clock=clock,
            )
            if settings.jwks_publish_url
            else None
        )
        self.active = self.publication is not None
        """Whether `ensure_fresh` has anything to do: reading stored keys, or writing the
        JWKS to S3AUTH_JWKS_PUBLISH_URL not yet written. Per request, callers check this
        instead of awaiting a call that does nothing."""
        check_key_sources(settings)  # what the settings were judged by when made
        if is_symmetric(settings.algorithm):
            self.source = "secret"
            self._keys = KeySet(hmac_entries(settings))
            return
        if settings.signing_key or settings.signing_key_file:
            signing = settings.signing_key or read_key_file(
                env_name("signing_key_file"), settings.signing_key_file
            )
            self.source = "environment"
            self._keys = environment_keys(settings, signing)
            return
        if store is None:
            raise ConfigurationError(
                f"{settings.algorithm} keys kept in the store need a store; or set "
                f"{env_name('signing_key')}"
            )
        self.source = "store"
        self.active = True
        self.stored = KeyStore(
            store,
            encryption_key=settings.key_encryption_key,
            skew_seconds=settings.revocation_skew_seconds,
            by=by,
        )
        self.observer = KeyObserver()
        self.freshness = SnapshotFreshness(
            self._read_store,
            interval=settings.key_sync_seconds,
            clock=elapsed_clock(clock),
            wall=clock,
            name="signing keys",
        )

    def key_set(self) -> KeySet:
        """The keys to verify with now. Stored keys that are stale are read again in the
        background while the caller verifies with those it has: a process that only
        verifies tokens asks for keys nowhere else, and must see a retired key go within
        about one interval. Before the store was first read: none."""
        if self.freshness is not None:
            self.freshness.start_in_background_if_stale()  # when fresh: one clock reading
        keys = self._keys
        if keys is None:
            raise UnknownSigningKeyError("The signing keys have not been read yet")
        return keys

    async def signing_key(self) -> KeyEntry:
        """The key that signs now, the stored keys read first when due (`signing_key_at`)."""
        if self.active:
            await self.ensure_fresh()
        return self.signing_key_at(self.clock())

    def signing_key_at(self, now: float) -> KeyEntry:
        """The key that signs at `now` in the key set as last read (`key_that_signs`). With
        S3AUTH_JWKS_PUBLISH_URL, a key this process has not written there yet signs only
        when no key it has written can: verifiers that read the JWKS there must know a key
        before it signs."""
        publication = self.publication
        published = None if publication is None else publication.kids
        try:
            key = key_that_signs(self.key_set(), now, published=published)
        except KeysUnavailableError as error:
            self._report_unusable(str(error.__cause__))
            raise
        if self.observer is not None:
            self.observer.signs(key, now)
        return key

    def is_stale(self) -> bool:
        """Whether `ensure_fresh` has anything to do now."""
        return self.active and (self.freshness is None or self.freshness.is_stale())

    async def ensure_fresh(self) -> None:
        """Read the stored keys when due (each read publishes what changed); keys fixed at
        start are published once written (`JwksPublication` paces the tries)."""
        if self.freshness is not None:
            await self._answerable(self.freshness.ensure())
        elif self._keys is not None and self.publication is not None and self.active:
            self.active = not await self.publication.publish(self._keys)

    def is_overdue(self) -> bool:
        """Whether the stored keys are too old to verify with before a read: the freshness
        policy's overdue, two intervals or never read. Checked per request: a clock
        reading."""
        freshness = self.freshness
        return freshness is not None and freshness.age() >= 2 * freshness.interval

    async def catch_up(self) -> None:
        """Read the stored keys when due (not while a failed read pauses the next)."""
        if self.freshness is not None:
            await self._answerable(self.freshness.catch_up())

    async def read_again(self) -> bool:
        """After a token named an unknown key: read the stored keys unless they were read
        within the last interval (by `catch_up`'s rule). True when the set changed."""
        if self.freshness is None:
            return False
        before = self._keys
        await self._answerable(self.freshness.catch_up())
        return self._keys is not before

    async def _answerable(self, read: Awaitable[None]) -> None:
        """`read`, whose ConfigurationError (it escapes the freshness policy only when there
        are no keys to go on with) becomes what a request for the keys is answered: keys
        that cannot be read now, 503, as for a store that cannot be. The set is the
        operator's to repair, and every such request reads it again: its reason is
        logged once, not at each of them, and never reaches a client."""
        try:
            await read
        except ConfigurationError as error:
            self._report_unusable(str(error))
            raise KeysUnavailableError() from error

    def _report_unusable(self, reason: str) -> None:
        if reason != self._unusable_reported:
            self._unusable_reported = reason
            logger.error("no signing keys to answer with: %s", reason)

    async def sync(self) -> None:
        """Read the stored keys now (after `s3auth keys rotate`, in tests); a set that does
        not open raises its ConfigurationError."""
        if self.freshness is not None:
            await self.freshness.sync()

    async def _read_store(self) -> int:
        assert self.stored is not None and self.observer is not None  # only the store's sync
        now = self.clock()
        stored = await self.stored.read_or_create(self.settings.algorithm, now)
        try:
            keys = self.stored.key_set(stored)
        except S3AuthError:
            raise
        except Exception as exc:
            # Whatever the object holds, a set that does not open is the operator's to
            # repair: as a ConfigurationError the keys read before keep serving and the
            # next read waits an interval (`freshness`).
            raise ConfigurationError(
                f"the stored signing keys could not be opened ({type(exc).__name__}): see "
                "`s3auth keys list`"
            ) from None
        # The set as it was (a kid's material never changes) keeps the object held, so
        # that a read after an unknown kid says no verification is worth repeating.
        if self.observer.read(keys, now):
            self._keys = keys
        if self.publication is not None:
            await self.publication.publish(keys)  # a failure is logged, the keys kept
        return len(keys)


def hmac_entry(settings: S3AuthSettings) -> KeyEntry:
    """The HS* key: the secret key's bytes themselves, as any JWT library given the same
    secret expects; only the kid is derived from it. A secret shorter than the algorithm's
    hash is a ConfigurationError naming the variable."""
    try:
        return _hmac_entry(settings.algorithm, settings.secret_key)
    except UnusableKeyError as exc:
        raise ConfigurationError(
            f"{env_name('secret_key')}: {exc}: the secret key is the {settings.algorithm} key "
            "(`s3auth gen-secret` makes one of 64)"
        ) from None


def hmac_entries(settings: S3AuthSettings) -> list[KeyEntry]:
    """The HS* key (`hmac_entry`), then one per fallback secret key that verifies the
    tokens it signed and signs none; each kid is its own secret's, so a token names the key
    that verifies it, and a token of the current key costs one verification as before. A
    fallback too short for the algorithm has none: it signed no token of it (the secret key
    is held to that length), and the rest it keyed still needs it (a move to HS512 with the
    new key)."""
    entries = [hmac_entry(settings)]
    for secret in settings.secret_key_fallbacks:
        with contextlib.suppress(UnusableKeyError):
            entries.append(_hmac_entry(settings.algorithm, secret, verifies_only=True))
    return entries


def _hmac_entry(algorithm: str, secret_key: str, *, verifies_only: bool = False) -> KeyEntry:
    secret = secret_key.encode()
    key = OctKey.import_key(secret)
    check_key(algorithm, key)
    kid = b64url(hashlib.sha256(b"s3auth kid:" + secret).digest()[:12])
    return KeyEntry(kid, algorithm, key, verifies_only=verifies_only)


def environment_keys(settings: S3AuthSettings, signing_text: str) -> KeySet:
    """The signing key from S3AUTH_SIGNING_KEY(_FILE) and the verification keys from
    S3AUTH_VERIFICATION_KEYS_FILE; ConfigurationError names the variable at fault."""
    variable = env_name("signing_key")
    try:
        key, kid = import_key(settings.algorithm, signing_text)
        check_signing_key(key, kid)
    except UnusableKeyError as exc:
        raise ConfigurationError(f"{variable}: {exc}") from None
    if not key.is_private:
        raise ConfigurationError(f"{variable}: a public key cannot sign; give the private key")
    entries = [entry_for(settings.algorithm, key, kid=kid)]
    if settings.verification_keys_file:
        variable = env_name("verification_keys_file")
        text = read_key_file(variable, settings.verification_keys_file)  # names the variable
        try:
            entries += verification_entries(text)
        except UnusableKeyError as exc:
            raise ConfigurationError(f"{variable}: {exc}") from None
    try:
        return KeySet(entries)
    except UnusableKeyError as exc:
        raise ConfigurationError(f"{env_name('verification_keys_file')}: {exc}") from None


def verification_entries(text: str) -> list[KeyEntry]:
    """Public keys from a JWKS document or from PEM blocks (each pinned to the algorithm
    this package uses for its type)."""
    if text.lstrip().startswith("{"):
        try:
            document = json.loads(text)
        except ValueError:
            raise UnusableKeyError("the file is neither a JWKS nor PEM blocks") from None
        return list(KeySet.from_jwks(document).entries)
    blocks = _PEM_BLOCK.findall(text)
    if not blocks:
        raise UnusableKeyError("the file is neither a JWKS nor PEM blocks")
    entries = []
    for block in blocks:
        for algorithm in DEFAULT_ALGORITHMS:
            try:
                key, _ = import_key(algorithm, block)
            except UnusableKeyError:
                continue
            entries.append(entry_for(algorithm, public_only(key)))
            break
        else:
            raise UnusableKeyError("a PEM block is not a usable ES256, Ed25519 or RS256 key")
    return entries
