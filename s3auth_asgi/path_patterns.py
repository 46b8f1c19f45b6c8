"""Path patterns: what each matches (`PathSet`), and which are refused when a middleware
is built: one that is no normalised path, one whose `*` is not at the end, an exclusion
whose prefix does not end at a segment.
"""

from __future__ import annotations

from collections.abc import Iterable

from .errors import ConfigurationError
from .path_forms import is_suspicious, normalise


class PathSet:
    """Exact paths and prefixes; one set lookup and one `startswith` call per match.

    Patterns that say what needs a token or what is counted also cover, when they end with
    a slash (`/admin/`, `/admin/*`), the path without it (`/admin`): Litestar drops the
    trailing slash of its routes and so routes `/admin` to a route `/admin/`. An
    `exclusion` covers only what it names, and its prefixes must end at a segment."""

    __slots__ = ("exact", "patterns", "prefixes")

    def __init__(self, patterns: Iterable[str], setting: str, *, exclusion: bool = False) -> None:
        self.patterns = tuple(patterns)
        exact: set[str] = set()
        prefixes: list[str] = []
        for pattern in self.patterns:
            check_pattern(pattern, setting)
            if exclusion:
                check_segment_prefix(pattern, setting)
            stem = pattern.removesuffix("*")
            if pattern.endswith("*"):
                prefixes.append(stem)
            else:
                exact.add(pattern)
            if not exclusion and len(stem) > 1 and stem.endswith("/"):
                exact.add(stem[:-1])
        self.exact = frozenset(exact)
        self.prefixes = tuple(prefixes)

    def matches(self, path: str) -> bool:
        return path in self.exact or path.startswith(self.prefixes)


def check_pattern(pattern: object, setting: str) -> None:
    if not isinstance(pattern, str) or not pattern.startswith("/"):
        raise ConfigurationError(f"{setting}: {pattern!r} must be a path starting with '/'")
    body = pattern.removesuffix("*")
    if "*" in body:
        raise ConfigurationError(f"{setting}: {pattern!r}: '*' is allowed only at the end")
    if is_suspicious(body) or normalise(body) != body:
        raise ConfigurationError(
            f"{setting}: {pattern!r} must be a normalised path (no '//', '.', '..', '%', '\\')"
        )


def check_segment_prefix(pattern: str, setting: str) -> None:
    """Refuse a prefix whose `*` follows a name: it would take in longer names too."""
    if pattern.endswith("*") and not pattern.endswith("/*"):
        stem = pattern[:-1]
        raise ConfigurationError(
            f"{setting}: {pattern!r} would also exclude every path that merely starts with "
            f"{stem!r}, such as {stem + 'x'!r}; write {stem!r}, {stem + '/*'!r} for {stem!r} "
            "and what lies below it"
        )
