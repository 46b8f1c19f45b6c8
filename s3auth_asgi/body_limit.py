"""The least S3AUTH_MAX_BODY_BYTES the auth app's largest valid request fits in. A limit
below it answers a valid registration or password change with 413, so it is refused: when
the settings are made, by S3AUTH_PASSWORD_MAX_LENGTH (`settings_checks`), and when the app
is made, by the password policy and the profile fields it is given in code.

The largest request is counted with each field at its longest and each character in its
longest form: one beyond the BMP, four bytes of UTF-8, is 12 bytes as a JSON escape of its
surrogate pair (`\\ud83d\\ude00`, what Python's json module writes by default) and 12
percent-encoded in a form (`%F0%9F%98%80`, what a browser sends); no character takes more.
The largest are a registration (username, address, name and password, and the profile)
and a password change (two passwords); a login (a name of at most `IDENTIFIER_MAX` and a
password), a reset (a mailed token and a password) and a change of address (the password,
an address, a name and the profile) are smaller than one of them. Not counted is what a
client may add without end and can as well leave out: whitespace around values and
between tokens, characters that normalisation drops or composes, OAuth2 parameters that
are ignored, an administrator's list of scopes."""

from __future__ import annotations

from .errors import ConfigurationError
from .identifiers import EMAIL_MAX, FULL_NAME_MAX, USERNAME_MAX
from .settings_env import env_name

BYTES_PER_CHARACTER = 12
"""The most one character of a field takes in a body (see above)."""
BYTES_PER_PROFILE_BYTE = 3
"""A profile is capped as the JSON it is stored as, in UTF-8: a character's four bytes
there are its 12 of a JSON escape in a body."""
STRUCTURE_BYTES = 512
"""The field names, quotes, separators and the spaces an encoder puts between them: under
a hundred bytes in the largest request, counted generously."""
REGISTRATION_CHARACTERS = USERNAME_MAX + EMAIL_MAX + FULL_NAME_MAX
"""A registration's characters besides its password."""


def least_body_bytes(password_max_length: int, profile_max_bytes: int = 0) -> int:
    """The least body limit for passwords of up to `password_max_length` characters and a
    profile of up to `profile_max_bytes` as stored (0: no profile fields declared)."""
    registration = (
        BYTES_PER_CHARACTER * (REGISTRATION_CHARACTERS + password_max_length)
        + BYTES_PER_PROFILE_BYTE * profile_max_bytes
    )
    password_change = BYTES_PER_CHARACTER * 2 * password_max_length
    return STRUCTURE_BYTES + max(registration, password_change)


def check_body_limit(
    max_body_bytes: int, password_max_length: int, profile_max_bytes: int = 0, *, given: str
) -> None:
    """ConfigurationError naming S3AUTH_MAX_BODY_BYTES when it is below `least_body_bytes`;
    `given` says what the lengths come from."""
    least = least_body_bytes(password_max_length, profile_max_bytes)
    if max_body_bytes < least:
        raise ConfigurationError(
            f"{env_name('max_body_bytes')} must be at least {least} with {given}, not "
            f"{max_body_bytes}: the largest valid request (a registration or a password change, "
            f"every field at its longest, each character in its longest form of "
            f"{BYTES_PER_CHARACTER} bytes) would be refused with 413"
        )
