"""RateLimitMiddleware: refuses requests over their limits before the app sees them.

Pure ASGI: bodies are never read or buffered, `lifespan` and other scope types pass straight
through, and it imports no web framework.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ConfigurationError, S3AuthError
from ..problems import RenderedProblem, close_websocket, render, send_problem
from ..ratelimit.limiter import RateLimiter, RateLimitInfo, whole_seconds
from ..ratelimit.rules import RateLimitRule
from ..types import ASGIApp, Message, Receive, Scope, Send, checked_app

Counted = tuple[tuple[str, int], ...]
"""(limit name, cost) for each limit a request counts against."""

_MEMO_SIZE = 4096
"""Kinds of request remembered; the memo is emptied when full (paths are the client's to
choose, so there is no bound on them)."""


class RateLimitMiddleware:
    """Checks every HTTP request and WebSocket handshake against the limits of the rules it
    matches; refuses with 429 (problem+json, RateLimit headers, Retry-After) or, for a
    WebSocket, with a close 1008 before accept (or a 429 where the server supports the
    `websocket.http.response` extension).

    Every matching rule counts, so a route can be under several limits; when several rules
    name the same limit, the first one decides the cost. Admitted HTTP responses carry the
    RateLimit headers too unless `send_headers=False`.
    """

    def __init__(
        self,
        app: ASGIApp,
        limiter: RateLimiter,
        rules: Sequence[RateLimitRule],
        *,
        send_headers: bool = True,
    ) -> None:
        if not isinstance(limiter, RateLimiter):
            raise ConfigurationError("RateLimitMiddleware needs a RateLimiter")
        if isinstance(rules, RateLimitRule) or not rules:
            raise ConfigurationError("RateLimitMiddleware needs a non-empty list of rules")
        for rule in rules:
            if not isinstance(rule, RateLimitRule):
                raise ConfigurationError(f"not a RateLimitRule: {rule!r}")
            limit = limiter.limits.get(rule.limit)
            if limit is None:
                raise ConfigurationError(
                    f"rule for {rule.path!r} names limit {rule.limit!r}, which the limiter "
                    f"does not have (it has {sorted(limiter.limits)})"
                )
            if rule.cost > limit.max_requests:
                raise ConfigurationError(
                    f"rule for {rule.path!r} costs {rule.cost}, more than limit "
                    f"{rule.limit!r} ever admits ({limit.max_requests})"
                )
        self.app = checked_app(app)
        self.limiter = limiter
        self.rules = tuple(rules)
        self.send_headers = send_headers
        self._is_rate_limited = limiter.is_rate_limited
        self._fields: dict[str, tuple[bytes, bytes]] = {}
        """The RateLimit-Policy field of each limit and the limit's name as the fields
        write it, neither of which ever changes."""
        self._counted: dict[tuple[object, ...], Counted] = {}
        """What requests of one kind, method and path count against: rules are matched once
        per such request, not on every one."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        infos: list[RateLimitInfo] = []
        try:
            for limit_name, cost in self._counted_against(scope):
                infos.append((await self._is_rate_limited(scope, limit_name, cost=cost))[1])
            for info in infos:
                if not info.allowed:
                    raise self.limiter.refusal(infos)
        except S3AuthError as error:  # over a limit, or the shared store is down
            await self._refuse(scope, receive, send, render(error))
            return
        if infos and self.send_headers and scope["type"] == "http":
            send = self._sending_headers(send, infos)
        await self.app(scope, receive, send)

    def _counted_against(self, scope: Scope) -> Counted:
        """The limits this request counts against, each with its cost: every matching rule's
        limit, the first such rule deciding the cost."""
        what = (scope["type"], scope.get("method"), scope.get("path"), scope.get("root_path"))
        try:
            counted = self._counted.get(what)
        except TypeError:  # a path or root_path that is no string: nothing is remembered
            return self._match(scope)
        if counted is None:
            if len(self._counted) >= _MEMO_SIZE:
                self._counted.clear()
            counted = self._counted[what] = self._match(scope)
        return counted

    def _match(self, scope: Scope) -> Counted:
        counted: dict[str, int] = {}
        for rule in self.rules:
            if rule.limit not in counted and rule.matches(scope):
                counted[rule.limit] = rule.cost
        return tuple(counted.items())

    def _sending_headers(self, send: Send, infos: list[RateLimitInfo]) -> Send:
        if len(infos) == 1 and infos[0].allowed and not self.limiter.legacy_headers:
            extra = self._admitted_headers(infos[0])
        else:
            extra = [
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in self.limiter.header_items(infos)
            ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        return send_with_headers

    def _admitted_headers(self, info: RateLimitInfo) -> list[tuple[bytes, bytes]]:
        """The headers of a request admitted under one limit, the usual case, written as
        bytes directly: the same fields `RateLimiter.header_items` gives, at a fraction of
        the cost of building them as text first."""
        fields = self._fields.get(info.limit_name)
        if fields is None:
            policy = dict(self.limiter.header_items(info))["RateLimit-Policy"].encode("latin-1")
            fields = self._fields[info.limit_name] = (policy, policy[: policy.index(b";")])
        policy, name = fields
        value = b"%b;r=%d;t=%d" % (name, info.remaining, whole_seconds(info.reset_after))
        return [(b"ratelimit-policy", policy), (b"ratelimit", value)]

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, problem: RenderedProblem
    ) -> None:
        if scope["type"] == "http":
            await send_problem(send, problem)
            return
        # A WebSocket is answered only once the server has delivered the handshake.
        if (await receive())["type"] != "websocket.connect":
            return
        if "websocket.http.response" in (scope.get("extensions") or {}):
            await send_problem(send, problem, prefix="websocket.http")
        else:
            await close_websocket(send, "rate limited" if problem.status == 429 else "unavailable")
