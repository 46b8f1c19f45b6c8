"""Recovery codes of the second factor (ASVS 6.5.2-6.5.4), as pure functions: what a user
whose authenticator app is lost types instead of its code, each once.

A code is `{slot}-{secret}`: the slot (0-9) says which of the ten stored hashes to verify,
so that a wrong code costs one password hash, not ten; the secret is 10 characters of
base32 (50 random bits from the OS CSPRNG), written `xxxxx-xxxxx`. The store keeps only an
argon2id hash of each secret (`PasswordHasher`, salted), never the code. Read case- and
separator-insensitively: `3-ABCDE-FGHIJ`, `3abcde fghij` are one code.
"""

from __future__ import annotations

import base64
import re
import secrets

CODE_COUNT = 10
SECRET_CHARS = 10
SECRET_BITS = SECRET_CHARS * 5
_CODE = re.compile(r"([0-9])([a-z2-7]{10})")


def new_codes() -> list[str]:
    """`CODE_COUNT` new codes, the n-th in slot n."""
    codes = []
    for slot in range(CODE_COUNT):
        secret = base64.b32encode(secrets.token_bytes(7)).decode().lower()[:SECRET_CHARS]
        codes.append(f"{slot}-{secret[:5]}-{secret[5:]}")
    return codes


def parsed(typed: object) -> tuple[int, str] | None:
    """(slot, secret) of a code as typed; None when it is none."""
    if not isinstance(typed, str) or len(typed) > 32:
        return None
    match = _CODE.fullmatch(re.sub(r"[\s-]", "", typed).lower())
    return (int(match[1]), match[2]) if match is not None else None


def is_recovery_code(typed: object) -> bool:
    return parsed(typed) is not None
