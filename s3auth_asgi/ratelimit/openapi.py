"""declare_rate_limits: what RateLimitMiddleware's rules add to a host's operations, in
the host's OpenAPI document.

A request that a rule limits may be refused with a 429 (problem+json, its code listed:
`rate_limited`; `Retry-After` and the RateLimit fields), and, with `send_headers`, every
answer it admits carries the RateLimit fields (`ratelimit.fields`). Under a limit kept in
a store that can fail (any but this process's memory), the check may end in a 503
(problem+json, with the codes that store's failures carry, `store_failures`; `Retry-After`
and no fields, for nothing was counted to report). The middleware matches
request paths, a document lists templated ones (`/items/{id}`): an operation is declared
limited where a rule limits it whatever its parameters are (`rule_coverage`); one that a
rule limits for some values only is left as it is and reported (`PartialMatch`), for the
host to declare or not. The document is a plain dict, as every framework makes one,
changed in place; declaring twice changes nothing the first time did not.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from ..errors import ConfigurationError, RateLimitedError, StoreUnavailableError, StoreUnsafeError
from ..problems import (
    PROBLEM_CONTENT_TYPE,
    STORE_UNAVAILABLE_DESCRIPTION,
    Problem,
    with_codes,
)
from ..storage import CorruptObjectError
from ..store_check import CheckedStore
from .fields import REFUSAL_DESCRIPTION, RETRY_AFTER, field_headers
from .limiter import RateLimiter
from .memory import MemoryRateLimitStore
from .rule_coverage import coverage
from .rules import RateLimitRule
from .stores import ObjectStoreRateLimitStore, RateLimitStore

OPERATION_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
"""The keys of a path item that are operations (OpenAPI 3.1)."""
SCHEMA_REF = "#/components/schemas/"
PROBLEM_SCHEMA_NAMES = ("Problem", "S3AuthProblem")
"""The names the problem schema is added under, the first free one (or a number added
to the last), unless the document holds the very same schema under any name already."""
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
    for path, item in document.get("paths", {}).items():
        if not isinstance(item, dict):
            continue
        for method in OPERATION_METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            names: list[str] = []
            some: list[RateLimitRule] = []
            for rule in rules:
                covered = coverage(rule, root_path + path, method.upper())
                if covered == "all" and rule.limit not in names:
                    names.append(rule.limit)
                elif covered == "some":
                    some.append(rule)
            # A rule of a limit declared anyway adds nothing the document lacks.
            partial += [PartialMatch(path, method.upper(), r) for r in some if r.limit not in names]
            if names:
                problem = problem or _problem_schema(document)
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
    if root_path and (not root_path.startswith("/") or root_path.endswith("/")):
        raise ConfigurationError(f"root_path {root_path!r} must start and not end with '/'")


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
    refusal = responses.setdefault("429", {"description": REFUSAL_DESCRIPTION})
    refused = with_codes(problem, [RateLimitedError.code])
    _add_problem(refusal, refused, {**RETRY_AFTER, **fields})
    if failures:
        failed = with_codes(problem, failures)
        made = {
            "description": STORE_UNAVAILABLE_DESCRIPTION,
            "content": {PROBLEM_CONTENT_TYPE: {"schema": failed}},
            "headers": copy.deepcopy(RETRY_AFTER),
        }
        unavailable = responses.setdefault("503", made)
        if unavailable == made:
            # Made here, now or by an earlier call: the middleware's, sent without fields.
            # A 503 of the host's own may be its app's, which the middleware admitted.
            own.add("503")
        _add_problem(unavailable, failed, RETRY_AFTER)
    if send_headers:
        for status, response in responses.items():
            if status not in own and isinstance(response, dict) and "$ref" not in response:
                _add_headers(response, fields)


def _add_problem(
    response: dict[str, Any], schema: dict[str, Any], headers: dict[str, dict[str, Any]]
) -> None:
    """The problem media type, of `schema`, and `headers`, where `response` lacks them;
    a response given as a `$ref` is left alone."""
    if "$ref" not in response:
        response.setdefault("content", {}).setdefault(PROBLEM_CONTENT_TYPE, {"schema": schema})
        _add_headers(response, headers)


def _add_headers(response: dict[str, Any], headers: dict[str, dict[str, Any]]) -> None:
    declared = response.setdefault("headers", {})
    present = {name.lower() for name in declared}
    for name, header in headers.items():
        if name.lower() not in present:
            declared[name] = copy.deepcopy(header)


def _problem_schema(document: MutableMapping[str, Any]) -> dict[str, str]:
    """A reference to the problem schema in `document`, added where it is missing."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    wanted = problem_definition()
    for name, schema in schemas.items():
        if schema == wanted:
            return {"$ref": SCHEMA_REF + name}
    name = next((n for n in PROBLEM_SCHEMA_NAMES if n not in schemas), None)
    number = 2
    while name is None:
        candidate = f"{PROBLEM_SCHEMA_NAMES[-1]}{number}"
        name = None if candidate in schemas else candidate
        number += 1
    schemas[name] = copy.deepcopy(wanted)
    return {"$ref": SCHEMA_REF + name}


@functools.cache
def problem_definition() -> dict[str, Any]:
    """The JSON Schema of a problem answer, as the auth app's document has it."""
    _, definitions = msgspec.json.schema_components([Problem], ref_template=SCHEMA_REF + "{name}")
    definition: dict[str, Any] = definitions[Problem.__name__]
    return definition
