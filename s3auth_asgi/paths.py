"""Which requests need a token: path patterns and methods, matched so that encoded
characters, dot segments and doubled slashes cannot talk a protected path into an
excluded one.

Patterns are matched against the path *relative to* `scope["root_path"]` — the path the
application's own routes see (Starlette's `get_route_path`): an app mounted at `/api` with
`--root-path /api` protects `/users*`, not `/api/users*`. `scope["path"]` is already
percent-decoded by the server; the Host header and forwarding headers are never read.

A pattern is either exact (`/health`) or a prefix ending in `*` (`/admin*` matches `/admin`,
`/admin/users` and `/administrators`; `/static/*` matches below `/static/`). A protected
`/static/` or `/static/*` also matches `/static`, which Litestar routes to a route
`/static/` (`path_patterns.PathSet`); an exclusion does not. An exact exclusion `/health`
also skips `/health/`, which Starlette redirects to `/health` and Litestar routes as it,
unless a protected pattern names `/health/` without `/health`. An exclusion's prefix must end
at a segment, with `/*`: `/auth*` would also skip `/authors`, a route of the app's own, so
it is refused, and `("/auth", "/auth/*")` says what was meant. So is a pattern that could
never take effect (`path_patterns`): an exact exclusion `/public/` without `/public`, and
a protected pattern exclusions cover whole.
A protected prefix may end anywhere: covering more paths than meant is the safe direction.

A pattern of `protected` maps to the scopes a token must hold there, or to
`requires(*scopes, max_age=N)`, which also asks for an authentication at most N seconds
old (`step_up`): where patterns with one overlap, the smallest of theirs that match the
path in any of its forms (`max_age`).

Three outcomes, strictest first: REQUIRED (a valid token, holding the pattern's scopes),
OPTIONAL (a token is verified when present; anonymous otherwise) and SKIP (credentials are
not looked at; the user is anonymous).

Frameworks do not all route a path the same way, so a path is matched in every form one
of them may route it as (`path_forms.route_forms`: relative to `root_path`, cut at it
as Litestar and Quart do, resolved, without trailing slashes, an absolute-form target by
its path), and the strictest outcome wins. Where routing into a mount rewrote `path`
(Litestar's `is_mount`), the path as requested (`raw_path`) is matched in the same forms
too, and it is what an exclusion names: a request is skipped only if excluded as
requested in every form, with every pattern that protects it as routed protecting it as
requested too, read without the loose forms (`path_forms`: `root_path` cut other than
where a segment ends, a "/" put in front, `//` merged with dot segments kept), so that
those only ever add to what is protected; otherwise the strictest outcome of both wins.
A path that cannot be read safely is always REQUIRED, with the scopes of every form: one
that percent-encodes `/`, `\\` or NUL in `raw_path`, contains `\\`, `%`, or a control
character after decoding, or does not start with `/`.

Methods are compared in upper case (some servers pass them on as sent, and frameworks
upper-case them), and HEAD counts as GET where GET is listed: frameworks answer HEAD with
the GET handler.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from functools import reduce
from typing import Any, Final

from .errors import ConfigurationError
from .path_forms import forms_as_received, is_suspicious, route_forms
from .path_patterns import PathSet, refuse_excluded_protection, refuse_unskippable_exclusions
from .step_up import checked_max_age
from .types import Scope


class PathAccess(enum.IntEnum):
    SKIP = 0
    OPTIONAL = 1
    REQUIRED = 2


PathDecision = tuple[PathAccess, tuple[str, ...]]
"""The outcome and, for REQUIRED, the scopes the token must hold."""

SKIP: Final[PathDecision] = (PathAccess.SKIP, ())
OPTIONAL: Final[PathDecision] = (PathAccess.OPTIONAL, ())
REQUIRED: Final[PathDecision] = (PathAccess.REQUIRED, ())

EVERY_PATH: Final = ("/*",)
"""The default of `protected`: excluding every path under it stays allowed."""

_ENCODED_SEPARATORS = (b"%2f", b"%5c", b"%00")
_PERCENT: Final = ord("%")
"""The byte looked for as an int: `in` on bytes tries its operand as one first, and given
bytes it raises and clears a TypeError, which was a third of a remembered decision."""
_MEMO_SIZE = 2048
REMEMBERED_PATH_MAX = 1024
"""The longest path (as received and as routed), `root_path` or method of a request a
middleware's memo of decisions keeps (`rememberable`). A memo bounded in entries alone is
bounded in bytes by what the server lets a path be (uvicorn: 64 KB): 2,048 paths of that
length, kept as received and as routed, hold 256 MB; at this length, 4 MB. A longer request
is decided afresh, which costs it a match of the patterns and nothing more."""


class PathRules:
    """Decides, per request, whether a token is required, optional or not looked at."""

    def __init__(
        self,
        protected: Iterable[str] | Mapping[str, Any] = EVERY_PATH,
        exclude: Iterable[str] = (),
        methods: Iterable[str] | None = None,
    ) -> None:
        if isinstance(protected, str) or isinstance(exclude, str):
            raise ConfigurationError("protected and exclude take a list of patterns, not a str")
        given = (
            {p: _requirement(s, p) for p, s in protected.items()}
            if isinstance(protected, Mapping)
            else dict.fromkeys(protected, ((), None))
        )
        scoped = {p: scopes for p, (scopes, _) in given.items()}
        self.max_age_by_pattern: Mapping[str, int] = {
            p: age for p, (_, age) in given.items() if age is not None
        }
        """Each protected pattern that asks for a recent authentication, with its `max_age`."""
        self._aged = tuple(
            (PathSet((p,), "protected"), age) for p, age in self.max_age_by_pattern.items()
        )
        self.protected = PathSet(scoped, "protected")
        self.scopes_by_pattern: Mapping[str, tuple[str, ...]] = scoped
        """Each protected pattern, with the scopes a token must hold there."""
        # Skipping more than meant would leave a route open: exclusions end at a segment.
        self.exclude = PathSet(exclude, "exclude", exclusion=True, protected=scoped)
        refuse_unskippable_exclusions(self.exclude)
        if protected is not EVERY_PATH:
            # Only what was written: excluding every path under the default is plain.
            refuse_excluded_protection(scoped, self.exclude)
        # Each pattern with its scopes; those that ask for any apart, so that the common
        # case needs no loop.
        self._each: tuple[tuple[PathSet, tuple[str, ...]], ...] = tuple(
            (PathSet((p,), "protected"), s) for p, s in scoped.items()
        )
        self._scoped = tuple((patterns, s) for patterns, s in self._each if s)
        if methods is None:
            self.methods: frozenset[str] | None = None
        else:
            if isinstance(methods, str):
                raise ConfigurationError("methods takes a list of HTTP methods, not a str")
            names = frozenset(methods)
            if not names:
                raise ConfigurationError(
                    "methods=() would need a token of no HTTP request; None means every method"
                )
            if not all(isinstance(m, str) and m.isalpha() and m.isupper() for m in names):
                raise ConfigurationError("methods must be upper-case HTTP method names")
            self.methods = names
        self._memo: dict[object, tuple[str, PathDecision]] = {}

    def decide(self, scope: Scope) -> PathDecision:
        path = scope.get("path")
        raw_path = scope.get("raw_path")
        if (
            type(path) is str
            and not scope.get("root_path")
            and (raw_path is None or (isinstance(raw_path, bytes) and _PERCENT not in raw_path))
        ):
            # Then the outcome depends on the path as received and as routed (and the
            # method) alone: remember it by the first, with the second, which one app
            # always routes the same.
            sent = path if raw_path is None else raw_path
            key = sent if self.methods is None else (request_method(scope), sent)
            remembered = self._memo.get(key)
            if remembered is not None and remembered[0] == path:
                return remembered[1]
            decision = self._decide_uncached(scope)
            if rememberable(path, raw_path, key[0] if type(key) is tuple else None):
                if len(self._memo) >= _MEMO_SIZE:
                    self._memo.clear()
                self._memo[key] = (path, decision)
            return decision
        return self._decide_uncached(scope)

    def max_age(self, scope: Scope) -> int | None:
        """The `max_age` a REQUIRED request asks for (None: none): the smallest of the
        patterns that match its path in any form, routed or as received, so that no form
        asks for less than another. Only where a pattern has one is the path matched."""
        if not self._aged:
            return None
        forms = (*route_forms(scope), *forms_as_received(scope)) or ("/",)
        ages = [age for patterns, age in self._aged if any(map(patterns.matches, forms))]
        return min(ages, default=None)

    def _decide_uncached(self, scope: Scope) -> PathDecision:
        routed, received = route_forms(scope), forms_as_received(scope)
        method = request_method(scope)  # None for WebSocket: the path alone decides
        raw_path = scope.get("raw_path")
        if (
            not routed
            or is_suspicious(routed[0])
            or (received and is_suspicious(received[0]))
            or (isinstance(raw_path, bytes) and b"%" in raw_path and _encodes_separator(raw_path))
        ):
            return self._strictest_protected((*routed, *received) or ("/",))
        as_routed = reduce(_stricter, (self._decide(method, form) for form in routed))
        if not received:
            return as_routed
        as_received = reduce(_stricter, (self._decide(method, form) for form in received))
        # An exclusion names the path as requested, part of which a mount may hide from
        # the path as routed: it opens no pattern that protects only the path as routed.
        # As requested means as sent, not as a loose cut at root_path reads it: a pattern
        # matching only such a form still counts as protecting the path as routed alone.
        if as_received[0] is PathAccess.SKIP and not self._protects_only(
            method, routed, forms_as_received(scope, loose=False)
        ):
            return SKIP
        return _stricter(as_routed, as_received)

    def _decide(self, method: str | None, path: str) -> PathDecision:
        if self.exclude.matches(path):
            return SKIP
        if not self.protected.matches(path):
            return OPTIONAL
        if method is not None and self.methods is not None and not listed(method, self.methods):
            return OPTIONAL
        if not self._scoped:
            return REQUIRED
        return PathAccess.REQUIRED, self._scopes_for(path)

    def _protects_only(
        self, method: str | None, forms: tuple[str, ...], others: tuple[str, ...]
    ) -> bool:
        """Whether a protected pattern requires a token on a form of `forms`, none of `others`."""
        if method is not None and self.methods is not None and not listed(method, self.methods):
            return False
        return any(
            any(map(patterns.matches, forms)) and not any(map(patterns.matches, others))
            for patterns, _ in self._each
        )

    def _strictest_protected(self, forms: tuple[str, ...]) -> PathDecision:
        if not self._scoped:
            return REQUIRED
        scopes = [scope for form in forms for scope in self._scopes_for(form)]
        return PathAccess.REQUIRED, tuple(dict.fromkeys(scopes))

    def _scopes_for(self, path: str) -> tuple[str, ...]:
        """The union, in configuration order, of the scopes of every matching pattern."""
        found: dict[str, None] = {}
        for patterns, scopes in self._scoped:
            if patterns.matches(path):
                found.update(dict.fromkeys(scopes))
        return tuple(found)


def rememberable(*texts: object) -> bool:
    """Whether a memo may keep an entry for a request named by `texts` (path, `raw_path`,
    `root_path`, method, as the memo keys it): none longer than REMEMBERED_PATH_MAX. Asked
    on a miss only, so a hit costs nothing more."""
    return all(len(t) <= REMEMBERED_PATH_MAX for t in texts if isinstance(t, str | bytes))


def request_method(scope: Scope) -> str | None:
    """The request's method in upper case; None when there is none (a WebSocket)."""
    method = scope.get("method")
    return method.upper() if isinstance(method, str) else None


