"""What a new password must be: the policies `S3AUTH_PASSWORD_POLICY` names.

A pure function of the password, the account's names and the service's own words
(`S3AUTH_PASSWORD_CONTEXT_WORDS`), checked before any store request where it can be (a
registration) and never reading the store, so that a refusal tells nothing of other
accounts.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

import msgspec

from .context_words import CONTEXT_WORD_MIN, check_context_words
from .errors import WeakPasswordError
from .identifiers import fold
from .secret_strength import common_passwords
from .settings import S3AuthSettings
from .settings_ranges import RANGES, Range, check_argument, check_number

LONGEST_SETTABLE = int(RANGES["password_max_length"].most)
"""The longest password any setting of S3AUTH_PASSWORD_MAX_LENGTH lets be set."""
NAMES = "the username or email"
SITE = "the names of this service"
BOTH = "the username, the email or the names of this service"


class PasswordPolicy(msgspec.Struct, kw_only=True, frozen=True):
    """What a new password must satisfy. Any Unicode letter counts as a letter.

    `max_length` is held to S3AUTH_PASSWORD_MAX_LENGTH's range (64 to 4096), `min_length`
    from 1 to it, `context_words` to S3AUTH_PASSWORD_CONTEXT_WORDS's rules
    (`context_words`): ConfigurationError naming the argument otherwise.

    `context_words` (the service's own names) are held against a password under any
    policy, as `refuse_identifiers` holds the account's names: not the whole password, and
    not the most of it (`nist`'s docstring)."""

    min_length: int = 8
    max_length: int = 128
    require_upper: bool = True
    require_lower: bool = True
    require_digit: bool = True
    refuse_common: bool = True
    refuse_identifiers: bool = False
    context_words: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # The maximum stands for S3AUTH_PASSWORD_MAX_LENGTH, held to its range; a minimum
        # above it would refuse every password, unsaid until the first registration.
        check_argument("password_max_length", self.max_length, "PasswordPolicy max_length")
        check_number(Range(1, self.max_length), self.min_length, "PasswordPolicy min_length")
        check_context_words(self.context_words, "PasswordPolicy context_words")

    @classmethod
    def default(cls, max_length: int = 128, context_words: Iterable[str] = ()) -> PasswordPolicy:
        """8+ characters with an upper-case and a lower-case letter and a digit, the rules
        s3verless applications already enforce, and not one of the common passwords: the
        commonest thousands pass those rules in some case (`Password1`), and are the first
        a guesser tries."""
        return cls(max_length=max_length, context_words=tuple(context_words))

    @classmethod
    def nist(cls, max_length: int = 128, context_words: Iterable[str] = ()) -> PasswordPolicy:
        """NIST SP 800-63B style: 15+ characters, no composition rules, no common
        passwords, and the account's names held against it (5.1.1.2's context-specific
        words): not the username, the address or its local part, and 15 characters without
        each of them of `CONTEXT_WORD_MIN` characters or more that it holds, compared as
        the common passwords are (NFKC, casefolded). Whoever guesses at an account knows
        its names, so they add nothing to the length; a passphrase long enough without
        them may hold one. The service's own `context_words` count as the names do."""
        return cls(
            min_length=15,
            max_length=max_length,
            require_upper=False,
            require_lower=False,
            require_digit=False,
            refuse_common=True,
            refuse_identifiers=True,
            context_words=tuple(context_words),
        )

    @classmethod
    def from_settings(cls, settings: S3AuthSettings) -> PasswordPolicy:
        preset = cls.nist if settings.password_policy == "nist" else cls.default
        return preset(settings.password_max_length, settings.password_context_words)

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
        held = self._held(names=self.refuse_identifiers, site=bool(self.context_words))
        if held:
            whole = held if held == NAMES else held.replace("the names", "one of the names")
            rules.append(
                f"not {whole}, nor under {self.min_length} characters once "
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
        if self.refuse_identifiers or self.context_words:
            broken.extend(self._names_in(folded, identifiers))
        return broken

    def _names_in(self, folded: str, identifiers: tuple[str, ...]) -> list[str]:
        """The rule on the account's names (`nist`) and the service's words that `folded`,
        the password, breaks."""
        names: set[str] = set()
        if self.refuse_identifiers:
            names = {fold(word) for i in identifiers if i for word in (i, i.split("@")[0])}
        site = {fold(word) for word in self.context_words}
        if folded in names:
            return ["The password must not be the username or email"]
        if folded in site:
            return [f"The password must not be one of {SITE}"]
        rest = folded
        found_names = found_site = False
        for word in sorted(names | site, key=lambda word: (-len(word), word)):  # an address first
            if len(word) >= CONTEXT_WORD_MIN and word in rest:
                rest = rest.replace(word, "")
                found_names |= word in names
                found_site |= word in site
        if rest == folded or len(rest) >= self.min_length:
            return []
        held = self._held(names=found_names, site=found_site)
        return [f"The password must be at least {self.min_length} characters without {held} in it"]

    @staticmethod
    def _held(*, names: bool, site: bool) -> str:
        """What is held against a password: the account's names, the service's, or both."""
        return BOTH if names and site else NAMES if names else SITE if site else ""
