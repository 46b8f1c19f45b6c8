"""The `for=` of each element of an RFC 7239 `Forwarded` header, read from the right.

A proxy writes a value that is not a token as a quoted string (RFC 7239 section 4), and the
Host a client sent, which RFC 3986 lets hold `,` and `;`, is such a value: a proxy writing
`for=203.0.113.9;host="a, for=198.51.100.7"` names the client 203.0.113.9. Split at every
comma, the tail of that host would be an element of its own, right-most, naming whoever the
client chose; so separators inside quoted strings separate nothing here.

The elements are found from the right, not the left: those the walk reads were each written
by a trusted proxy, well-formed, while whatever the client wrote sits further left and may
open a quote that a left-to-right reading would close inside a proxy's element.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

FORWARDED_PARAMETERS_READ = 16
"""The first parameters of an RFC 7239 forwarded-element that are looked through for `for=`:
a proxy writes four at most (`by`, `for`, `host`, `proto`)."""

_PARAMETER = re.compile(r'(?:[^";]|"(?:[^"\\]|\\.)*")*', re.DOTALL)
"""One parameter of an element: text up to a `;` outside quoted strings."""
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
_EVEN_BACKSLASHES_AFTER = r"(?=(?:\\\\)*(?!\\))"
_ELEMENT_REVERSED = re.compile(
    rf'(?:[^",]|"(?:[^"]|"(?!{_EVEN_BACKSLASHES_AFTER}))*"{_EVEN_BACKSLASHES_AFTER})*', re.DOTALL
)
"""One element of the reversed text: up to a comma outside quoted strings. Reversed, a
quoted-pair `\\"` reads `"\\`: a quote inside a string is one an odd run of backslashes
follows, and the string's first quote the one an even run (or none) follows."""


def elements_from_right(text: str) -> Iterator[str]:
    """The forwarded-elements of `text`, right-most first; an unbalanced quote ends them
    with an empty one (no address, so the walk stops there). The text is read reversed,
    an element in one match, so that no quoted string, whatever a client put in it, costs
    a step of Python per character or per quote."""
    reversed_text = text[::-1]
    position = 0
    while True:
        found = _ELEMENT_REVERSED.match(reversed_text, position)
        assert found is not None  # the pattern matches the empty string
        end = found.end()
        if end < len(reversed_text) and reversed_text[end] == '"':
            yield ""  # a quote that never opens
            return
        yield found.group()[::-1]
        if end >= len(reversed_text):
            return
        position = end + 1  # past the comma


def forwarded_for(element: str) -> str | None:
    """The `for=` value of one forwarded-element, unquoted, or None when it has none among
    its first FORWARDED_PARAMETERS_READ parameters (or a quote in it is unbalanced)."""
    if '"' in element:
        return _quoted_for(element)
    # The usual element, without a quoted string (proxies write nearly every one so):
    # split at `;`, no regex match per parameter.
    for pair in element.split(";", FORWARDED_PARAMETERS_READ)[:FORWARDED_PARAMETERS_READ]:
        name, sep, value = pair.partition("=")
        if sep and name.strip().lower() == "for":
            return value
    return None


def _quoted_for(element: str) -> str | None:
    """`forwarded_for` where the element holds quoted strings: split at each `;` outside
    them, and the value's quoted-pairs undone."""
    position, read = 0, 0
    while read < FORWARDED_PARAMETERS_READ:
        match = _PARAMETER.match(element, position)
        assert match is not None  # the pattern matches the empty string
        position = match.end()
        if position < len(element) and element[position] != ";":
            return None  # a quote that never closes
        name, sep, value = match.group().partition("=")
        if sep and name.strip().lower() == "for":
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                return _QUOTED_PAIR.sub(r"\1", value[1:-1])
            return value
        if position >= len(element):
            return None
        position += 1
        read += 1
    return None
