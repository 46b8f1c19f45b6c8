"""A user's TOTP seed as the user record keeps it: never in clear.

A sealed seed is `ts1.{nonce}.{ciphertext}` (base64url): AES-256-GCM over the seed, with
`totp-seed:{user_id}` as associated data, so that a sealed seed copied into another user's
record does not open there. The AES key is derived from S3AUTH_SECRET_KEY for this purpose
alone (`tokens.derive_key`, HKDF-Expand with SHA-256), so it is none of the keys the secret
key signs or MACs with. Whoever reads the store, a backup of it or a user record without
the secret key learns nothing of the seeds.

A new secret key with the old one among S3AUTH_SECRET_KEY_FALLBACKS opens the seeds sealed
under the old one as well (tried after the current key, so a seed of the current key costs
one decryption as before); the next code a user's factor accepts writes its seed sealed
under the current key (`resealed`, `totp_factor`). A new secret key without the old one as a
fallback leaves every seed unreadable, and the factor of each user then accepts no code
until an administrator turns it off (`docs/accounts.md`).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .hidden_fields import fields_repr, shown_fields
from .jose_json import b64url
from .tokens import checked_secret_keys, derive_key

_PREFIX = "ts1."


def seed_key(secret_key: str) -> bytes:
    """The AES-256 key of the seeds a secret key seals (the service's, or one of its
    fallbacks), derived from it."""
    return derive_key(secret_key, "totp-seed")


def _associated(user_id: str) -> bytes:
    return f"totp-seed:{user_id}".encode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class OpenedSeed(NamedTuple):
    """A sealed seed, opened (`SeedSeal.open_keyed`)."""

    seed: bytes
    fallback: int
    """0 when the current secret key opened it; else the number of the fallback that did,
    its item in S3AUTH_SECRET_KEY_FALLBACKS (from 1)."""

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return shown_fields(self, self._fields, secret=("seed",))

    def __repr__(self) -> str:
        return fields_repr(self, self.__rich_repr__())


class SeedSeal:
    """Seals and opens the seeds of one service's users: `secret_keys` as the settings list
    them (`S3AuthSettings.secret_keys`), sealed under the first, opened under any."""

    __slots__ = ("_aeads",)

    def __init__(self, secret_keys: Sequence[str]) -> None:
        self._aeads = [AESGCM(seed_key(key)) for key in checked_secret_keys(secret_keys)]

    def __repr__(self) -> str:
        return "SeedSeal(<hidden>)"

    def seal(self, seed: bytes, user_id: str) -> str:
        """`seed` sealed under the current secret key."""
        nonce = os.urandom(12)
        sealed = self._aeads[0].encrypt(nonce, seed, _associated(user_id))
        return f"{_PREFIX}{b64url(nonce)}.{b64url(sealed)}"

    def open(self, sealed: str, user_id: str) -> bytes | None:
        """The seed; None when it does not open (another secret key's, another user's, or
        not a sealed seed at all)."""
        opened = self.open_keyed(sealed, user_id)
        return None if opened is None else opened.seed

    def open_keyed(self, sealed: str, user_id: str) -> OpenedSeed | None:
        """The seed and which key opened it, the current secret key's tried first, then
        each fallback's in turn; None when none does."""
        if not sealed.startswith(_PREFIX):
            return None
        try:
            nonce, ciphertext = (_unb64(part) for part in sealed[len(_PREFIX) :].split("."))
        except (ValueError, TypeError):
            return None
        associated = _associated(user_id)
        for fallback, aead in enumerate(self._aeads):
            try:
                return OpenedSeed(aead.decrypt(nonce, ciphertext, associated), fallback)
            except (InvalidTag, ValueError, TypeError):
                continue
        return None

    def resealed(self, sealed: str, user_id: str) -> str:
        """`sealed` as the current secret key seals it: itself when that key opens it (or
        none does), else its seed sealed anew."""
        opened = self.open_keyed(sealed, user_id)
        return sealed if opened is None else self.kept_or_resealed(sealed, user_id, opened)

    def kept_or_resealed(self, sealed: str, user_id: str, opened: OpenedSeed) -> str:
        """`resealed`, for a `sealed` already opened (`opened`, as `open_keyed` gave it):
        itself when the current secret key opened it, else its seed sealed anew."""
        return self.seal(opened.seed, user_id) if opened.fallback else sealed
