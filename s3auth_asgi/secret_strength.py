"""How guessable a secret key is: an estimate, in bits, of what a guesser that knows the
usual shortcuts must still try, and the common-password list it shares with the password
policies.

The model is a description length. The secret is written as a sequence of pieces, each a
2-bit kind followed by its content, and the estimate is the cheapest such description
(dynamic programming over the positions; `n` is the secret's length):

- a literal run: its length (log2 n bits), then log2 A bits per character;
- a repeat of earlier text, overlapping allowed (`aaaa`, `abcabc`, `passwordpassword`):
  where the copy starts (log2 of the number of earlier positions) and its length (log2 n);
- a sequence of consecutive characters, up or down (`abcdef`, `0123456789`, `zyx`): its
  first character (log2 A), its direction (1) and its length (log2 n);
- an entry of the common-password list (`password`, `changeme`, `iloveyou`, `qwertyuiop`):
  which one (log2 of the list's size), plus one bit per letter when any is upper-case.

The alphabet A is the cheaper of two: the character classes the secret draws on (26 lower
case, 26 upper case, 10 digits, 33 ASCII punctuation and space, 100 for anything else;
16 when every character is a hexadecimal digit of one case), or the secret's own distinct
characters, named once up front (k of them cost k × log2 of the classes' size, then log2 k
bits per character). The second is what gives `abbabaab…` away.

A secret must reach MIN_SECRET_BITS: 128, the strength NIST SP 800-57 asks of a symmetric
key from 2031, and what the shortest secret allowed carries when it is 32 random hex
digits. Random secrets reach it by a wide margin (the lowest of 3,000 draws each in
brackets): `s3auth gen-secret` (64 base64url characters) about 420 bits (386),
`secrets.token_hex(32)` 264 (261), `secrets.token_urlsafe(32)` about 280 (252): a piece's
header costs more than a coincidental short repeat or run in random text saves. 32 random
hex digits sit at the bound: 135 on average, and about one in 2,500 falls just short, when
it happens to hold `000000` or `23456` at an end. Low-entropy secrets fall far short:
`"a" * 32` is 11 bits, `"password" * 4` 26, `"0123456789" * 4` 22.

It is an estimate of the patterns above only, not of the process that made the secret: a
sentence or a list of uncommon words can pass. Use `s3auth gen-secret`. Only the first
MAX_ANALYSED characters are examined, which bounds the work (quadratic in the length) and
is plenty to find 128 bits in any random secret.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from functools import cache
from importlib import resources
from math import inf, log2

from .identifiers import fold

MIN_SECRET_BITS = 128
MAX_ANALYSED = 256
KIND_BITS = 2.0
"""Which of the four kinds of piece comes next."""
MIN_REPEAT = 2
MIN_SEQUENCE = 3

_CLASSES = (
    (frozenset(string.ascii_lowercase), 26),
    (frozenset(string.ascii_uppercase), 26),
    (frozenset(string.digits), 10),
    (frozenset(string.punctuation + " "), 33),
)
_OTHER_CLASS = 100
_HEX = (frozenset("0123456789abcdef"), frozenset("0123456789ABCDEF"))


@cache
def common_passwords() -> frozenset[str]:
    """The list in `common_passwords.txt`, folded (NFKC, case-folded): the passwords the
    policies refuse, and the words a secret key is not made of. Read at the first call
    (some 30,000 entries: some 20 milliseconds and about 4 MB), not at import, so that a
    process that sets no password and checks no secret never holds it."""
    text = resources.files(__package__).joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(
        fold(line.strip()) for line in text.splitlines() if line.strip() and line[0] != "#"
    )


@cache
def _word_lengths() -> tuple[int, ...]:
    # Every settings object estimates its secret: the lengths are not gathered each time.
    return tuple(sorted({len(word) for word in common_passwords()}))


def class_alphabet(text: str) -> int:
    """The size of the character classes `text` draws on (16 for hexadecimal digits)."""
    chars = set(text)
    if any(chars <= hex_digits for hex_digits in _HEX) and not chars <= set(string.digits):
        return 16
    size = sum(n for members, n in _CLASSES if chars & members)
    if any(not any(c in members for members, _ in _CLASSES) for c in chars):
        size += _OTHER_CLASS
    return max(size, 1)


def estimate_bits(secret: str) -> float:
    """The estimated bits of `secret`: the cheapest description of it (module docstring)."""
    text = secret[:MAX_ANALYSED]
    if not text:
        return 0.0
    classes = class_alphabet(text)
    pieces = _pieces(text, classes)
    alphabets = [(0.0, log2(classes))]
    distinct = len(set(text))
    if distinct < classes:
        alphabets.append((distinct * log2(classes), log2(distinct)))
    return min(named + _cheapest(len(text), per_char, pieces) for named, per_char in alphabets)


def _cheapest(n: int, per_char: float, pieces: list[list[tuple[int, float]]]) -> float:
    """The cheapest description of all n characters: `pieces[j]` holds the (start, bits) of
    the patterns that end at j; literal runs cost `per_char` a character."""
    run_header = KIND_BITS + _length_bits(n)
    best = [0.0] + [inf] * n  # the first j characters, ending where any piece ends
    in_run = inf  # ... ending inside a literal run, which the next character may extend
    for j in range(1, n + 1):
        in_run = min(in_run, best[j - 1] + run_header) + per_char
        best[j] = min([in_run, *(best[start] + bits for start, bits in pieces[j])])
    return best[n]


def _length_bits(n: int) -> float:
    return log2(max(n, 2))


def _pieces(text: str, classes: int) -> list[list[tuple[int, float]]]:
    pieces: list[list[tuple[int, float]]] = [[] for _ in range(len(text) + 1)]
    for start, end, bits in _patterns(text, classes):
        pieces[end].append((start, bits))
    return pieces


def _patterns(text: str, classes: int) -> Iterator[tuple[int, int, float]]:
    """Every repeat, sequence and listed word in `text`: (start, end, bits)."""
    n = len(text)
    length = _length_bits(n)
    longest = _longest_repeats(text)
    for start in range(1, n):
        bits = KIND_BITS + log2(start) + length  # copies from one of `start` positions
        for end in range(start + MIN_REPEAT, start + longest[start] + 1):
            yield start, end, bits
    sequence_bits = KIND_BITS + log2(classes) + 1 + length
    for start in range(n - MIN_SEQUENCE + 1):
        for step in (1, -1):
            end = start + 1
            while end < n and ord(text[end]) - ord(text[end - 1]) == step:
                end += 1
            for stop in range(start + MIN_SEQUENCE, end + 1):
                yield start, stop, sequence_bits
    words = common_passwords()
    word_bits = KIND_BITS + log2(len(words))
    lowered = text.lower() if text.isascii() else None  # folding ASCII is lower-casing
    for size in _word_lengths():
        for start in range(n - size + 1):
            piece = text[start : start + size]
            folded = fold(piece) if lowered is None else lowered[start : start + size]
            if folded in words:
                case = 0 if piece == piece.lower() else sum(c.isalpha() for c in piece)
                yield start, start + size, word_bits + case


def _longest_repeats(text: str) -> list[int]:
    """For each position, the longest stretch from there that equals the text starting at
    some earlier position (the copy may overlap the stretch, as in `aaaa`)."""
    n = len(text)
    longest = [0] * n
    for distance in range(1, n):
        match = 0
        for i in range(n - 1, distance - 1, -1):
            match = match + 1 if text[i] == text[i - distance] else 0
            longest[i] = max(longest[i], match)
    return longest
