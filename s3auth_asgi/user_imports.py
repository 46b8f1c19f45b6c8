"""Importing a user with the password hash another system made (s3verless, or any that
hashed with bcrypt or argon2id): an operator's way to bring an existing user base in.

The record is made as a registration makes it, but from a hash instead of a password: the
same name rules (`identifiers`), the same claims of the username, its look and the email
(`NameIndex.register`: a taken one is refused, nothing half-written is left), none of the
password policy (there is no password to judge). The hash is taken only if the package's
hasher can verify it (`check_password_hash`): one stored that it cannot would lock the
account out for good, each login failing as a wrong password does. The first login
replaces it with an argon2id hash at the current parameters (`passwords`); until then
every login attempt, a wrong one's too, verifies it at its own cost, so a hash above the
ceiling of `hash_costs` is refused (CostlyHashError) and never stored. A profile given is
validated as a registration validates one (`ProfileFields.clean`, which `PATCH /me` runs
too), its defaults filled in; none given, the user has none, as a user of another system
that kept no such fields. No hook runs: an import is no registration by its user.

Request budget: what `create_user` costs (4 creates), nothing for a refused input.
"""

from __future__ import annotations

import re
from typing import Any

import argon2
from argon2.exceptions import InvalidHashError

from .errors import S3ValidationError
from .identifiers import (
    FULL_NAME_MAX,
    clean_email,
    clean_scopes,
    clean_text,
    clean_username,
    new_id,
    username_skeleton,
)
from .models import User
from .name_index import NameIndex
from .passwords import PasswordHasher
from .privileges import admin_from_input, stored_scopes
from .profile_fields import ProfileFields
from .types import Clock

ACCEPTED_HASHES = (
    "argon2id ($argon2id$v=19$m=…,t=…,p=…$salt$digest) or bcrypt ($2a$, $2b$ or $2y$, "
    "cost 04 to 31)"
)
HASH_MAX = 512
"""Longer than any hash of the accepted formats made with sensible salt and digest sizes."""
_BCRYPT = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
# $2x$ is crypt_blowfish's mark of hashes made by its 8-bit bug: verified as $2b$, a
# password with a non-ASCII character would not match.
_ARGON2ID = re.compile(
    r"\$argon2id\$v=19\$m=[0-9]{1,10},t=[0-9]{1,10},p=[0-9]{1,8}"
    r"\$[A-Za-z0-9+/]{11,}\$[A-Za-z0-9+/]{6,}"
)
# A salt of 8 bytes or more, a digest of 4 or more (argon2's own minimums), unpadded base64.
_BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_BASE64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def check_password_hash(hashed: object) -> str:
    """`hashed` if the package's hasher can verify it: argon2id (of argon2 version 1.3) or
    bcrypt; S3ValidationError naming the formats accepted otherwise."""
    if isinstance(hashed, str) and len(hashed) <= HASH_MAX:
        if _BCRYPT.fullmatch(hashed) and _whole_bytes(hashed[7:29], hashed[29:], _BCRYPT_ALPHABET):
            return hashed
        if _ARGON2ID.fullmatch(hashed) and _argon2_parameters_hold(hashed):
            return hashed
    raise S3ValidationError(
        f"password_hash is in no format this package verifies: it takes {ACCEPTED_HASHES}"
    )


def _argon2_parameters_hold(hashed: str) -> bool:
    """Whether argon2 would run at the hash's parameters, and its base64 parts decode."""
    salt, digest = hashed.split("$")[-2:]
    if not _whole_bytes(salt, digest, _BASE64_ALPHABET):
        return False
    try:
        found = argon2.extract_parameters(hashed)
    except (InvalidHashError, ValueError):
        return False
    return (
        found.time_cost >= 1
        and 1 <= found.parallelism < 2**24
        and 8 * found.parallelism <= found.memory_cost < 2**32
    )


def _whole_bytes(salt: str, digest: str, alphabet: str) -> bool:
    """Whether each part encodes whole bytes: a length base64 can end at, and a last
    character that sets no bit past the last byte. No hasher writes one that does: bcrypt
    and argon2 refuse such a salt, and no password verifies such a digest, so that stored
    it would lock its account out."""
    for part in (salt, digest):
        spare = len(part) * 6 % 8
        if spare == 6 or alphabet.index(part[-1]) % (1 << spare):
            return False
    return True


class UserImports:
    """Importing users: a part of `S3AuthService`, which sets the attributes below."""

    names: NameIndex
    passwords: PasswordHasher
    profile_fields: ProfileFields
    clock: Clock

    async def import_user(
        self,
        username: str,
        email: str,
        password_hash: str,
        *,
        full_name: str | None = None,
        is_active: bool = True,
        is_admin: bool | None = None,
        scopes: list[str] | None = None,
        email_verified: bool = False,
        created_at: int | None = None,
        profile: dict[str, Any] | None = None,
    ) -> User:
        """Bring in a user of another system with its password hash (argon2id or bcrypt,
        upgraded at its first login): every field checked as for a registration
        (S3ValidationError and its subclasses), the names claimed as `create_user` claims
        them (UsernameTakenError / EmailTakenError, nothing left behind), no password
        policy, no hook; CostlyHashError for a hash that costs more to verify than the
        hasher's ceiling allows (`hash_costs`). `created_at`: Unix seconds, kept when
        given, else now. `profile`: the application's own fields, validated and completed
        as `create_user` does (S3ValidationError naming what is wrong); None: none."""
        name = clean_username(username)
        address = clean_email(email)
        hashed = check_password_hash(password_hash)
        self.passwords.ceiling.check(hashed)
        for flag, value in (("is_active", is_active), ("email_verified", email_verified)):
            if not isinstance(value, bool):
                raise S3ValidationError(f"{flag} must be true or false")
        if is_admin is not None and not isinstance(is_admin, bool):
            raise S3ValidationError("is_admin must be true or false")
        if created_at is not None and (
            isinstance(created_at, bool) or not isinstance(created_at, int) or created_at < 0
        ):
            raise S3ValidationError("created_at must be a time in Unix seconds, 0 or more")
        cleaned_scopes = clean_scopes(scopes)
        admin = admin_from_input(is_admin, cleaned_scopes)
        # Registration's own check (a None would be a registration's empty profile).
        cleaned_profile = None if profile is None else self.profile_fields.clean(profile)
        now = int(self.clock())
        user = User(
            id=new_id(),
            username=name,
            email=address,
            hashed_password=hashed,
            full_name=clean_text(full_name, "full_name", FULL_NAME_MAX),
            is_active=is_active,
            is_admin=bool(admin),
            scopes=stored_scopes(cleaned_scopes),
            created_at=now if created_at is None else created_at,
            updated_at=now,
            username_skeleton=username_skeleton(name),
            email_verified=email_verified,
            profile=cleaned_profile,
        )
        await self.names.register(user)
        return user
