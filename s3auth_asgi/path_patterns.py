"""Path patterns: what each matches (`PathSet`), and which are refused when a middleware
is built: one that is no normalised path, one whose `*` is not at the end, an exclusion
whose prefix does not end at a segment, and ones that could never take effect.

A path is matched in several forms and the strictest outcome wins (`paths`), one form
being the path without its trailing slashes, which Litestar routes it as. So an exact
exclusion `/public/` skips nothing unless `/public` is excluded too: a request to
`/public/` is also judged as `/public`. An exclusion that skipped `/public/` alone would
open, under Litestar, the route that a protected `/public` names. It is refused, saying
what to write. A protected pattern that exclusions cover whole needs a token nowhere, as
an exclusion wins: refused too.

An exact exclusion `/health` also skips `/health/`: Starlette and FastAPI answer it with a
redirect to `/health` and Litestar serves `/health` at it, but the middleware in front
judges it first, and a public route would answer 401. Not where a protected pattern, as
written, names `/health/` and not `/health` (`/health/*`, `/health/`): that is a route of
its own (a Starlette `Mount`'s root), which the exclusion did not name.
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
    `exclusion` covers what it names, an exact one with one trailing slash too (see the
    module), and its prefixes must end at a segment."""

    __slots__ = ("exact", "patterns", "prefixes")

    def __init__(
        self,
        patterns: Iterable[str],
        setting: str,
        *,
        exclusion: bool = False,
        protected: Iterable[str] = (),
    ) -> None:
        """`protected`: for an `exclusion`, the protected patterns as written, which keep
        the slashed path of an exact exclusion that they name alone (see the module)."""
        self.patterns = tuple(patterns)
        exact: set[str] = set()
        prefixes: list[str] = []
        kept = tuple(protected)
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
            if exclusion and not pattern.endswith(("*", "/")):
                slashed = pattern + "/"
                if not any(names(p, slashed) and not names(p, pattern) for p in kept):
                    exact.add(slashed)
        self.exact = frozenset(exact)
        self.prefixes = tuple(prefixes)

    def matches(self, path: str) -> bool:
        return path in self.exact or path.startswith(self.prefixes)

    def covers(self, other: PathSet) -> bool:
        """Whether this matches every path `other` matches."""
        return all(map(self.matches, other.exact)) and all(
            stem.startswith(self.prefixes) for stem in other.prefixes
        )


def names(pattern: str, path: str) -> bool:
    """Whether `pattern`, as written, names `path`: no slash added or dropped."""
    return path == pattern or (pattern.endswith("*") and path.startswith(pattern[:-1]))


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


def refuse_unskippable_exclusions(exclude: PathSet) -> None:
    """Refuse an exact exclusion ending in a slash whose path without it is not excluded:
    no request to it is ever skipped (see the module)."""
    for pattern in exclude.patterns:
        stem = pattern[:-1]
        if len(pattern) > 1 and pattern.endswith("/") and not exclude.matches(stem):
            raise ConfigurationError(
                f"exclude: {pattern!r} never skips anything: a request to it is also judged "
                f"as {stem!r}, the path Litestar routes it as, which is not excluded; write "
                f"({stem!r}, {stem + '/*'!r}) for {stem!r} and what lies below it, or "
                f"({stem!r}, {pattern!r}) for the path with and without its slash"
            )


def refuse_excluded_protection(protected: Iterable[str], exclude: PathSet) -> None:
    """Refuse a protected pattern every path of which is excluded: it needs a token nowhere."""
    for pattern in protected:
        if exclude.covers(PathSet((pattern,), "protected")):
            raise ConfigurationError(
                f"protected: {pattern!r} needs a token nowhere: exclude "
                f"{exclude.patterns!r} takes in every path it matches, and an exclusion "
                "wins; drop one of them or narrow the exclusion"
            )
