"""RateLimitRule: which requests a named limit applies to, by path pattern and method."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field

from ..errors import ConfigurationError
from ..path_forms import received_forms
from ..path_patterns import PathSet
from ..paths import listed, request_method
from ..types import Scope

_METHOD = re.compile(r"[A-Z]+")


@dataclass(frozen=True, slots=True)
class RateLimitRule:
    """Apply limit `limit` to requests whose path matches `path` (and method in `methods`).

    `path` is written as BearerTokenMiddleware's patterns are: exact (`/auth/login`) or a
    prefix ending in `*` (`/api/*` covers everything below `/api/`, and `/api`, which
    Litestar routes to a route `/api/`: `path_patterns.PathSet`), matched against every
    form of the path a framework may route it as (`path_forms.route_forms`: relative to
    `root_path`, with `//` and dot segments resolved, without trailing slashes, an
    absolute-form target by its path), and in those of the path the server received
    (`path_forms.received_forms`: a path under a Litestar mount, which Litestar hands the
    app's middleware list as the path below the mount, is still matched as requested), so
    `/api//x`, `/public/../auth/login` or `/auth/login/` cannot slip past a limit the app
    would still route to. `methods=None` means every method (compared in upper case; HEAD
    is counted where GET is); a WebSocket handshake is a GET. Each request counts `cost`
    against the limit.
    """

    path: str
    limit: str
    methods: Collection[str] | None = None
    cost: int = 1
    _paths: PathSet = field(init=False, repr=False, compare=False)
    _methods: frozenset[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        paths = PathSet((self.path,), "RateLimitRule path")
        methods = None
        if self.methods is not None:
            if isinstance(self.methods, str):
                raise ConfigurationError("RateLimitRule methods must be a collection of names")
            methods = frozenset(m.upper() for m in self.methods)
            bad = sorted(m for m in methods if not _METHOD.fullmatch(m))
            if bad or not methods:
                raise ConfigurationError(f"RateLimitRule methods: invalid {bad or 'empty'}")
        if isinstance(self.cost, bool) or not isinstance(self.cost, int) or self.cost < 0:
            raise ConfigurationError("RateLimitRule cost must be a non-negative integer")
        object.__setattr__(self, "_paths", paths)
        object.__setattr__(self, "_methods", methods)

    @property
    def method_names(self) -> frozenset[str] | None:
        """The methods this rule counts, in upper case, as read once from `methods` (which
        may be an iterable that can be gone through only once); None: every method."""
        return self._methods

    def matches(self, scope: Scope) -> bool:
        if self._methods is not None:
            method = (request_method(scope) or "GET") if scope["type"] == "http" else "GET"
            if not listed(method, self._methods):
                return False
        return any(self._paths.matches(form) for form in received_forms(scope))

    def covers(self, other: RateLimitRule) -> bool:
        """Whether this rule matches every request `other` matches."""
        if self._methods is not None and (
            other._methods is None or not all(listed(m, self._methods) for m in other._methods)
        ):
            return False
        return self._paths.covers(other._paths)
