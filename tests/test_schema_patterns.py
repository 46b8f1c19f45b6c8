"""A JSON Schema pattern is checked as ECMA-262 (with the `u` flag) checks it: the answers
below are a JavaScript engine's, and Python's `re.search` with the pattern as written gives
the other answer to most of them."""

from __future__ import annotations

import re

import pytest

from s3auth_asgi.errors import ConfigurationError
from s3auth_asgi.schema_patterns import python_pattern

# (pattern, text, whether ECMA-262 finds the pattern in the text)
ECMA_ANSWERS = [
    ("^[a-z]*$", "abc", True),
    ("^[a-z]*$", "abc\n", False),  # Python's $ matches before a final newline
    ("x$|^y", "x\n", False),
    ("\\n$", "a\n", True),
    ("^[$.]+$", "$.", True),  # in a class, $ and . are themselves
    ("^a.c$", "abc", True),
    ("^a.c$", "a\U0001f600c", True),  # one code point, with `u`
    ("^a.c$", "a\rc", False),  # . takes no line terminator...
    ("^a.c$", "a\u2028c", False),
    ("^a.c$", "a\u2029c", False),
    ("^\\d+$", "12", True),
    ("^\\d+$", "\u0663", False),  # ...and \d, \w, \b are ASCII
    ("^[\\d]+$", "\u0663", False),
    ("^\\w+$", "a_1", True),
    ("^\\w+$", "\u00e9", False),
    ("^\\W$", "\u00e9", True),
    ("\\bfoo\\b", "foo\u00e9", True),
    ("^\\B$", "", True),  # Python's \B never matches an empty text
    ("^\\s$", "\u00a0", True),  # \s is ECMA's white space and line terminators
    ("^\\s$", "\ufeff", True),
    ("^\\s$", "\x1c", False),
    ("^\\s$", "\x85", False),
    ("^\\S$", "\x1c", True),
    ("^[\\s,]+$", "\ufeff,", True),
    ("^[^\\s]+$", "a\x1cb", True),
    ("^[\\b]$", "\b", True),  # in a class, \b is a backspace
    ("^(?:ab|cd){2}$", "abcd", True),
    ("^(?!a)\\w+$", "ba", True),
    ("(?<=a)b", "ab", True),
    ("^\\x41\\u00e9$", "A\u00e9", True),
    ("^[\\]\\-a]+$", "]-a", True),
]


@pytest.mark.parametrize(("pattern", "text", "found"), ECMA_ANSWERS)
def test_a_pattern_finds_what_ecma_262_finds(pattern: str, text: str, found: bool) -> None:
    assert (re.search(python_pattern(pattern), text) is not None) is found


def test_as_written_python_would_answer_otherwise() -> None:
    differ = [p for p, text, found in ECMA_ANSWERS if (re.search(p, text) is not None) != found]
    assert len(differ) == 17


@pytest.mark.parametrize(
    ("pattern", "what"),
    [
        ("(?i)^abc$", "a group other than"),
        ("^(?P<year>\\d{4})$", "a group other than"),
        ("^(?<year>\\d{4})$", "a group other than"),
        ("^(?!)*", "nothing to repeat"),  # a lookaround takes no quantifier in ECMA
        ("^a*+$", "nothing to repeat"),  # possessive in Python, an error in ECMA
        ("^a{,3}$", "a lone '{'"),  # {0,3} in Python, an error in ECMA
        ("^a}$", "a lone '}'"),
        ("^a]$", "a lone ']'"),
        ("^[]a]$", "a class opened with ']'"),
        ("^[[a]$", "a '[' inside a class"),
        ("^[a-z$", "a class that is not closed"),
        ("\\Aabc\\Z", "the escape \\A"),
        ("^\\p{L}+$", "the escape \\p"),
        ("^\\u{1F600}$", "the escape \\u"),
        ("^(a)\\1$", "the escape \\1"),
        ("^[\\S]$", "the escape \\S"),
        ("^\\-$", "the escape \\-"),
        ("^(a$", "missing ), unterminated subpattern"),
    ],
)
def test_a_pattern_the_dialects_read_differently_is_refused(pattern: str, what: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(what)):
        python_pattern(pattern)
