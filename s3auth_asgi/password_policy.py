"""What a new password must be: the policies `S3AUTH_PASSWORD_POLICY` names.

A pure function of the password and the account's names, checked before any store request
where it can be (a registration) and never reading the store, so that a refusal tells
nothing of other accounts.
"""

from __future__ import annotations

import unicodedata

import msgspec

from .errors import WeakPasswordError
from .identifiers import fold
from .secret_strength import common_passwords
from .settings import S3AuthSettings
from .settings_ranges import RANGES, Range, check_argument, check_number

LONGEST_SETTABLE = int(RANGES["password_max_length"].most)
"""The longest password any setting of S3AUTH_PASSWORD_MAX_LENGTH lets be set."""

CONTEXT_WORD_MIN = 4
"""The shortest name (`nist`) that is held against a password it is in: three letters
(`bob`, `amy`) are in too many words of a passphrase to count against it."""


class PasswordPolicy(msgspec.Struct, kw_only=True, frozen=True):
    """What a new password must satisfy. Any Unicode letter counts as a letter.

    `max_length` is held to S3AUTH_PASSWORD_MAX_LENGTH's range (64 to 4096), `min_length`
    from 1 to it: ConfigurationError naming the argument otherwise."""

    min_length: int = 8
    max_length: int = 128
    require_upper: bool = True
    require_lower: bool = True
    require_digit: bool = True
    refuse_common: bool = True
    refuse_identifiers: bool = False

    def __post_init__(self) -> None:
        # The maximum stands for S3AUTH_PASSWORD_MAX_LENGTH, held to its range; a minimum
        # above it would refuse every password, unsaid until the first registration.
        check_argument("password_max_length", self.max_length, "PasswordPolicy max_length")
        check_number(Range(1, self.max_length), self.min_length, "PasswordPolicy min_length")

    @classmethod
    def default(cls, max_length: int = 128) -> PasswordPolicy:
        """8+ characters with an upper-case and a lower-case letter and a digit, the rules
        s3verless applications already enforce, and not one of the common passwords: the
        commonest thousands pass those rules in some case (`Password1`), and are the first
        a guesser tries."""
        return cls(max_length=max_length)

    @classmethod
    def nist(cls, max_length: int = 128) -> PasswordPolicy:
        """NIST SP 800-63B style: 15+ characters, no composition rules, no common
        passwords, and the account's names held against it (5.1.1.2's context-specific
        words): not the username, the address or its local part, and 15 characters without
        each of them of `CONTEXT_WORD_MIN` characters or more that it holds, compared as
        the common passwords are (NFKC, casefolded). Whoever guesses at an account knows
        its names, so they add nothing to the length; a passphrase long enough without
        them may hold one."""
        return cls(
            min_length=15,
            max_length=max_length,
            require_upper=False,
            require_lower=False,
            require_digit=False,
            refuse_common=True,
            refuse_identifiers=True,
        )

    @classmethod
    def from_settings(cls, settings: S3AuthSettings) -> PasswordPolicy:
        preset = cls.nist if settings.password_policy == "nist" else cls.default
        return preset(settings.password_max_length)

    @property
    def longest_checked(self) -> int:
        """The longest password a login checks, whatever `max_length` is (a longer one is
        refused unhashed): that bounds the passwords being set, as the other rules do, and
        an operator who lowers it locks out no account whose password is longer, as a
        stricter policy locks out none whose password is shorter."""
        return LONGEST_SETTABLE

    def describe(self) -> str:
        """What `check` asks, in a sentence for whoever picks a password (the OpenAPI
        document of the fields that set one): every rule a password can break, none it
        cannot."""
        classes = [
            what
            for wanted, what in (
                (self.require_upper, "an upper-case letter"),
                (self.require_lower, "a lower-case letter"),
                (self.require_digit, "a digit"),
            )
            if wanted
        ]
        lengths = f"{self.min_length} to {self.max_length} characters"
        if classes:
            last = classes.pop()
            lengths += f" with {', '.join(classes)} and {last}" if classes else f" with {last}"
        rules = [lengths, "no control characters"]
        if self.refuse_common:
            rules.append("not one of the common passwords")
        if self.refuse_identifiers:
            rules.append(
                f"not the username or email, nor under {self.min_length} characters once "
                f"those of {CONTEXT_WORD_MIN} characters or more are taken out"
            )
        return "; ".join(rules) + "."

    def check(self, password: object, *identifiers: str) -> str:
        """The password if it satisfies the policy; WeakPasswordError naming every rule it
        breaks if not (`errors`, in the order of the policy's fields).

        Nothing is truncated: a password over max_length is refused, not cut.
        """
        if not isinstance(password, str):
            raise WeakPasswordError("The password must be a string")
        broken = self._broken_rules(password, identifiers)
        if broken:
            raise WeakPasswordError(errors=broken)
        return password

    def _broken_rules(self, password: str, identifiers: tuple[str, ...]) -> list[str]:
        """One sentence per rule `password` breaks (empty: none)."""
        broken: list[str] = []
        length = len(password)
        if length < self.min_length:
            broken.append(f"The password must be at least {self.min_length} characters")
        if length > self.max_length:
            broken.append(f"The password must be at most {self.max_length} characters")
        if any(unicodedata.category(c) in ("Cc", "Cs") for c in password):
            broken.append("The password must not contain control characters")
        if self.require_upper and not any(c.isupper() for c in password):
            broken.append("The password needs an upper-case letter")
        if self.require_lower and not any(c.islower() for c in password):
            broken.append("The password needs a lower-case letter")
        if self.require_digit and not any(c.isdigit() for c in password):
            broken.append("The password needs a digit")
        folded = fold(password)
        if self.refuse_common and folded in common_passwords():
            broken.append("The password is too common")
        if self.refuse_identifiers:
            broken.extend(self._names_in(folded, identifiers))
        return broken

    def _names_in(self, folded: str, identifiers: tuple[str, ...]) -> list[str]:
        """The rule on the account's names (`nist`) that `folded`, the password, breaks."""
        words = {fold(word) for i in identifiers if i for word in (i, i.split("@")[0])}
        if folded in words:
            return ["The password must not be the username or email"]
        rest = folded
        for word in sorted(words, key=lambda word: (-len(word), word)):  # an address first
            if len(word) >= CONTEXT_WORD_MIN:
                rest = rest.replace(word, "")
        if rest == folded or len(rest) >= self.min_length:
            return []
        return [
            f"The password must be at least {self.min_length} characters without the "
            "username or email in it"
        ]
