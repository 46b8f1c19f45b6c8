"""How a user authenticated: the `amr` claim of an access token (RFC 8176), and the
values it may hold.

A session keeps the methods of the authentication that opened it, or of the latest
re-authentication of it (`reauthentication`), and every access token of the session
carries them beside `auth_time`, when that was. The auth app's logins say `pwd`, and `pwd`
and `otp` when the second factor's code was given too, a recovery code's as the app's
(the registry has no value for one; the event tells them apart: `code_uses`); a host
that opens sessions of its own (`create_token_pair`) names its methods from RFC 8176's
registry, which also bounds what a token carries (`token_budget`).
"""

from __future__ import annotations

from collections.abc import Iterable

from .errors import S3ValidationError

AMR_VALUES = frozenset(
    ("face", "fpt", "geo", "hwk", "iris", "kba", "mca", "mfa", "otp", "pin", "pop", "pwd",
     "rba", "retina", "sc", "sms", "swk", "tel", "user", "vbm", "wia")
)  # fmt: skip
"""The Authentication Method Reference Values registry of RFC 8176 §2."""
Methods = tuple[str, ...]
PASSWORD: Methods = ("pwd",)
PASSWORD_AND_CODE: Methods = ("pwd", "otp")
"""A password and a code of the second factor (a TOTP app's, or a recovery code)."""


def checked_methods(amr: Iterable[str]) -> list[str]:
    """`amr` as a session keeps it; S3ValidationError unless it is a collection of
    registered values, each once (none: the tokens carry no `amr`). A string is one method
    named wrongly, not a collection of letters."""
    methods = list(amr) if isinstance(amr, Iterable) and not isinstance(amr, str | bytes) else None
    if methods is None or not all(isinstance(m, str) and m in AMR_VALUES for m in methods):
        raise S3ValidationError(
            f"amr: values of RFC 8176's registry ({', '.join(sorted(AMR_VALUES))})"
        )
    if len(set(methods)) != len(methods):
        raise S3ValidationError("amr: each method once")
    return methods