def is_cors_preflight(scope: Scope) -> bool:
    """Whether the request is a CORS preflight (the Fetch standard's CORS-preflight
    request): OPTIONS with `Origin` and `Access-Control-Request-Method`. Browsers send it
    without credentials, for the framework's CORS layer to answer."""
    if request_method(scope) != "OPTIONS":
        return False
    names = {name for name, _ in scope.get("headers", ())}
    return b"origin" in names and b"access-control-request-method" in names


def listed(method: str, methods: frozenset[str]) -> bool:
    """Whether `methods` covers `method` (upper case): HEAD is covered by GET."""
    return method in methods or (method == "HEAD" and "GET" in methods)


def _stricter(first: PathDecision, second: PathDecision) -> PathDecision:
    if first[0] != second[0]:
        return first if first[0] > second[0] else second
    return first[0], tuple(dict.fromkeys(first[1] + second[1]))


def _encodes_separator(raw_path: bytes) -> bool:
    lowered = raw_path.lower()
    return any(encoded in lowered for encoded in _ENCODED_SEPARATORS)


def _requirement(given: object, pattern: str) -> tuple[tuple[str, ...], int | None]:
    """The scopes and the `max_age` of a pattern of `protected`: its scopes, or
    `requires(...)`."""
    # Imported here: the middlewares import this module.
    from .middleware.requires import ScopeRequirement

    if isinstance(given, ScopeRequirement):
        return _scope_tuple(given.scopes, pattern), checked_max_age(given.max_age)
    return _scope_tuple(given, pattern), None


def _scope_tuple(scopes: object, pattern: str) -> tuple[str, ...]:
    if isinstance(scopes, str):
        scopes = (scopes,)
    if not isinstance(scopes, Iterable):
        raise ConfigurationError(
            f"protected: {pattern!r} maps to its scopes, or to requires(*scopes, max_age=…)"
        )
    result = tuple(scopes)
    if not all(isinstance(s, str) and s and " " not in s for s in result):
        raise ConfigurationError(f"protected: the scopes of {pattern!r} must be strings")
    return result
