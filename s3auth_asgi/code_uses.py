"""Which code of the second factor a login's second step or a re-authentication was
given: the authenticator app's (`totp`) or a recovery code (`recovery_code`), and then how
many recovery codes the account has left. The auth event of the request says so
(`second_factor`, `recovery_codes_left`; never which code), and a recovery code's use is
told to the account's address (`recovery_code_used_notice`, no link): spending one is what
somebody who stole the codes would do, and the owner who did not learns of it at once.

The tokens say `otp` either way (`auth_methods`): RFC 8176's registry has no value of its
own for a recovery code, which is a one-time code as the app's is; the event tells them
apart.
"""

from __future__ import annotations

import time
from typing import Literal

import msgspec

from .models import User
from .recovery_codes import is_recovery_code

SecondFactor = Literal["totp", "recovery_code"]
FEW_LEFT = 2
"""At most this many left, the notice asks for new ones before they run out."""


class CodeUse(msgspec.Struct, frozen=True, kw_only=True):
    """How a code of the second factor that was accepted had been given."""

    second_factor: SecondFactor
    recovery_codes_left: int | None = None
    """Of a recovery code: how many of the account's are left unused."""


def recovery_codes_left(user: User) -> int:
    """The recovery codes of `user`'s factor not used yet (a used one leaves its slot
    empty)."""
    return sum(1 for hashed in user.totp_recovery if hashed)


def code_use(code: object, after: User) -> CodeUse:
    """How `code` was given, once accepted on the record `after` (as its write left it):
    the one test that chose how to check it (`totp_factor`)."""
    if is_recovery_code(code):
        return CodeUse(
            second_factor="recovery_code", recovery_codes_left=recovery_codes_left(after)
        )
    return CodeUse(second_factor="totp")


def notice_values(use: CodeUse, now: float) -> dict[str, str]:
    """The values of `recovery_code_used_notice`'s template: `$time` (UTC), `$codes_left`
    and `$few_left`, a sentence asking for new codes where few are left (else empty)."""
    left = use.recovery_codes_left or 0
    few = ""
    if left == 0:
        few = (
            " None is left: make new ones in your account's settings, or a lost "
            "authenticator app locks you out until the site's administrators turn the "
            "second factor off."
        )
    elif left <= FEW_LEFT:
        verb = "is" if left == 1 else "are"
        few = (
            f" Only {left} {verb} left: make new ones in your account's settings before "
            "they run out."
        )
    return {
        "time": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now)),
        "codes_left": str(left),
        "few_left": few,
    }
