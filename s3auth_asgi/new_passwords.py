"""The one way a new password becomes a hash: a registration, a password change, a reset,
an administrator's new password, and the CLI's (which call those) all go through
`NewPasswords._hash_new_password`, so that every rule a new password meets is met
everywhere.

The order is the cost: first the policy (a pure function, `password_policy`), then what
the caller's limits say (`admit`: the mail budget of a change's notice), then a place in
the hash queue (`PasswordHasher.place`, held until the hash is made), and only then the
lookup in the breached passwords (`breached_passwords`), a request to another party, which
a request refused anyway never costs; the hash last. The rate limits of the operations are
checked before any of this, by the auth app, and a change's current password is verified
before it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .breached_passwords import BreachedPasswords
from .password_policy import PasswordPolicy
from .passwords import PasswordHasher


class NewPasswords:
    """A part of `S3AuthService`, which sets the attributes below."""

    passwords: PasswordHasher
    password_policy: PasswordPolicy
    breached_passwords: BreachedPasswords

    async def _hash_new_password(
        self,
        password: object,
        *names: str,
        admit: Callable[[], Awaitable[object]] | None = None,
    ) -> str:
        """The hash of `password`, once it is found acceptable as the new password of the
        account of `names` (its username and address): WeakPasswordError for one the policy
        refuses, BreachedPasswordError for a breached one; what `admit` raises; and
        HashingBusyError, or BreachCheckUnavailableError (`breached_passwords`), for one
        that cannot be judged or hashed now."""
        checked = self.password_policy.check(password, *names)
        if admit is not None:
            await admit()
        with self.passwords.place():
            await self.breached_passwords.check(checked)
            return await self.passwords.hash(checked)
