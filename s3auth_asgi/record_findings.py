"""What `s3auth doctor` finds in one readable user record alone (`consistency`): a password
hash above the hasher's ceiling (COSTLY_HASH), and a TOTP seed still sealed under one of
S3AUTH_SECRET_KEY_FALLBACKS (SEED_UNDER_FALLBACK, a warning: it works, until that fallback
is removed; the user's next login with a code seals it under the current key)."""

from __future__ import annotations

from .findings import COSTLY_HASH, SEED_UNDER_FALLBACK, Finding, finding
from .hash_costs import CostCeiling
from .models import User
from .totp_seeds import SeedSeal


def costly_hash(ceiling: CostCeiling | None, key: str, user: User) -> Finding | None:
    excess = ceiling.excess(user.hashed_password) if ceiling is not None else None
    if ceiling is None or excess is None:
        return None
    login = (
        "a login to it is refused unverified"
        if ceiling.bcrypt_excess(user.hashed_password)
        else "every attempt to log in to it, a wrong one's too, verifies it at that cost "
        "until a login replaces it"
    )
    detail = (
        f"user {user.id}'s password hash costs more to verify than this service allows "
        f"({excess}): {login}; `s3auth user set-password {user.id}` replaces it"
    )
    return finding(COSTLY_HASH, key, user.id, detail)


def seed_under_fallback(seeds: SeedSeal | None, key: str, user: User) -> Finding | None:
    """One decryption per user of the factor: the current key's, which opens nearly every
    seed, and the fallbacks' for the rest."""
    opened = seeds.open_keyed(user.totp_secret, user.id) if seeds and user.totp_secret else None
    if opened is None or not opened.fallback:
        return None
    detail = (
        f"user {user.id}'s TOTP seed is sealed under S3AUTH_SECRET_KEY_FALLBACKS (item "
        f"{opened.fallback}): removing that key turns its factor useless until `s3auth user "
        "totp-off`; its next login with a code seals it under S3AUTH_SECRET_KEY"
    )
    return finding(SEED_UNDER_FALLBACK, key, user.id, detail)
