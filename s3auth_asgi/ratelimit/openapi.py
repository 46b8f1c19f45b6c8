"""declare_rate_limits: what RateLimitMiddleware's rules add to a host's operations, in
the host's OpenAPI document.

A request that a rule limits may be refused with a 429 (problem+json, its code listed:
`rate_limited`; `Retry-After` and the RateLimit fields), and, with `send_headers`, every
answer it admits carries the RateLimit fields (`ratelimit.fields`). Under a limit kept in
a store that can fail (any but this process's memory), the check may end in a 503
(problem+json, with the codes that store's failures carry, `store_failures`; `Retry-After`
and no fields, for nothing was counted to report). The middleware matches
request paths, a document lists templated ones (`/items/{id}`): an operation is declared
limited where a rule limits it whatever its parameters are (`path_coverage`); one that a
rule limits for some values only is left as it is and reported (`PartialMatch`), for the
host to declare or not. The document is changed in place (`host_openapi`); declaring
twice changes nothing the first time did not.
"""

from __future__ import annotations

import copy
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError, RateLimitedError, StoreUnavailableError, StoreUnsafeError
from ..host_openapi import (
    add_headers,
    add_problem,
    check_root_path,
    declared,
    operations,
    problem_schema,
)
from ..path_coverage import Coverage, coverage
from ..paths import listed
from ..problems import PROBLEM_CONTENT_TYPE, STORE_UNAVAILABLE_DESCRIPTION, with_codes
from ..storage import CorruptObjectError
from ..store_check import CheckedStore
from .fields import REFUSAL_DESCRIPTION, RETRY_AFTER, field_headers
from .limiter import RateLimiter
from .memory import MemoryRateLimitStore
from .rules import RateLimitRule
from .stores import ObjectStoreRateLimitStore, RateLimitStore

STORE_CODES = (StoreUnavailableError.code, CorruptObjectError.code, StoreUnsafeError.code)
"""The codes of a store's failures, in the order a 503 lists them."""


@dataclass(frozen=True, slots=True)
class PartialMatch:
    """An operation that `rule` limits for some values of its path parameters only
    (`/items/1` of `/items/{id}`): its 429 and fields are not declared for that rule."""

    path: str
    """As the document writes it."""
    method: str
    """In upper case."""
    rule: RateLimitRule


def declare_rate_limits(
    document: MutableMapping[str, Any],
    rules: Sequence[RateLimitRule],
    limiter: RateLimiter,
    *,
    send_headers: bool = True,
    root_path: str = "",
) -> list[PartialMatch]:
    """Declare in `document` the 429 and the RateLimit fields that RateLimitMiddleware
    with these `rules`, `limiter` and `send_headers` sends on its operations, and the 503
    of a limit kept in a store that can fail (`limiter.stores`); returns the operations a
    rule limits for some path parameters only, which are not declared.

    The document's paths are matched as the rules see them: both are relative to where
    the app is served (the document's server URL, the request's `root_path`).
    `root_path`: what comes before the document's paths in the paths the middleware
    matches, where it wraps an app that mounts the documented one (`/v1` for a rule
    `/v1/*` and a path `/items`). A status or header the document declares already is
    kept as it is (a problem media type, with its codes, is added to a 429 or 503 that
    lacks one); a response given as a `$ref` is left alone.
    """
    _check(rules, limiter, root_path)
    failures = {name: store_failures(store) for name, store in limiter.stores.items()}
    partial: list[PartialMatch] = []
    problem: dict[str, str] | None = None
    for path, method, operation in operations(document):
        names: list[str] = []
        some: list[RateLimitRule] = []
        for rule in rules:
            covered = rule_coverage(rule, root_path + path, method.upper())
            if covered == "all" and rule.limit not in names:
                names.append(rule.limit)
            elif covered == "some":
                some.append(rule)
        # A rule of a limit declared anyway adds nothing the document lacks.
        partial += [PartialMatch(path, method.upper(), r) for r in some if r.limit not in names]
        if names:
            problem = problem or problem_schema(document)
            codes = [code for code in STORE_CODES if any(code in failures[n] for n in names)]
            _declare(operation, names, codes, limiter.legacy_headers, send_headers, problem)
    return partial


