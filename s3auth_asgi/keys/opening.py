"""Opening stored key records: each key once per process, then only its record compared.

Whoever can write the store can write any record, so a key is judged before it is used,
printed or logged (`material.import_key`). Judging an RSA private key is the slow part:
cryptography checks the key (its primes among it) for 90-130 ms at 3072 bits, and holds
the interpreter while it does, so no worker thread would keep the event loop free. A sync
every `S3AUTH_KEY_SYNC_SECONDS` would pay that for every key of the set; instead a record
that has not changed since the last read gives the key opened then, and a key made here
is never opened at all. Only the keys of the last set read are kept.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..errors import ConfigurationError
from .algorithms import Key
from .keyset import KeyEntry, KeySet
from .material import import_key, thumbprint
from .names import ASYMMETRIC_ALGORITHMS, UnusableKeyError
from .sealing import unseal

if TYPE_CHECKING:
    from .stored import StoredKey

logger = logging.getLogger("s3auth_asgi.keys")

Record = tuple[str, str, str | None, str | None]
"""What a key is opened from: kid, algorithm, sealed text, the JWK as canonical JSON."""


def _record(stored: StoredKey) -> Record:
    jwk = None if stored.jwk is None else json.dumps(stored.jwk, sort_keys=True)
    return stored.kid, stored.alg, stored.sealed, jwk


class KeyOpener:
    """Opens the records of one store's key set with `encryption_key`."""

    def __init__(self, encryption_key: str) -> None:
        self.encryption_key = encryption_key
        self._opened: dict[Record, Key] = {}
        self._reported: set[str] = set()

    def remember(self, stored: StoredKey, key: Key) -> None:
        """`key`, just made here, is what `stored` holds: nothing to judge."""
        self._opened[_record(stored)] = key

    def key_set(self, records: Iterable[StoredKey]) -> KeySet:
        """The key set the records make: each key opened, checked and pinned to its
        algorithm; unchanged records give the keys opened before."""
        opened: dict[Record, Key] = {}
        entries = []
        for stored in records:
            record = _record(stored)
            key = self._opened.get(record)
            if key is None:
                key = self._open(stored)
            if stored.sealed is None and self.encryption_key:
                self._report_unsealed(stored.kid)
            opened[record] = key
            entries.append(
                KeyEntry(
                    stored.kid,
                    stored.alg,
                    key,
                    activates_at=stored.activates_at,
                    retires_at=stored.retires_at,
                )
            )
        keys = KeySet(entries)
        self._opened = opened
        return keys

    def _open(self, stored: StoredKey) -> Key:
        # Only keys a store may hold: an HS* record would sign with a secret every reader of
        # the store knows, and publish nothing to verify it with.
        if stored.alg not in ASYMMETRIC_ALGORITHMS:
            raise UnusableKeyError(
                f"a stored signing key is for {stored.alg!r}: the store keeps only "
                f"{', '.join(ASYMMETRIC_ALGORITHMS)} keys"
            )
        if stored.sealed is not None:
            if not self.encryption_key:
                raise ConfigurationError(
                    "the stored signing keys are sealed: set S3AUTH_KEY_ENCRYPTION_KEY to "
                    "the key they were sealed with"
                )
            jwk = unseal(stored.sealed, kid=stored.kid, encryption_key=self.encryption_key)
        elif stored.jwk is not None:
            jwk = stored.jwk
        else:
            raise ConfigurationError(f"a stored {stored.alg} signing key has no key material")
        key, _ = import_key(stored.alg, jwk)
        # Every key made here has its thumbprint for kid; one written by hand may be anything
        # (a path, terminal escapes, another key's kid), so it is not repeated.
        if stored.kid != thumbprint(key):
            raise UnusableKeyError(
                f"a stored {stored.alg} signing key's kid is not its RFC 7638 thumbprint "
                f"({thumbprint(key)})"
            )
        return key

    def _report_unsealed(self, kid: str) -> None:
        # A key made before S3AUTH_KEY_ENCRYPTION_KEY was set is never sealed after: only a
        # rotation replaces it. Said once per key and process, not at every read.
        if kid in self._reported:
            return
        self._reported.add(kid)
        logger.warning(
            "the stored signing key %s is not sealed, though S3AUTH_KEY_ENCRYPTION_KEY is "
            "set: its private part is in clear in the store. Rotate (`s3auth keys rotate`), "
            "and retire it once its last token has expired",
            kid,
        )
