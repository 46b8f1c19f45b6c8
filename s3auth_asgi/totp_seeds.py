"""A user's TOTP seed as the user record keeps it: never in clear.

A sealed seed is `ts1.{nonce}.{ciphertext}` (base64url): AES-256-GCM over the seed, with
`totp-seed:{user_id}` as associated data, so that a sealed seed copied into another user's
record does not open there. The AES key is derived from S3AUTH_SECRET_KEY for this purpose
alone (`tokens.derive_key`, HKDF-Expand with SHA-256), so it is none of the keys the secret
key signs or MACs with. Whoever reads the store, a backup of it or a user record without
the secret key learns nothing of the seeds; a new secret key leaves every seed unreadable,
and the factor of each user then accepts no code until an administrator turns it off
(`docs/accounts.md`).
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .jose_json import b64url
from .tokens import derive_key

_PREFIX = "ts1."


def seed_key(secret_key: str) -> bytes:
    """The AES-256 key of the seeds, derived from the service's secret key."""
    return derive_key(secret_key, "totp-seed")


def _associated(user_id: str) -> bytes:
    return f"totp-seed:{user_id}".encode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SeedSeal:
    """Seals and opens the seeds of one service's users (its secret key's)."""

    __slots__ = ("_aead",)

    def __init__(self, secret_key: str) -> None:
        self._aead = AESGCM(seed_key(secret_key))

    def __repr__(self) -> str:
        return "SeedSeal(<hidden>)"

    def seal(self, seed: bytes, user_id: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, seed, _associated(user_id))
        return f"{_PREFIX}{b64url(nonce)}.{b64url(sealed)}"

    def open(self, sealed: str, user_id: str) -> bytes | None:
        """The seed; None when it does not open (another secret key's, another user's, or
        not a sealed seed at all)."""
        if not sealed.startswith(_PREFIX):
            return None
        try:
            nonce, ciphertext = (_unb64(part) for part in sealed[len(_PREFIX) :].split("."))
            return self._aead.decrypt(nonce, ciphertext, _associated(user_id))
        except (InvalidTag, ValueError, TypeError):
            return None