def _check(rules: Sequence[RateLimitRule], limiter: RateLimiter, root_path: str) -> None:
    if not isinstance(limiter, RateLimiter):
        raise ConfigurationError("declare_rate_limits needs the middleware's RateLimiter")
    if isinstance(rules, RateLimitRule):
        raise ConfigurationError("declare_rate_limits takes a list of rules")
    for rule in rules:
        if not isinstance(rule, RateLimitRule):
            raise ConfigurationError(f"not a RateLimitRule: {rule!r}")
        if rule.limit not in limiter.limits:
            raise ConfigurationError(
                f"rule for {rule.path!r} names limit {rule.limit!r}, which the limiter "
                f"does not have (it has {sorted(limiter.limits)})"
            )
    check_root_path(root_path)


def rule_coverage(rule: RateLimitRule, path: str, method: str) -> Coverage:
    """How much of the operation `method` (upper case) at `path` (a templated path, as the
    rule sees requests) `rule` limits (`path_coverage`)."""
    if rule.method_names is not None and not listed(method, rule.method_names):
        return "none"
    return coverage(
        rule.path, path, lambda each: rule.matches({"type": "http", "method": method, "path": each})
    )


def store_failures(store: RateLimitStore) -> set[str]:
    """The codes of the 503s a check against a limit kept in `store` may end in: none in
    this process's memory. Elsewhere `store_unavailable`, for a store that fails;
    `corrupt_object`, for a state that cannot be read whose version the store does not
    tell (an ObjectStore tells every object's, on which ObjectStoreRateLimitStore
    overwrites such a state: a store of another kind may not); `store_unsafe`, on a store
    whose writes wait for the check of its conditional writes (the service's,
    `store_check`), which a store lacking one fails."""
    if isinstance(store, MemoryRateLimitStore):
        return set()
    if not isinstance(store, ObjectStoreRateLimitStore):
        return {StoreUnavailableError.code, CorruptObjectError.code}
    codes = {StoreUnavailableError.code}
    objects = store.store
    if isinstance(objects, CheckedStore):
        codes.add(StoreUnsafeError.code)
        objects = objects.inner
    # Imported here, as the storage package does, so that obstore loads with a store only.
    from ..storage.store import ObjectStore

    if not isinstance(objects, ObjectStore):
        codes.add(CorruptObjectError.code)
    return codes


def _declare(
    operation: dict[str, Any],
    names: list[str],
    failures: list[str],
    legacy: bool,
    send_headers: bool,
    problem: dict[str, str],
) -> None:
    responses = operation.setdefault("responses", {})
    fields = field_headers(names, legacy)
    own = {"429"}  # the middleware's own answers: the headers they are sent with are known
    refusal = declared(responses, 429)
    if refusal is None:
        refusal = responses["429"] = {"description": REFUSAL_DESCRIPTION}
    refused = with_codes(problem, [RateLimitedError.code])
    add_problem(refusal, refused, {**RETRY_AFTER, **fields})
    if failures:
        failed = with_codes(problem, failures)
        made = {
            "description": STORE_UNAVAILABLE_DESCRIPTION,
            "content": {PROBLEM_CONTENT_TYPE: {"schema": failed}},
            "headers": copy.deepcopy(RETRY_AFTER),
        }
        unavailable = declared(responses, 503)
        if unavailable is None:
            unavailable = responses["503"] = made
        if unavailable == made:
            # Made here, now or by an earlier call: the middleware's, sent without fields.
            # A 503 of the host's own may be its app's, which the middleware admitted.
            own.add("503")
        add_problem(unavailable, failed, RETRY_AFTER)
    if send_headers:
        for status, response in responses.items():
            if str(status) not in own and isinstance(response, dict) and "$ref" not in response:
                add_headers(response, fields)
