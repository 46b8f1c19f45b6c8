"""RateLimiter: named limits, who is counted, where the state lives, and the response headers.

limiter = RateLimiter(limits={"login": RateLimit(max_requests=5, window_seconds=60)},
                      trusted_proxies=["10.0.0.0/8"], trust_x_forwarded_for=True)
is_limited, info = await limiter.is_rate_limited(request, "login")
headers = limiter.get_rate_limit_headers(info)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from ..errors import ConfigurationError, RateLimitedError
from ..settings import ForwardedHeader, S3AuthSettings
from ..shared_on_copy import SharedOnCopy
from ..types import Scope
from .client_ip import ClientIPResolver
from .client_options import client_options
from .gcra import Step
from .identity import account_digest, counted_key, user_identity
from .memory import MemoryCheck, MemoryRateLimitStore
from .policy import (
    RateLimit,
    check_cost,
    check_limit_name,
    parse_rate_limits,
    warn_of_misspelt_names,
)
from .stores import EvenRateLimitStore, RateLimitStore


class RateLimitInfo(msgspec.Struct, frozen=True, gc=False):
    """One check of one request against one named limit."""

    limit_name: str
    limit: RateLimit
    key: str
    """What the request was counted under (e.g. `ip:203.0.113.7`, `user:42`)."""
    allowed: bool
    remaining: int
    """Requests of cost 1 still admitted right now."""
    reset_after: float
    """Seconds until one more request is admitted (0 when the allowance is full)."""
    retry_after: float
    """Seconds until this request would have been admitted (0 when it was)."""


def request_scope(request: Any) -> Scope:
    """The ASGI scope of a raw scope or of any framework's request object (`.scope`)."""
    scope = getattr(request, "scope", None)
    if isinstance(scope, Mapping):
        return scope  # type: ignore[return-value]
    if isinstance(request, Mapping):
        return request  # type: ignore[return-value]
    raise ConfigurationError(
        f"expected an ASGI scope or a request with a `scope` mapping, got {type(request)!r}"
    )


def whole_seconds(value: float) -> int:
    """Header fields carry whole seconds; rounding up never invites a request too early."""
    return math.ceil(value - 1e-9) if value > 0 else 0


