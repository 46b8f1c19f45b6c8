"""Sealing private keys kept in the store, with a key-encryption key from the environment.

A sealed key is `s1.{nonce}.{ciphertext}` (base64url): AES-256-GCM over the private JWK's
JSON, with the key's kid as associated data, so a sealed key moved to another kid's record
does not open. The AES key is derived from `S3AUTH_KEY_ENCRYPTION_KEY` (HMAC-SHA256, its
own purpose), so the variable's text is never a key itself. Whoever can read the store
without that variable learns the public keys only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import ConfigurationError
from ..jose_json import b64url

_PREFIX = "s1."


def _aes_key(encryption_key: str) -> bytes:
    return hmac.new(encryption_key.encode(), b"s3auth key-sealing key v1", hashlib.sha256).digest()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal(private_jwk: dict[str, Any], *, kid: str, encryption_key: str) -> str:
    nonce = os.urandom(12)
    plaintext = json.dumps(private_jwk, separators=(",", ":")).encode()
    sealed = AESGCM(_aes_key(encryption_key)).encrypt(nonce, plaintext, kid.encode())
    return f"{_PREFIX}{b64url(nonce)}.{b64url(sealed)}"


def unseal(sealed: str, *, kid: str, encryption_key: str) -> dict[str, Any]:
    """The private JWK; ConfigurationError when the key-encryption key does not open it.
    `kid` is bound to the sealed text but not yet checked against the key it holds, so no
    reason repeats it: a record written by hand may carry anything there."""
    try:
        if not sealed.startswith(_PREFIX):
            raise ValueError("not a sealed key")
        nonce, ciphertext = (_unb64(part) for part in sealed[len(_PREFIX) :].split("."))
        plaintext = AESGCM(_aes_key(encryption_key)).decrypt(nonce, ciphertext, kid.encode())
        jwk = json.loads(plaintext)
    except (InvalidTag, ValueError, TypeError):
        raise ConfigurationError(
            "S3AUTH_KEY_ENCRYPTION_KEY does not open a stored signing key: it is not the key "
            "the signing keys were sealed with"
        ) from None
    if not isinstance(jwk, dict):
        raise ConfigurationError("a stored signing key, unsealed, is not a JWK")
    return jwk
