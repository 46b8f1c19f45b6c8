"""Which requests to a documented operation a path pattern (BearerTokenMiddleware's, a
RateLimitRule's: `paths`) matches: all of them, some of them, or none, whatever its path
parameters (`/items/{id}`) are.

A parameter's value is taken as what routers give one: a single non-empty segment (no
`/`). A path without parameters is one request path, matched as the middleware matches
it (trailing slashes and all: the caller's `matches`). With parameters:

- a prefix pattern (`/api/*`) matches every value when the path's text before its first
  parameter starts with the prefix: the path as requested does, and the middleware
  matches that form among others;
- an exact pattern never matches every value, as no one path is every request;
- otherwise the pattern matches some values when some request path of the template
  matches it: an exact pattern that the template spells with values (`/items/1` of
  `/items/{id}`, a trailing `/` aside), a prefix that some request path starts with
  (`/items/1/*` of `/items/{id}/photos`).

Values a router may also take, `..` resolving the path elsewhere, are not tried: such a
request is matched as the path it resolves to.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

Coverage = Literal["all", "some", "none"]

PARAMETER = re.compile(r"\{[^{}]*\}")
_VALUE = "[^/]+"


def coverage(pattern: str, path: str, matches: Callable[[str], bool]) -> Coverage:
    """How many requests to `path` (a templated path, as the middleware sees requests)
    `pattern` matches; `matches`: whether it matches a request path, as the middleware
    matches it."""
    literals = PARAMETER.split(path)
    if len(literals) == 1:
        return "all" if matches(path) else "none"
    prefix = pattern.removesuffix("*") if pattern.endswith("*") else None
    if prefix is not None and literals[0].startswith(prefix):
        return "all"
    if prefix is not None:
        found = _starts(literals).fullmatch(prefix)
    else:
        template = re.compile(_VALUE.join(map(re.escape, literals)))
        found = template.fullmatch(pattern) or template.fullmatch(pattern + "/")
    return "some" if found else "none"


def _starts(literals: list[str]) -> re.Pattern[str]:
    """What request paths of the template with these literals between its parameters
    start with: every way of stopping within a literal, or within a value."""
    alternatives = []
    done = ""
    for index, literal in enumerate(literals):
        alternatives += [done + re.escape(literal[:end]) for end in range(len(literal) + 1)]
        done += re.escape(literal)
        if index < len(literals) - 1:
            alternatives.append(done + "[^/]*")
            done += _VALUE
    return re.compile("|".join(alternatives))