class RateLimiter(SharedOnCopy):
    """Checks requests against named limits.

    `store` holds the state of every limit (default: a MemoryRateLimitStore of this
    process); `stores` overrides it per limit, e.g. an ObjectStoreRateLimitStore for
    "login" so that every process shares one count. `legacy_headers` adds
    X-RateLimit-Limit/-Remaining/-Reset to the IETF fields.
    """

    def __init__(
        self,
        limits: Mapping[str, RateLimit],
        *,
        trusted_proxies: Iterable[str] = (),
        trust_x_forwarded_for: bool = False,
        trust_all_proxies: bool = False,
        forwarded_header: ForwardedHeader = "x-forwarded-for",
        ipv6_prefix_length: int = 64,
        store: RateLimitStore | None = None,
        stores: Mapping[str, RateLimitStore] | None = None,
        legacy_headers: bool = False,
    ) -> None:
        for name, limit in limits.items():
            check_limit_name(name)
            if not isinstance(limit, RateLimit):
                raise ConfigurationError(f"limits[{name!r}] must be a RateLimit")
        stores = dict(stores or {})
        unknown = sorted(set(stores) - set(limits))
        if unknown:
            raise ConfigurationError(f"stores: no limit named {', '.join(map(repr, unknown))}")
        self.limits: dict[str, RateLimit] = dict(limits)
        self.store: RateLimitStore = store if store is not None else MemoryRateLimitStore()
        self.stores: dict[str, RateLimitStore] = {
            name: stores.get(name, self.store) for name in self.limits
        }
        # Everything a check needs, in one lookup. A memory check never waits, and a
        # coroutine alone costs a sixth of a whole check: its synchronous core is called
        # directly.
        self._routes: dict[str, tuple[RateLimit, RateLimitStore, MemoryCheck | None, bool]] = {}
        for name, limit in self.limits.items():
            limit_store = self.stores[name]
            memory_check = (
                limit_store.checker(name, limit)
                if isinstance(limit_store, MemoryRateLimitStore)
                else None
            )
            self._routes[name] = (limit, limit_store, memory_check, limit.key == "ip")
        self.client_resolver = ClientIPResolver(
            trusted_proxies,
            trust_x_forwarded_for=trust_x_forwarded_for,
            trust_all_proxies=trust_all_proxies,
            forwarded_header=forwarded_header,
            ipv6_prefix_length=ipv6_prefix_length,
        )
        self.legacy_headers = legacy_headers
        self._client_keys = self.client_resolver.client_keys

    @classmethod
    def from_settings(
        cls,
        settings: S3AuthSettings,
        store: RateLimitStore | None = None,
        *,
        defaults: Mapping[str, RateLimit] | None = None,
        **options: Any,
    ) -> RateLimiter:
        """Limits from S3AUTH_RATE_LIMITS (on top of `defaults`), the client as the proxy
        settings say (`client_options`: the trusted proxies, the forwarding header, the IPv6
        prefix); `options` as for the constructor (e.g. `stores=`), and winning over the
        settings. A configured name that looks like one of `defaults` misspelt is logged as
        a warning (`warn_of_misspelt_names`)."""
        configured = parse_rate_limits(settings.rate_limits)
        warn_of_misspelt_names(configured, defaults or {})
        arguments: dict[str, Any] = {**client_options(settings), "store": store, **options}
        return cls({**(defaults or {}), **configured}, **arguments)

    async def is_rate_limited(
        self,
        request: Any,
        limit_name: str,
        *,
        cost: int = 1,
        account: str | None = None,
        key: str | None = None,
        evenly: bool = False,
    ) -> tuple[bool, RateLimitInfo]:
        """Count this request against `limit_name`; (True, info) when it must be refused.

        `request` is a raw ASGI scope or a framework request (anything with `.scope`). The
        request is counted under the limit's key (client IP by default); `account` narrows
        that to IP + account (a login's username), `key` replaces it. `cost` is how many
        requests this one counts as (0 reports without counting). `evenly`: at the same
        store requests whatever the answer, where the limit's store can
        (`EvenRateLimitStore`, as ObjectStoreRateLimitStore is; a store in memory makes
        none), for a limit whose refusal must not be told from an admission by the time it
        takes.
        """
        route = self._routes.get(limit_name)
        if route is None:
            raise KeyError(f"no rate limit named {limit_name!r}; known: {sorted(self.limits)}")
        limit, store, memory_check, by_ip = route
        # A cost of 1 is always in range (max_requests >= 1): the usual call skips the test.
        if cost != 1:
            check_cost(limit, cost)
        scope = request if type(request) is dict else request_scope(request)
        if by_ip and key is None and account is None:
            # Kept in memory, the count is keyed by the compact form (see `client_keys`).
            table_key, counted_as = self._client_keys(scope)
        elif key is not None:
            counted_as = table_key = counted_key(key)
        elif account is not None:
            counted_as = table_key = (
                f"{self.client_resolver.client_key(scope)}|account:{account_digest(account)}"
            )
        else:
            counted_as = table_key = await self._key_by_strategy(scope, limit)
        if memory_check is not None:
            _, allowed, remaining, reset_after, retry_after = memory_check(table_key, cost)
            info = RateLimitInfo(
                limit_name, limit, counted_as, allowed, remaining, reset_after, retry_after
            )
            return not allowed, info
        if evenly and isinstance(store, EvenRateLimitStore):
            decision = await store.acquire_evenly(limit_name, counted_as, limit, cost)
        else:
            decision = await store.acquire(limit_name, counted_as, limit, cost)
        info = RateLimitInfo(
            limit_name,
            limit,
            counted_as,
            decision.allowed,
            decision.remaining,
            decision.reset_after,
            decision.retry_after,
        )
        return not decision.allowed, info

    def local_check(self, limit_name: str) -> MemoryCheck | None:
        """The synchronous check of `limit_name`, given the compact key of
        `client_resolver.client_keys(scope)` and a cost, when the limit is counted by client
        address and kept in this process's memory; None otherwise. For callers that check
        every request (RateLimitMiddleware): no coroutine, and a RateLimitInfo (`info`) only
        when one is needed."""
        _, _, memory_check, by_ip = self._routes[limit_name]
        return memory_check if by_ip else None

    def info(self, limit_name: str, key: str, step: Step) -> RateLimitInfo:
        """The RateLimitInfo of a `local_check` of the client whose `client_key` is `key`."""
        _, allowed, remaining, reset_after, retry_after = step
        limit = self.limits[limit_name]
        return RateLimitInfo(limit_name, limit, key, allowed, remaining, reset_after, retry_after)

    async def _key_by_strategy(self, scope: Scope, limit: RateLimit) -> str:
        if limit.key == "user":
            user_id = user_identity(scope)
            if user_id is not None:
                return f"user:{user_id}"
        elif callable(limit.key):
            custom = await limit.key(scope)
            if custom is not None:
                return counted_key(custom)
        return self.client_resolver.client_key(scope)

    def get_rate_limit_headers(
        self, info: RateLimitInfo | Iterable[RateLimitInfo]
    ) -> dict[str, str]:
        """The response headers for one check or for all the limits a request was under."""
        return dict(self.header_items(info))

    def refusal(self, infos: Iterable[RateLimitInfo]) -> RateLimitedError:
        """The 429 for a request that some of these checks refused, with its headers."""
        checks = list(infos)
        headers = self.header_items(checks)
        names = ", ".join(repr(i.limit_name) for i in checks if not i.allowed)
        wait = dict(headers).get("Retry-After", "1")
        return RateLimitedError(f"Rate limit {names} exceeded; retry in {wait} s", headers=headers)

    def header_items(self, info: RateLimitInfo | Iterable[RateLimitInfo]) -> list[tuple[str, str]]:
        infos = [info] if isinstance(info, RateLimitInfo) else list(info)
        if not infos:
            return []
        items = [
            ("RateLimit-Policy", ", ".join(policy_item(i.limit_name, i.limit) for i in infos)),
            (
                "RateLimit",
                ", ".join(
                    f'"{i.limit_name}";r={i.remaining};t={whole_seconds(i.reset_after)}'
                    for i in infos
                ),
            ),
        ]
        refused = [i.retry_after for i in infos if not i.allowed]
        if refused:
            items.append(("Retry-After", str(max(whole_seconds(max(refused)), 1))))
        if self.legacy_headers:
            # One policy only fits the legacy fields: the one closest to refusing.
            tightest = min(infos, key=lambda i: (i.remaining, -i.reset_after))
            items += [
                ("X-RateLimit-Limit", str(tightest.limit.max_requests)),
                ("X-RateLimit-Remaining", str(tightest.remaining)),
                ("X-RateLimit-Reset", str(whole_seconds(tightest.reset_after))),
            ]
        return items


def policy_item(limit_name: str, limit: RateLimit) -> str:
    """The limit's item of the RateLimit-Policy field, which never changes."""
    return f'"{limit_name}";q={limit.max_requests};w={whole_seconds(limit.window_seconds)}'
