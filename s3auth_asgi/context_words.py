"""The words a password is judged without besides the account's own names: the service's
(its organisation's, its product's names: `S3AUTH_PASSWORD_CONTEXT_WORDS`), which a guesser
tries first as surely as the username. What makes a word one: `check_context_words`."""

from __future__ import annotations

from collections.abc import Iterable

from .errors import ConfigurationError
from .identifiers import fold

CONTEXT_WORD_MIN = 4
"""The shortest word held against a password it is in: three letters (`bob`, `amy`) are in
too many words of a passphrase to count against it."""


def check_context_words(words: Iterable[object], name: str) -> tuple[str, ...]:
    """`words` as given, or ConfigurationError naming `name` (the variable or the argument)
    and the word: an empty one (a word lost between two commas, an unset shell variable),
    one with whitespace around it, or one of fewer than CONTEXT_WORD_MIN characters once
    folded, which would refuse only a password that is nothing else, and that no policy's
    minimum length lets through anyway. Refused, not dropped: a word lost is a rule unset."""
    kept = []
    for word in words:
        if not isinstance(word, str):
            raise ConfigurationError(f"{name} must be words (text), not {word!r}")
        if not word:
            raise ConfigurationError(
                f"{name} holds an empty word (two commas in a row, or one at an end?): "
                "write the word that is missing, or remove the comma"
            )
        if word != word.strip():
            raise ConfigurationError(f"{name}: {word!r} begins or ends with whitespace")
        if len(fold(word)) < CONTEXT_WORD_MIN:
            raise ConfigurationError(
                f"{name}: {word!r} is shorter than {CONTEXT_WORD_MIN} characters, too short "
                "to hold against a password (it is in too many words of a passphrase)"
            )
        kept.append(word)
    return tuple(kept)
