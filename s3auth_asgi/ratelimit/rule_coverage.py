"""Which requests to a documented operation a RateLimitRule limits: all of them, some of
them, or none, whatever its path parameters (`/items/{id}`) are.

A parameter's value is taken as what routers give one: a single non-empty segment (no
`/`). A path without parameters is one request path, matched as the middleware matches
it (`RateLimitRule.matches`: trailing slashes and all). With parameters:

- a prefix rule (`/api/*`) limits every value when the path's text before its first
  parameter starts with the prefix: the path as requested does, and the middleware
  matches that form among others;
- an exact rule never limits every value, as no one path is every request;
- otherwise the rule limits some values when some request path of the template matches
  it: an exact rule that the template spells with values (`/items/1` of `/items/{id}`,
  a trailing `/` aside), a prefix that some request path starts with (`/items/1/*` of
  `/items/{id}/photos`).

Values a router may also take, `..` resolving the path elsewhere, are not tried: such a
request is limited as the path it resolves to.
"""

from __future__ import annotations

import re
from typing import Literal

from ..paths import listed
from .rules import RateLimitRule

Coverage = Literal["all", "some", "none"]

PARAMETER = re.compile(r"\{[^{}]*\}")
_VALUE = "[^/]+"


def coverage(rule: RateLimitRule, path: str, method: str) -> Coverage:
    """How much of the operation `method` (upper case) at `path` (a templated path, as the
    rule sees requests) `rule` limits."""
    if rule.method_names is not None and not listed(method, rule.method_names):
        return "none"
    literals = PARAMETER.split(path)
    if len(literals) == 1:
        scope = {"type": "http", "method": method, "path": path}
        return "all" if rule.matches(scope) else "none"
    prefix = rule.path.removesuffix("*") if rule.path.endswith("*") else None
    if prefix is not None and literals[0].startswith(prefix):
        return "all"
    if prefix is not None:
        found = _starts(literals).fullmatch(prefix)
    else:
        template = re.compile(_VALUE.join(map(re.escape, literals)))
        found = template.fullmatch(rule.path) or template.fullmatch(rule.path + "/")
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
