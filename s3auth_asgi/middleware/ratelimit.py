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
        self._policies: dict[str, bytes] = {}
        """The RateLimit-Policy field of each limit, which never changes."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            infos = await self._check(scope)
            for info in infos:
                if not info.allowed:
                    raise self.limiter.refusal(infos)
        except S3AuthError as error:  # over a limit, or the shared store is down
            await self._refuse(scope, receive, send, render(error))
            return
        if infos and self.send_headers and scope["type"] == "http":
            send = self._sending_headers(send, infos)
        await self.app(scope, receive, send)

    async def _check(self, scope: Scope) -> list[RateLimitInfo]:
        infos: list[RateLimitInfo] = []
        counted: set[str] = set()
        for rule in self.rules:
            if rule.limit in counted or not rule.matches(scope):
                continue
            counted.add(rule.limit)
            _, info = await self.limiter.is_rate_limited(scope, rule.limit, cost=rule.cost)
            infos.append(info)
        return infos

    def _sending_headers(self, send: Send, infos: list[RateLimitInfo]) -> Send:
        extra = self._admitted_headers(infos) if len(infos) == 1 else None
        if extra is None:
            extra = [
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in self.limiter.header_items(infos)
            ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        return send_with_headers

    def _admitted_headers(self, infos: list[RateLimitInfo]) -> list[tuple[bytes, bytes]] | None:
        """The headers of a request admitted under one limit, the usual case, written as
        bytes directly: the same fields `RateLimiter.header_items` gives, at a fraction of
        the cost of building them as text first. None for any other case."""
        (info,) = infos
        if not info.allowed or self.limiter.legacy_headers:
            return None
        policy = self._policies.get(info.limit_name)
        if policy is None:
            policy = self._policies[info.limit_name] = dict(self.limiter.header_items(infos))[
                "RateLimit-Policy"
            ].encode("latin-1")
        name = policy[: policy.index(b";")]
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
