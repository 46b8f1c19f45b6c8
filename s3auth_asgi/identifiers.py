"""Usernames and emails: validation and the normalised form that makes them unique.

`ALICE`, `alice` and fullwidth `ａｌｉｃｅ` are one name: NFKC, then casefold, then NFKC
again (casefolding can leave a string unnormalised). Zero-width, control and other
invisible characters are refused rather than stripped, so that what a user sees is what
they typed.
"""

from __future__ import annotations

import unicodedata

from .errors import InvalidEmailError, InvalidUsernameError

USERNAME_MIN = 3
USERNAME_MAX = 64
EMAIL_MAX = 254
_USERNAME_PUNCTUATION = frozenset("._-")
# Letters, marks and numbers; everything else (controls, format characters such as
# zero-width joiners, separators, symbols, private use, surrogates) is refused.
_ALLOWED_CATEGORIES = frozenset(("Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No"))


def fold(value: str) -> str:
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())


def clean_username(raw: object) -> str:
    """The username as stored (NFKC, trimmed); raises InvalidUsernameError."""
    if not isinstance(raw, str):
        raise InvalidUsernameError("The username must be a string")
    value = unicodedata.normalize("NFKC", raw.strip())
    if not USERNAME_MIN <= len(value) <= USERNAME_MAX:
        raise InvalidUsernameError(
            f"The username must be {USERNAME_MIN} to {USERNAME_MAX} characters long"
        )
    for char in value:
        if char in _USERNAME_PUNCTUATION:
            continue
        if unicodedata.category(char) not in _ALLOWED_CATEGORIES:
            raise InvalidUsernameError(
                "The username may hold letters, digits, '.', '_' and '-' only"
            )
    return value


def normalise_username(raw: object) -> str:
    """The unique form of a username (raises InvalidUsernameError)."""
    return fold(clean_username(raw))


def clean_email(raw: object) -> str:
    """The email as stored (NFKC, trimmed, domain lower-cased); raises InvalidEmailError."""
    if not isinstance(raw, str):
        raise InvalidEmailError("The email must be a string")
    value = unicodedata.normalize("NFKC", raw.strip())
    local, at, domain = value.rpartition("@")
    if (
        not at
        or not local
        or "." not in domain.strip(".")
        or len(value) > EMAIL_MAX
        or any(_invisible(c) or c.isspace() for c in value)
        or "@" in local
    ):
        raise InvalidEmailError("The email address is not valid")
    return f"{local}@{domain.lower()}"


def normalise_email(raw: object) -> str:
    """The unique form of an email: NFKC and casefolded, local part included."""
    return fold(clean_email(raw))


def _invisible(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def looks_like_email(identifier: str) -> bool:
    return "@" in identifier
