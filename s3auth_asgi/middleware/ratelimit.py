"""RateLimitMiddleware: refuses requests over their limits before the app sees them.

Pure ASGI: bodies are never read or buffered, `lifespan` and other scope types pass straight
through, and it imports no web framework.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence

from ..errors import ConfigurationError, S3AuthError
from ..paths import rememberable
from ..problems import DEFAULT_REALM
from ..ratelimit.gcra import full_allowance
from ..ratelimit.limiter import RateLimiter, RateLimitInfo, policy_item, whole_seconds
from ..ratelimit.memory import MemoryCheck
from ..ratelimit.rules import RateLimitRule
from ..types import ASGIApp, Message, Receive, Scope, Send, checked_app
from .refusals import Refusals

Counted = tuple[tuple[str, int], ...]
"""(limit name, cost) for each limit a request counts against."""
Headers = Sequence[tuple[bytes, bytes]]
FullAnswer = tuple[int, float, Headers]
"""(remaining, reset_after, headers) of an admission that found the allowance full."""
LocalChecks = tuple[tuple[str, MemoryCheck, int, FullAnswer], ...]
"""The same with each limit's synchronous check (`RateLimiter.local_check`) and the answer
of a check at that cost that finds the allowance full."""

_MEMO_SIZE = 4096
"""Kinds of request remembered; the memo is emptied when full (paths are the client's to
choose, so there is no bound on them), and keeps none longer than `paths.rememberable`
lets it, so that it holds a few megabytes at most."""


class RateLimitMiddleware:
    """Checks every HTTP request and WebSocket handshake against the limits of the rules it
    matches; refuses with 429 (problem+json, RateLimit headers, Retry-After), a WebSocket
    handshake too where the server supports the `websocket.http.response` extension, else
    with a close 1008 before accept (`refuse_websocket`).

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
        try:
            # Once through: a generator would be checked here and then kept empty.
            rules = () if isinstance(rules, RateLimitRule | str) else tuple(rules)
        except TypeError:
            rules = ()
        if not rules:
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
        _refuse_shadowed(rules)
        self.app = checked_app(app)
        self.limiter = limiter
        self.rules = tuple(rules)
        self.send_headers = send_headers
        self.refusals = Refusals(DEFAULT_REALM)
        self._is_rate_limited = limiter.is_rate_limited
        self._client_keys = limiter.client_resolver.client_keys
        self._one_field = send_headers and not limiter.legacy_headers
        self._answers: dict[tuple[str, int, int], Headers] = {}
        """The headers of an admission under one limit, by limit, remaining and reset."""
        self._policies = {
            name: policy_item(name, limit).encode("latin-1")
            for name, limit in limiter.limits.items()
        }
        self._counted: dict[tuple[object, ...], tuple[Counted, LocalChecks | None]] = {}
        """What requests of one kind, method and path count against: rules are matched once
        per such request, not on every one."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        counted, local = self._counted_against(scope)
        try:
            if local is not None:
                headers = self._admit_locally(scope, local)
            else:
                headers = await self._admit(scope, counted)
        except S3AuthError as error:  # over a limit, or the shared store is down
            await self.refusals.refuse(scope, send, error)
            return
        if headers and scope["type"] == "http":
            send = _sending(send, headers)
        await self.app(scope, receive, send)

    def _admit_locally(self, scope: Scope, local: LocalChecks) -> Headers:
        """`_admit` for limits kept in this process's memory: nothing waits, so neither
        does this, and a RateLimitInfo is made only for what needs one."""
        if not local:  # no rule names this path: no client to tell apart
            return ()
        compact, key = self._client_keys(scope)
        if len(local) == 1:
            name, check, cost, (full_remaining, full_reset, full_headers) = local[0]
            step = check(compact, cost)
            if step[1] and self._one_field:
                # The usual answer, the allowance found full, is the same every time.
                if step[2] == full_remaining and step[3] == full_reset:
                    return full_headers
                return self._admitted_headers(name, step[2], step[3])
            return self._verdict([self.limiter.info(name, key, step)])
        return self._verdict(
            [self.limiter.info(name, key, check(compact, cost)) for name, check, cost, _ in local]
        )

    async def _admit(self, scope: Scope, counted: Counted) -> Headers:
        """Counts the request against every limit of `counted`; the headers of its answer
        when all admit it, else raises the refusal."""
        infos = [
            (await self._is_rate_limited(scope, limit_name, cost=cost))[1]
            for limit_name, cost in counted
        ]
        return self._verdict(infos)

    def _verdict(self, infos: list[RateLimitInfo]) -> Headers:
        for info in infos:
            if not info.allowed:
                raise self.limiter.refusal(infos)
        if not infos or not self.send_headers:
            return ()
        if len(infos) == 1 and self._one_field:
            return self._admitted_headers(
                infos[0].limit_name, infos[0].remaining, infos[0].reset_after
            )
        return [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in self.limiter.header_items(infos)
        ]

    def _counted_against(self, scope: Scope) -> tuple[Counted, LocalChecks | None]:
        """The limits this request counts against, each with its cost (every matching
        rule's limit, the first such rule deciding the cost), and their synchronous checks
        when every one of them has one."""
        what = (
            scope["type"],
            scope.get("method"),
            scope.get("path"),
            scope.get("root_path"),
            scope.get("raw_path"),
        )
        try:
            found = self._counted.get(what)
        except TypeError:  # a path that is no string (or bytes): nothing is remembered
            return self._match(scope)
        if found is None:
            found = self._match(scope)
            if rememberable(*what[1:]):
                if len(self._counted) >= _MEMO_SIZE:
                    self._counted.clear()
                self._counted[what] = found
        return found

    def _match(self, scope: Scope) -> tuple[Counted, LocalChecks | None]:
        counted: dict[str, int] = {}
        for rule in self.rules:
            if rule.limit not in counted and rule.matches(scope):
                counted[rule.limit] = rule.cost
        local = []
        for limit_name, cost in counted.items():
            check = self.limiter.local_check(limit_name)
            if check is None:
                return tuple(counted.items()), None
            limit = self.limiter.limits[limit_name]
            _, remaining, reset_after, _ = full_allowance(
                limit.emission_interval, limit.max_requests, cost
            )
            full = (
                remaining,
                reset_after,
                self._admitted_headers(limit_name, remaining, reset_after),
            )
            local.append((limit_name, check, cost, full))
        return tuple(counted.items()), tuple(local)

    def _admitted_headers(self, limit_name: str, remaining: int, reset_after: float) -> Headers:
        """The headers of a request admitted under one limit, the usual case: the fields
        `RateLimiter.header_items` gives, written as bytes directly. Most answers repeat (a
        client with its allowance full, or one request into it), so each is remembered."""
        answer = (limit_name, remaining, whole_seconds(reset_after))
        headers = self._answers.get(answer)
        if headers is None:
            if len(self._answers) >= _MEMO_SIZE:
                self._answers.clear()
            headers = self._answers[answer] = self._write_admitted(*answer)
        return headers

    def _write_admitted(self, limit_name: str, remaining: int, reset_seconds: int) -> Headers:
        policy = self._policies[limit_name]
        name = policy[: policy.index(b";")]
        value = b"%b;r=%d;t=%d" % (name, remaining, reset_seconds)
        return ((b"ratelimit-policy", policy), (b"ratelimit", value))


def _refuse_shadowed(rules: Sequence[RateLimitRule]) -> None:
    """Refuse a rule whose cost never counts: the first matching rule of a limit decides
    the cost, and an earlier rule of the same limit, at another cost, matches every request
    this one does."""
    for index, rule in enumerate(rules):
        for earlier in rules[:index]:
            if earlier.limit == rule.limit and earlier.cost != rule.cost and earlier.covers(rule):
                raise ConfigurationError(
                    f"rule for {rule.path!r} (cost {rule.cost}) never decides a cost: the "
                    f"earlier rule for {earlier.path!r} names limit {rule.limit!r} too, matches "
                    f"every request it matches and decides the cost ({earlier.cost}); put the "
                    f"rule for {rule.path!r} first, or drop one of them"
                )


def _sending(send: Send, headers: Headers) -> Send:
    """`send`, with `headers` added to the response's start. A plain function handing back
    `send`'s own awaitable: one coroutine less for every message of the response."""

    def send_with_headers(message: Message) -> Awaitable[None]:
        if message["type"] == "http.response.start":
            message = dict(message)
            message["headers"] = [*message.get("headers", ()), *headers]
        return send(message)

    return send_with_headers
