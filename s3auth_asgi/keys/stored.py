"""Signing keys kept in the store: one object, changed only by conditional writes.

    keys/signing.json    StoredKeySet: every key with its times; private parts sealed
                         when S3AUTH_KEY_ENCRYPTION_KEY was set as the key was made

The object is private like the rest of the store; what anyone may read is the JWKS built
from it. The first process to find no object creates it (If-None-Match: a race of first
starts leaves one key set, whose key every process then uses). `rotate` and `retire` read,
change and replace it under If-Match, again on a conflict (`rewrites`: after a jittered
wait, so that the writers that collided do not collide again), so administrators rotating
at once each add a key, never lose one. No change may leave the set without a key that signs or will
(`keeps_a_signer`); a key added to a set where nothing signs signs at once. Only a record
that holds a private part counts for these rules (`signers`): one written or imported with
its public part alone opens as a key that verifies, and never signs. A rotation
made at once (a leak's) removes the keys that have not signed yet, so the key it adds
outranks every key there is: one write decides it, and every process reads it alike. A key
that signs at once activates the skew allowance before the writer's clock (`at_once`), so
that a process whose clock is behind the writer's has it signing too. Each change that lands,
and each that fails, is one key event of the writer's (`keys.events`), not one per attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, ClassVar

import anyio.to_thread
import msgspec

from ..errors import ConfigurationError
from ..hidden_fields import HidesSecrets
from ..storage import keys as layout
from ..storage.base import Store, StoreConflict
from ..store_time import clock_lead
from .algorithms import generate_key
from .events import Actor, tell
from .keyset import KeySet
from .material import has_private_part, private_jwk, thumbprint
from .names import ASYMMETRIC_ALGORITHMS
from .opening import KeyOpener
from .ranking import ranked, signer, superseded_at
from .rewrites import rewrite
from .sealing import seal

logger = logging.getLogger("s3auth_asgi.keys")


class StoredKey(HidesSecrets, msgspec.Struct, kw_only=True, frozen=True):
    secret_fields: ClassVar[frozenset[str]] = frozenset(("jwk",))

    kid: str
    alg: str
    created_at: float
    activates_at: float
    retires_at: float | None = None
    jwk: dict[str, Any] | None = None
    """The private JWK, when keys are not sealed."""
    sealed: str | None = None


class StoredKeySet(msgspec.Struct, kw_only=True, frozen=True):
    keys: list[StoredKey]


NO_SIGNER = (
    "that would leave no key that signs or will (every process starting then would refuse "
    "to; a key whose record holds only its public part verifies but cannot sign): run "
    "`s3auth keys rotate` first"
)


def undo_margin(sync_seconds: float, skew_seconds: float) -> float:
    """How long before its activation a key may still be removed as one that never signed.
    A process signs with the keys it read up to two sync intervals ago (`freshness`), on a
    clock up to the skew allowance off: within this margin one may already hold the key,
    sign with it once it activates, and issue tokens no process can verify once the key is
    gone from the store."""
    return 2 * sync_seconds + skew_seconds


def too_late_to_undo(key: StoredKey, now: float, margin: float) -> str | None:
    """Why a key that has not signed yet can no longer be removed at once (None when it
    can): the one rule for `KeyStore.retire` and the command that calls it."""
    if key.activates_at > now + margin:
        return None
    return (
        f"{key.kid} signs from its activation, in {max(0, round(key.activates_at - now))} s: "
        f"too late to undo the rotation, since processes may already have read the key (up "
        f"to {round(margin)} s before). Let it take over and retire it later, or retire it "
        "--now if it leaked (the tokens it signs then stop verifying)"
    )


def at_once(keys: Iterable[StoredKey], now: float, skew_seconds: float) -> float:
    """When a key that is to sign at once activates: `skew_seconds` before the writer's
    `now`, so that every process whose clock is behind it by no more (and reads the key)
    signs with it too, rather than with nothing (a first key, a set where nothing signs) or
    with a leaked key; but never before the latest activation among `keys` that has passed,
    so that it still outranks each of them (of keys activating together, the one added
    last ranks first)."""
    return max([now - skew_seconds, *(k.activates_at for k in keys if k.activates_at <= now)])


def activation(
    keys: list[StoredKey], now: float, publish_seconds: float, skew_seconds: float
) -> float:
    """When a key that `rotate` adds to `keys` (the set as read, less any key a rotation at
    once withdraws) activates: `publish_seconds` from `now`, or at once (`at_once`) for a
    rotation at once, or where nothing signs meanwhile (a set emptied, or retiring only),
    since waiting for the publication would only leave the service without a signing key."""
    if publish_seconds and signer(signers(keys), now) is not None:
        return now + publish_seconds
    return at_once(keys, now, skew_seconds)


def stopped_signing(keys: list[StoredKey], target: StoredKey, margin: float) -> float | None:
    """When no process signs with `target` any more (None while nothing outranks it): a
    key that outranks it has activated, and every process has read that key, which may be
    `margin` (`undo_margin`) after it was written. A key published ahead was read long before
    its activation; one rotated in at once is not, and until a process reads it, that
    process signs with `target`."""
    order = ranked(keys)
    above = order[: next(i for i, key in enumerate(order) if key is target)]
    return min((max(k.activates_at, k.created_at + margin) for k in above), default=None)


def withdrawn_at_once(keys: Iterable[StoredKey], now: float) -> list[StoredKey]:
    """The keys a rotation made at once removes: those that have not signed yet. A process
    may already hold one and sign with it until its next read, as with `retire --now`; that
    is the price of a key that leaked staying out of the set."""
    return [k for k in keys if k.activates_at > now]


def can_sign(key: StoredKey) -> bool:
    """Whether a record holds a key that can sign, judged without opening it: a private
    part (a sealed one is made here, with it) of an algorithm a store may keep. A process
    opens the others, if at all, as keys that verify (`KeyEntry.can_sign`)."""
    if key.alg not in ASYMMETRIC_ALGORITHMS:
        return False
    return key.sealed is not None or (key.jwk is not None and has_private_part(key.jwk))


def signers(keys: Iterable[StoredKey]) -> list[StoredKey]:
    """The records among `keys` that can sign, in their order: the keys the rules of which
    key signs rank (`ranking`), as a process's key set ranks only the keys it can sign
    with."""
    return [k for k in keys if can_sign(k)]


def ranked_with(keys: list[StoredKey], target: StoredKey) -> list[StoredKey]:
    """The keys to judge `target`'s place in the signing order among: those that can sign,
    when it can (a key that only verifies never takes over from it)."""
    return signers(keys) if can_sign(target) else keys


def keeps_a_signer(keys: Iterable[StoredKey]) -> bool:
    """Whether a key set has a key that signs now or will, and is not retiring: the one
    thing every change must keep (a process starting on a set without one refuses to)."""
    return any(k.retires_at is None for k in signers(keys))


class KeyStore:
    """The stored key set of one store. `encryption_key` seals new keys and opens sealed
    ones; keys stored unsealed stay readable without it (a warning says so, once a key)."""

    def __init__(
        self,
        store: Store,
        *,
        encryption_key: str = "",
        skew_seconds: float = 0.0,
        by: Actor = "service",
    ) -> None:
        self.store = store
        self.by = by
        """Who the key events of this store's changes name (`keys.events`)."""
        self.encryption_key = encryption_key
        self.skew_seconds = skew_seconds
        """How far apart the clocks of the processes may be (`at_once`)."""
        self.opener = KeyOpener(encryption_key)

    async def read(self) -> tuple[StoredKeySet, str] | None:
        found = await self.store.get(layout.SIGNING_KEYS, StoredKeySet)
        return None if found is None else (found.value, found.etag)

    async def read_or_create(self, algorithm: str, now: float) -> StoredKeySet:
        """The stored key set, made with one key that signs at once if there is none (its
        making costs 1 PUT, 1 GET and 1 DELETE more, timing `now` against the store's
        clock)."""
        found = await self.read()
        if found is not None:
            return found[0]
        # Timed against the store's clock (`store_time`): made by a clock further ahead
        # than the allowance (a host booted ahead, not yet set right), the key would sign
        # on no right clock, its writer's once corrected among them, for that long.
        lead = await clock_lead(self.store, lambda: now)
        activates_at = at_once((), now - max(lead, 0.0), self.skew_seconds)
        first = StoredKeySet(keys=[await self._new_key(algorithm, now, activates_at=activates_at)])
        try:
            await self.store.create(layout.SIGNING_KEYS, first)
        except StoreConflict:
            again = await self.read()
            if again is None:  # pragma: no cover - created, then deleted at once
                raise ConfigurationError("the stored key set vanished while being made") from None
            return again[0]
        new = first.keys[0]
        tell("key_create", now, self.by, kid=new.kid, activates_at=new.activates_at)
        return first

    async def rotate(self, algorithm: str, now: float, publish_seconds: float) -> StoredKey:
        """Add a key that is published now and signs `publish_seconds` from now (0: at
        once, when the signing key leaked; verifiers learn it from the first token naming
        it, each within its reread interval).

        A rotation at once also removes every key that has not signed yet
        (`withdrawn_at_once`): ranked by activation, such a key would take over from the
        new one, and it was in this same object, which may be what leaked."""
        made = await self._new_key(algorithm, now, activates_at=now + publish_seconds)
        new = made

        def change(keys: list[StoredKey]) -> list[StoredKey]:
            nonlocal new
            if not publish_seconds:
                gone = withdrawn_at_once(keys, now)
                keys = [k for k in keys if k not in gone]
            # Decided again from each read: an attempt that lost its write to another
            # change may have judged a set that no longer is.
            when = activation(keys, now, publish_seconds, self.skew_seconds)
            new = msgspec.structs.replace(made, activates_at=when)
            return [*keys, new]

        removed = await rewrite(
            "key_rotate", lambda: self._change(change, now), now=now, by=self.by, kid=lambda: None
        )
        tell(
            "key_rotate",
            now,
            self.by,
            kid=new.kid,
            activates_at=new.activates_at,
            immediately=not publish_seconds,
            removed=removed,
        )
        return new

    async def retire(
        self, kid: str, now: float, *, after: float, immediately: bool, undo_margin: float
    ) -> float:
        """Stop publishing and accepting `kid`: `after` seconds after it stopped signing on
        every process (`stopped_signing`; `after` is the lifetime of its last token plus
        leeway), or now with `immediately`, or when it has not signed and activates more
        than `undo_margin` from now (`too_late_to_undo`). A key that only verifies never
        signed here, whatever its place: its last token may have been signed elsewhere up
        to now, so `after` seconds from now. The key that signs is refused. Returns when."""
        when = now
        found: str | None = None  # a kid typed for no key is not logged

        def change(keys: list[StoredKey]) -> list[StoredKey]:
            nonlocal when, found
            target = next((k for k in keys if k.kid == kid), None)
            if target is None:
                raise ConfigurationError(f"no stored signing key has the kid {kid!r}")
            found = kid
            superseded = superseded_at(ranked_with(keys, target), target)
            if not can_sign(target):
                when = now if immediately else now + after
            elif target.activates_at > now:
                # It has not signed yet (a rotation undone): nothing verifies with it, if
                # no process can have read it in time to sign with it.
                reason = None if immediately else too_late_to_undo(target, now, undo_margin)
                if reason is not None:
                    raise ConfigurationError(reason)
                when = now
            elif superseded is None or superseded > now:
                raise ConfigurationError(
                    f"{kid} is the key that signs: rotate first, and retire it once the next "
                    "key signs"
                )
            else:
                stopped = stopped_signing(ranked_with(keys, target), target, undo_margin)
                assert stopped is not None  # superseded: a key outranks it
                when = now if immediately else max(now, stopped + after)
            return [msgspec.structs.replace(k, retires_at=when) if k is target else k for k in keys]

        removed = await rewrite(
            "key_retire", lambda: self._change(change, now), now=now, by=self.by, kid=lambda: found
        )
        tell(
            "key_retire",
            now,
            self.by,
            kid=kid,
            retires_at=when,
            immediately=immediately,
            removed=removed,
        )
        return when

    async def _change(self, change: Any, now: float) -> tuple[str, ...] | None:
        """One attempt of a change (`rewrites`): `change` applied to the stored set, and
        the set replaced under If-Match; the kids that write took out, or None when it lost
        to another change."""
        found = await self.read()
        if found is None:
            raise ConfigurationError("the store has no signing keys yet: start the service")
        stored, etag = found
        keys = [k for k in change(stored.keys) if k.retires_at is None or k.retires_at > now]
        if not keeps_a_signer(keys):
            raise ConfigurationError(NO_SIGNER)
        try:
            await self.store.replace(layout.SIGNING_KEYS, StoredKeySet(keys=keys), etag)
        except StoreConflict:
            return None
        kept = {k.kid for k in keys}
        return tuple(k.kid for k in stored.keys if k.kid not in kept)

    async def _new_key(self, algorithm: str, now: float, *, activates_at: float) -> StoredKey:
        # An RSA key takes 0.1-1 s to make, and the making lets go of the interpreter: in a
        # worker thread, the requests of the process are served meanwhile.
        key = await anyio.to_thread.run_sync(generate_key, algorithm)
        kid = thumbprint(key)
        jwk = private_jwk(key)
        if self.encryption_key:
            record = StoredKey(
                kid=kid,
                alg=algorithm,
                created_at=now,
                activates_at=activates_at,
                sealed=seal(jwk, kid=kid, encryption_key=self.encryption_key),
            )
        else:
            record = StoredKey(
                kid=kid, alg=algorithm, created_at=now, activates_at=activates_at, jwk=jwk
            )
        self.opener.remember(record, key)
        return record

    def key_set(self, stored: StoredKeySet) -> KeySet:
        """The key set the stored keys make: each key opened, checked and pinned to its
        algorithm (`opening`)."""
        return self.opener.key_set(stored.keys)
