"""The most a stored password hash may cost to verify (`CostCeiling`): what an imported hash
is held to (`user_imports`), and what a login refuses to verify (`passwords`).

Why a ceiling: a hash the package did not make is verified at its own cost on every attempt
to log in to its account until the first login replaces it, a wrong password's too, and
anyone may send one. Each attempt holds one of the hasher's bounded places for that time,
which the bounds on hashing were sized for at the configured cost: a bcrypt hash of cost
20 holds one for a minute or more of CPU, so a few attempts a minute keep the places full,
and the owner's own login never answers.

Why these numbers. bcrypt: at most cost 14, whatever the settings. The libraries' own
defaults are 10 to 12 (passlib, pwdlib, Python's bcrypt, PHP, Rails, Laravel: 12; Go,
Spring: 10); 14 leaves two doublings for a system that raised its own, and bounds an
attempt near a second of one core (12 is about a fifth of one), some 30 times an argon2id
verification at the defaults. argon2id: at most 8 times the configured cost, each measure
on its own: the memory (what a place holds while it runs), the memory × passes (the CPU
time, which argon2 spends on blocks: fewer passes over more memory cost the same), and
the lanes (a thread each, where a place was counted as one). At the defaults that is 152
MiB and 8 lanes, which takes the defaults of Django and passlib (100 MiB, 2 passes, 8
lanes), of pwdlib and argon2-cffi (64 MiB, 3 passes, 4 lanes) and of OWASP's every
configuration, some 150-300 ms of one core at most, and refuses RFC 9106's 2 GiB a hash.

The argon2id ceiling follows the settings because the operator chose what a hash may cost
on this host; bcrypt's is fixed because the package never makes a bcrypt hash. So a login
refuses only bcrypt above the ceiling (none could have been stored but by an import an
earlier version took): an argon2id hash above it may be the package's own, made before the
cost was lowered, and refusing it would lock out its owner. No setting raises the ceiling:
a hash above it is no password the package can check at a bearable cost, and an account
imported without one gets its password by a reset."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import S3ValidationError

BCRYPT_MOST_COST = 14
ARGON2_MOST_TIMES = 8
"""The most an argon2id hash may cost, in each measure, as a multiple of the configured."""
_BCRYPT_COST = re.compile(r"\$2[abxy]\$([0-9]{2})\$")
_ARGON2_COST = re.compile(r"\$argon2id\$v=[0-9]+\$m=([0-9]+),t=([0-9]+),p=([0-9]+)\$")


class CostlyHashError(S3ValidationError):
    """A password hash that costs more to verify than the ceiling (`CostCeiling`)."""

    code = "hash_too_costly"
    title = "The password hash costs more to verify than this service allows"


@dataclass(frozen=True, slots=True)
class CostCeiling:
    """The most a hash may cost to verify; `of` gives the package's, for a hasher's
    argon2id parameters."""

    argon2_memory_kib: int
    argon2_work: int
    """Memory × passes, in KiB."""
    argon2_parallelism: int
    bcrypt_cost: int = BCRYPT_MOST_COST

    @classmethod
    def of(cls, memory_kib: int, time_cost: int, parallelism: int) -> CostCeiling:
        times = ARGON2_MOST_TIMES
        return cls(times * memory_kib, times * memory_kib * time_cost, times * parallelism)

    def excess(self, hashed: str) -> str | None:
        """What of `hashed`'s cost is above the ceiling, in words with what is allowed;
        None when nothing is, or when `hashed` is in neither format (another check's)."""
        if _BCRYPT_COST.match(hashed):
            return self.bcrypt_excess(hashed)
        argon2 = _ARGON2_COST.match(hashed)
        if argon2 is None:
            return None
        memory, passes, lanes = (int(value) for value in argon2.groups())
        configured = f"{ARGON2_MOST_TIMES} times the configured"
        if memory > self.argon2_memory_kib:
            return (
                f"its argon2id memory m={memory} KiB is above {self.argon2_memory_kib} KiB, "
                f"{configured} S3AUTH_ARGON2_MEMORY_KIB"
            )
        if memory * passes > self.argon2_work:
            return (
                f"its argon2id work m × t = {memory * passes} KiB is above {self.argon2_work} "
                f"KiB, {configured} S3AUTH_ARGON2_MEMORY_KIB × S3AUTH_ARGON2_TIME_COST"
            )
        if lanes > self.argon2_parallelism:
            return (
                f"its argon2id lanes p={lanes} are above {self.argon2_parallelism}, "
                f"{configured} S3AUTH_ARGON2_PARALLELISM"
            )
        return None

    def bcrypt_excess(self, hashed: str) -> str | None:
        """`excess` for a bcrypt hash; None for any other (a login's check)."""
        bcrypt = _BCRYPT_COST.match(hashed)
        if bcrypt is None or int(bcrypt[1]) <= self.bcrypt_cost:
            return None
        return f"its bcrypt cost {int(bcrypt[1])} is above {self.bcrypt_cost}, the most verified"

    def check(self, hashed: str) -> None:
        """CostlyHashError saying which limit `hashed` is above, and what it allows."""
        excess = self.excess(hashed)
        if excess is not None:
            raise CostlyHashError(
                f"password_hash costs more to verify than this service allows: {excess}; "
                "import no hash above it: create the account (s3auth user create) and have "
                "its password reset"
            )
