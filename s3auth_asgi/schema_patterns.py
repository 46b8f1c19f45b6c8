"""A JSON Schema `pattern`, checked in Python as the schema's readers check it.

JSON Schema patterns are ECMA-262 regular expressions (read with the `u` flag, as
validators and generated clients do), searched for anywhere in the text; Python's `re`
reads most of them alike, but not all, and where it differs the code would accept what the
published schema refuses: `$` also matches before a final newline, `.` matches a carriage
return and U+2028/U+2029, `\\d` and `\\w` match the digits and letters of every script,
and `\\s` is another set of spaces. `python_pattern` writes the Python pattern that means
what the ECMA one does:

- `$` becomes `\\Z`, the very end;
- `.` becomes "anything but a line terminator" (LF, CR, U+2028, U+2029);
- `\\s` and `\\S` become ECMA's white space and line terminators, and their complement;
- `\\d`, `\\w`, `\\b` and `\\B` are ASCII-only, by the `(?a)` flag, and `\\B` matches in an
  empty text, as ECMA's does.

A pattern outside the part of the syntax both dialects read alike is refused when the
fields are declared (ConfigurationError, saying what): inline flags and named groups (`(?i)`,
`(?P<name>)`), possessive quantifiers (`a*+`), `{,n}`, escapes one dialect lacks (`\\A`,
`\\Z`, `\\p{L}`, a back-reference), `[` inside a class, a class opened with `]`, and a lone
`{`, `}` or `]` (write `\\{`, `\\}`, `\\]`).
"""

from __future__ import annotations

import re

from .errors import ConfigurationError

_LINE_TERMINATORS = "\\n\\r\\u2028\\u2029"
# ECMA-262 WhiteSpace (with the Unicode Zs category) and LineTerminator.
_SPACES = "\\t\\n\\v\\f\\r \\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"
# Escaped, these stand for themselves in both dialects (ECMA with `u`: SyntaxCharacter, /).
_SYNTAX_CHARACTERS = frozenset("^$\\.*+?()[]{}|/")
_SAME_ESCAPES = frozenset("nrtfvdDwW")
_NOT_A_WORD_BOUNDARY = r"(?:(?<=\w)(?=\w)|(?<!\w)(?!\w))"
_CODE_ESCAPE = re.compile(r"x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}")
_QUANTIFIER = re.compile(r"(?:[*+?]|\{[0-9]+(?:,[0-9]*)?\})\??")
_GROUP_OPENERS = ("(?:", "(?=", "(?!", "(?<=", "(?<!")


def python_pattern(pattern: str) -> str:
    """The Python pattern that `re.search` finds where ECMA-262 finds `pattern`;
    ConfigurationError for a pattern outside the syntax both read alike."""
    translated = ["(?a)"]
    quantifiable = False  # whether what precedes may take a quantifier
    groups: list[str] = []  # the openers of the groups open here; lookarounds take none
    at = 0
    while at < len(pattern):
        char = pattern[at]
        quantifier = _QUANTIFIER.match(pattern, at)
        if quantifier is not None:
            if not quantifiable:
                raise _refused(pattern, at, "a quantifier with nothing to repeat")
            translated.append(quantifier[0])
            at, quantifiable = quantifier.end(), False
            continue
        if char == "\\":
            piece, at = _escape(pattern, at, in_class=False)
            quantifiable = piece not in ("\\b", _NOT_A_WORD_BOUNDARY)
        elif char == "[":
            piece, at = _class(pattern, at)
            quantifiable = True
        elif char == "(":
            opener = next((o for o in _GROUP_OPENERS if pattern.startswith(o, at)), "(")
            if opener == "(" and pattern.startswith("(?", at):
                raise _refused(pattern, at, "a group other than (…), (?:…) and lookaround")
            piece, at, quantifiable = opener, at + len(opener), False
            groups.append(opener)
        elif char == ")":
            piece, at = char, at + 1
            quantifiable = (groups.pop() if groups else "(") in ("(", "(?:")
        elif char in "{}]":
            raise _refused(pattern, at, f"a lone {char!r} (write \\{char})")
        else:
            piece = {"$": "\\Z", ".": f"[^{_LINE_TERMINATORS}]"}.get(char, char)
            at, quantifiable = at + 1, char not in "^$|"
        translated.append(piece)
    python = "".join(translated)
    try:
        re.compile(python)
    except re.error as error:
        raise ConfigurationError(f"pattern {pattern!r}: {error}") from None
    return python


def _escape(pattern: str, at: int, *, in_class: bool) -> tuple[str, int]:
    """The escape at `at` (a backslash) in Python, and where it ends."""
    escaped = pattern[at + 1 : at + 2]
    code = _CODE_ESCAPE.match(pattern, at + 1)
    if code is not None:
        return "\\" + code[0], code.end()
    if escaped == "s":
        return (_SPACES if in_class else f"[{_SPACES}]"), at + 2
    if escaped == "S" and not in_class:
        return f"[^{_SPACES}]", at + 2
    if escaped == "B" and not in_class:  # Python's \B never matches in an empty text
        return _NOT_A_WORD_BOUNDARY, at + 2
    if (
        escaped in _SYNTAX_CHARACTERS
        or escaped in _SAME_ESCAPES
        or (escaped == "-" and in_class)
        or escaped == "b"  # a word boundary; in a class, a backspace: in both
    ):
        return "\\" + escaped, at + 2
    raise _refused(pattern, at, f"the escape \\{escaped}, which Python and ECMA-262 do not share")


def _class(pattern: str, at: int) -> tuple[str, int]:
    """The character class opening at `at` in Python, and where it ends."""
    start = at
    at += 2 if pattern.startswith("[^", at) else 1
    members = [pattern[start:at]]
    if pattern.startswith("]", at):
        raise _refused(pattern, at, "a class opened with ']' (write \\])")
    while at < len(pattern) and pattern[at] != "]":
        if pattern[at] == "[":
            raise _refused(pattern, at, "a '[' inside a class (write \\[)")
        if pattern[at] == "\\":
            member, at = _escape(pattern, at, in_class=True)
        else:
            member, at = pattern[at], at + 1
        members.append(member)
    if at == len(pattern):
        raise _refused(pattern, start, "a class that is not closed")
    return "".join(members) + "]", at + 1


def _refused(pattern: str, at: int, what: str) -> ConfigurationError:
    return ConfigurationError(
        f"pattern {pattern!r}: {what} at position {at}; only the ECMA-262 syntax that "
        "Python's re reads alike is taken"
    )
